"""The warning `status` and `gate` print when the toolkit is connected as a superuser: a check's read-only
transaction does not stop a superuser (COPY ... TO PROGRAM, pg_read_file, pg_terminate_backend), so the
least-privilege role of `migrate init --role NAME` is the answer. Read from the server's `is_superuser`
parameter, reported at connection start: no query, no round trip."""

from __future__ import annotations

from typing import Any

import psycopg


def superuser_warning(conn: psycopg.Connection[Any] | None) -> str | None:
    """Explain the risk and the fix when `conn` is logged in as a superuser; None otherwise."""
    if conn is None or conn.closed:
        return None
    if conn.info.parameter_status("is_superuser") != "on":
        return None
    return (
        f'connected as the superuser "{conn.info.user}": read-only transactions do not stop a superuser '
        "(a sql check could run COPY ... TO PROGRAM, pg_read_file, pg_terminate_backend); connect as a "
        "least-privilege role: `migrate init --role NAME` writes the script that creates it"
    )


def warnings(*conns: psycopg.Connection[Any] | None) -> list[str]:
    """The superuser warnings of these connections, each once."""
    out: list[str] = []
    for conn in conns:
        text = superuser_warning(conn)
        if text and text not in out:
            out.append(text)
    return out
