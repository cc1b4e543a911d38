"""Connections to PostgreSQL with errors that name the setting to fix and never show a password."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from runbook.errors import ConfigError, UnreachableError
from runbook.onestatement import SingleStatementCursor
from runbook.pgurl import ENCODE_HINT, url_problem
from runbook.redact import Redactor, redact_url


def describe_url(url: str) -> str:
    """`host:port/db` (or the socket folder) of a connection URL, without user or password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return redact_url(url)
    host = str(info.get("host") or "localhost")
    port = str(info.get("port") or "5432")
    db = str(info.get("dbname") or info.get("user") or "")
    where = host if host.startswith("/") else f"{host}:{port}"
    return f"{where}/{db}"


def connect(
    url: str | None,
    *,
    what: str = "the application database",
    setting: str = "settings.database.url (or DATABASE_URL)",
    read_only: bool = False,
    statement_timeout: float | None = None,
    connect_timeout: float = 5.0,
    autocommit: bool = False,
    application_name: str = "runbook",
) -> psycopg.Connection[Any]:
    """Open a connection. Raises ConfigError when no URL is set, UnreachableError when it cannot connect.

    `read_only` makes every transaction read-only; `statement_timeout` (seconds) bounds each statement.
    Every statement goes over the extended protocol, one statement at a time (runbook.onestatement)."""
    if not url:
        raise ConfigError(f"no database URL for {what}", hint=f"set {setting}")
    problem = url_problem(url)
    if problem:  # libpq would quote the part it cannot parse, a piece of the password with it
        raise ConfigError(
            f"the URL for {what} is not a valid PostgreSQL URL: {problem}",
            hint=f"fix {setting}: {ENCODE_HINT}",
        )
    options = []
    if statement_timeout:
        options.append(f"-c statement_timeout={int(statement_timeout * 1000)}")
    if read_only:
        options.append("-c default_transaction_read_only=on")
    kwargs: dict[str, Any] = {
        "connect_timeout": max(1, round(connect_timeout)),
        "application_name": application_name,
        "autocommit": autocommit,
        "cursor_factory": SingleStatementCursor,
    }
    if options:
        kwargs["options"] = " ".join(options)
    redact = _url_redactor(url)
    try:
        return psycopg.connect(url, **kwargs)
    except UnicodeError:  # psycopg decodes what libpq parsed: bytes that are not UTF-8 (no part is quoted)
        raise ConfigError(
            f"the URL for {what} is not a valid PostgreSQL URL: it holds bytes that are not UTF-8 text",
            hint=f"fix {setting}: {ENCODE_HINT}",
        ) from None
    except psycopg.ProgrammingError as exc:  # malformed URL
        raise ConfigError(
            f"the URL for {what} is not a valid PostgreSQL URL: {_unquoted(redact(str(exc).strip()))}",
            hint=f"fix {setting}",
        ) from None
    except psycopg.OperationalError as exc:
        reason = redact(_reason(str(exc)))
        raise UnreachableError(
            f"could not connect to {what} at {describe_url(url)}: {reason}",
            hint=f"check that the server is up and that {setting} is right",
        ) from None


def _unquoted(message: str) -> str:
    """libpq's parse error without the parts of the connection string it quotes (`missing "=" after "b"`)."""
    # greedy, first quote to last: a quoted part may hold quotes of its own (a password `?/"x`)
    kept = message.replace('"="', "\0")
    return re.sub(r'"[^\n]*"', '"..."', kept).replace("\0", '"="')


def _url_redactor(url: str) -> Redactor:
    """Masks the URL's password and query values (as written and decoded) in libpq's messages."""
    from runbook.secrets import url_secrets

    return Redactor(url_secrets(url))


def _reason(message: str) -> str:
    text = redact_url(message).strip().splitlines()
    lowered = message.lower()
    if "password authentication failed" in lowered:
        return "password authentication failed (wrong user or password)"
    if "connection refused" in lowered:
        return "connection refused"
    if "does not exist" in lowered and "database" in lowered:
        return (
            next((line for line in text if "does not exist" in line), "database does not exist")
            .split("FATAL:")[-1]
            .strip()
        )
    if "timeout" in lowered:
        return "timed out"
    return text[-1] if text else "unknown error"
