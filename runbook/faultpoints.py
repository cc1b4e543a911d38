"""Test-only pause points: with RUNBOOK_PAUSE_AT=<name> set, the process announces that it reached the
named step (a line on stderr and the file RUNBOOK_PAUSE_FILE, if set) and sleeps, so a crash test can kill it
exactly there. Without the variable this costs one dictionary lookup."""

from __future__ import annotations

import os
import sys
import time

POINTS = (
    "advance:locked",
    "advance:preflight",
    "advance:intent",
    "advance:flipped",
    "advance:verified",
    "advance:committed",
    "rollback:locked",
    "rollback:intent",
    "rollback:flipped",
    "rollback:committed",
)
TRANSFER_POINTS = (
    "transfer:claimed",
    "transfer:inserted",
    "transfer:marked",
    "transfer:committed",
)
TRANSFER_PGBOSS_POINTS = (
    "transfer-pgboss:claimed",
    "transfer-pgboss:copied",
    "transfer-pgboss:deleted",
    "transfer-pgboss:committed",
)
"""Steps of each `migrate transfer` batch (runbook.transfer.batch); tests/integration/transfer kills there."""


def pause(name: str) -> None:
    """Stop here for RUNBOOK_PAUSE_SECONDS (default 60) when RUNBOOK_PAUSE_AT names this point, or until the
    file RUNBOOK_PAUSE_RELEASE exists, when set (a test ends the pause once what it waits for happened)."""
    if os.environ.get("RUNBOOK_PAUSE_AT") != name:
        return
    marker = os.environ.get("RUNBOOK_PAUSE_FILE")
    if marker:
        with open(marker, "w", encoding="utf-8") as f:
            f.write(f"{name} {os.getpid()}\n")
    sys.stderr.write(f"paused at {name} (pid {os.getpid()})\n")
    sys.stderr.flush()
    deadline = time.monotonic() + float(os.environ.get("RUNBOOK_PAUSE_SECONDS", "60"))
    release = os.environ.get("RUNBOOK_PAUSE_RELEASE")
    while time.monotonic() < deadline and not (release and os.path.exists(release)):
        time.sleep(0.02 if release else max(0.0, deadline - time.monotonic()))
