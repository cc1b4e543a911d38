"""Quarantine of journal lines that cannot be synced: `<journal>.rejected`, one JSON line per rejected
journal line (when, which line, why, and the line itself, cut at KEEP bytes), bounded in size.

When the file would grow past `limit` bytes it is rotated: the previous one becomes `<journal>.rejected.1`
(replacing an older one), so at most twice `limit` is ever kept on disk.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import IO

from runbook.state.journalread import Line

LIMIT = 4 << 20
"""Bytes of one `.rejected` file before it is rotated (4 MiB)."""
KEEP = 64 << 10
"""Bytes of a rejected line kept (64 KiB); its full length is recorded."""


class Quarantine:
    """Rejected lines of the journal at `journal`, appended to `<journal>.rejected` (opened on first use)."""

    def __init__(self, journal: Path, limit: int = LIMIT) -> None:
        self.path = Path(f"{journal}.rejected")
        self.limit = limit
        self.count = 0
        self._file: IO[str] | None = None

    def add(self, line: Line, reason: str) -> None:
        """Keep `line` aside with `reason`."""
        record = {
            "rejected_at": dt.datetime.now(dt.UTC).isoformat(),
            "line": line.number,
            "reason": reason,
            "bytes": line.length,
            "text": line.raw[:KEEP].decode("utf-8", "backslashreplace"),
        }
        text = json.dumps(record, sort_keys=True) + "\n"
        f = self._open()
        if f.tell() > 0 and f.tell() + len(text) > self.limit:
            f = self._rotate()
        f.write(text)
        self.count += 1

    def close(self) -> None:
        """Flush to disk."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def _open(self) -> IO[str]:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
            self._file.seek(0, os.SEEK_END)
        return self._file

    def _rotate(self) -> IO[str]:
        self.close()
        os.replace(self.path, f"{self.path}.1")
        return self._open()
