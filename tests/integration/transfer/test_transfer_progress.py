"""On a terminal `migrate transfer legacy` draws one progress bar in place (rows moved of all claimable,
rate, time left) instead of a line per batch: the installed CLI run with its stderr on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.integration.transfer.conftest import pending_rows, write_runbook


def test_a_terminal_gets_a_bar_not_batch_lines(database: Callable[[str], str], tmp_path: Path) -> None:
    url = database("12")
    pending_rows(url, 30)
    runbook = write_runbook(tmp_path)
    main, follower = pty.openpty()
    migrate = Path(sys.executable).parent / "migrate"
    proc = subprocess.run(
        [str(migrate), "-f", str(runbook), "transfer", "legacy", "--queue", "evals", "--batch", "10"],
        env={**os.environ, "DATABASE_URL": url, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=follower,
        timeout=120,
        check=False,
    )
    os.close(follower)
    err = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(main)
    text = err.decode()
    assert proc.returncode == 0, text + proc.stdout.decode()
    assert "\r\x1b[K10 rows moved, counting the rest" in text
    assert "\r\x1b[K[########----------------] 10/30 rows" in text
    assert "\r\x1b[K[########################] 30/30 rows" in text and "done" in text
    assert "batch 1:" not in text
    assert proc.stdout.decode().startswith("Moved 30 legacy rows to pg-boss queue evals (v12) in 3 batches")
