"""SQL as text for people to read and run (printed hints, generated scripts): identifiers and literals quoted
so that no name from a runbook or a database can read as SQL."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """`"Job"`, `"a""b"`: an identifier as SQL text, always quoted (quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """`'it''s'`: a string as a SQL literal (standard_conforming_strings: backslashes are plain)."""
    return "'" + value.replace("'", "''") + "'"
