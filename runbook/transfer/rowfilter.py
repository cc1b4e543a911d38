"""A transfer's `--filter SQL` (or a stage's `transfer.filter`): user SQL ANDed into the claim, kept in its
place. The text is refused when it could reach past its parentheses (a `;`, a comment, a `)` closing more
than it opened, an unterminated quote), then PostgreSQL plans it (EXPLAIN, never run) in a read-only
transaction against the real table before any row is claimed. Every refusal is a UsageError (exit 2) that
names where the filter came from."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from runbook.errors import UsageError
from runbook.sqltext import quote_ident
from runbook.transfer import legacy_sql
from runbook.transfer.mapping import Mapping

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def check_text(text: str, source: str) -> str:
    """The filter, stripped, if it can only be one condition; else UsageError naming `source`."""
    stripped = text.strip()
    problem = "is empty" if not stripped else _problem(stripped)
    if problem:
        raise UsageError(
            f"{source} {problem}; it must be one boolean SQL condition on the legacy table",
            hint="write one condition, e.g. \"evaluationId\" LIKE 'batch-7%' (no `;`, no comments, "
            "parentheses balanced)",
        )
    return stripped


def _problem(text: str) -> str | None:
    """What lets the text escape its parentheses, scanning outside quotes and dollar quotes."""
    depth, i, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            end = _close_quote(text, i, c)
            if end < 0:
                return "has an unterminated quote"
            i = end
        elif c == "$" and (m := _DOLLAR.match(text, i)) and (i == 0 or not _word(text[i - 1])):
            end = text.find(m.group(0), m.end())
            if end < 0:
                return "has an unterminated dollar quote"
            i = end + len(m.group(0))
            continue
        elif c == ";":
            return "holds a `;` (one condition, not statements)"
        elif text.startswith(("--", "/*"), i):
            return "holds a comment (`--` or `/*`)"
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                return "closes a parenthesis it did not open"
        i += 1
    return "leaves a parenthesis open" if depth else None


def _close_quote(text: str, start: int, quote: str) -> int:
    """Index after the quote closing the one at `start` (a doubled quote is part of it); -1 if none."""
    escapes = (
        quote == "'" and start > 0 and text[start - 1] in "eE" and not _word(text[start - 2 : start - 1])
    )
    i = start + 1
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            if text[i + 1 : i + 2] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return -1


def _word(c: str) -> bool:
    return bool(c) and (c.isalnum() or c == "_")


def check_plans(conn: psycopg.Connection[Any], m: Mapping, source: str) -> None:
    """EXPLAIN the claim's condition with the filter in it (read-only, nothing run): a column that does not
    exist, a syntax error or a non-boolean expression is a UsageError naming `source`."""
    cond, params = legacy_sql.where(m)
    query = sql.SQL("EXPLAIN SELECT 1 FROM {} WHERE {}").format(m.legacy.ident, cond)
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(query, params)
    except psycopg.OperationalError:  # a lost connection or a timeout is not the filter's fault
        raise
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or ["refused"])[0]
        raise UsageError(
            f"{source} is not a condition PostgreSQL accepts on {m.legacy.name}: {first}",
            hint=f"fix {source} ({_columns_hint(m)}); nothing was moved",
        ) from None


def _columns_hint(m: Mapping) -> str:
    """How this table's columns are written in SQL: a name with capitals is quoted ("evaluationId")."""
    names = list(m.legacy.columns)
    shown = ", ".join(quote_ident(c) if _needs_quotes(c) else c for c in names[:8])
    more = ", ..." if len(names) > 8 else ""
    return f"its columns: {shown}{more}; a name with capitals is quoted"


def _needs_quotes(name: str) -> bool:
    return not (name.islower() and name.replace("_", "a").isalnum() and not name[:1].isdigit())
