"""The read-only connections checks measure through, one per database URL, kept by a session from one
monitoring round to the next (a watcher measures every interval for days: opening them anew each round cost
a few milliseconds a round, each time). A connection found closed or broken is replaced on its next use; after
a check timed out every one is cancelled and dropped (runbook.checkrun)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import psycopg


class CheckConnections:
    def __init__(self) -> None:
        self._conns: dict[str, psycopg.Connection[Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, open_: Callable[[], psycopg.Connection[Any]]) -> psycopg.Connection[Any]:
        """The live connection for `key`, opened with `open_()` when there is none (or it broke)."""
        with self._lock:
            conn = self._conns.get(key)
            if conn is not None and (conn.closed or conn.broken):
                del self._conns[key]
                conn = None
        if conn is None:
            conn = open_()
            with self._lock:
                self._conns[key] = conn
        return conn

    def cancel(self) -> None:
        """Cancel running queries and drop every connection (after a check timed out)."""
        for conn in self._take():
            with contextlib.suppress(psycopg.Error):
                conn.cancel_safe(timeout=2.0)
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def close(self) -> None:
        """Close every connection."""
        for conn in self._take():
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def _take(self) -> list[psycopg.Connection[Any]]:
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        return conns
