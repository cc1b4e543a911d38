"""`kill -9` of `migrate transfer legacy` at each step of a batch (claim, insert, mark, commit), then a rerun:
every legacy row is moved exactly once (0 lost, 0 duplicated), on real pg-boss 12."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from runbook.faultpoints import TRANSFER_POINTS
from runbook.model import TransferSettings
from tests.integration.transfer.conftest import pending_rows, sql_rows, write_runbook

MIGRATE = Path(sys.executable).parent / "migrate"
ROWS, BATCH = 25, 10


def start(runbook: Path, url: str, point: str, marker: Path, *extra: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "RUNBOOK_PAUSE_AT": point,
        "RUNBOOK_PAUSE_FILE": str(marker),
        "RUNBOOK_PAUSE_SECONDS": "300",
    }
    args = [str(MIGRATE), "-f", str(runbook), "transfer", "legacy", "--queue", "evals", "--batch", str(BATCH)]
    args += extra
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(marker: Path, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"migrate ended ({proc.returncode}) before the pause: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("migrate did not reach its pause point within 30 s")
        time.sleep(0.02)


@pytest.mark.parametrize("point", TRANSFER_POINTS)
def test_kill_at_each_step_then_rerun_moves_every_row_once(
    point: str, database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database("12")
    ids = pending_rows(url, ROWS)
    runbook = write_runbook(tmp_path)
    marker = tmp_path / "paused"
    proc = start(runbook, url, point, marker)
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    committed = BATCH if point == "transfer:committed" else 0
    moved = sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'CANCELLED'""")[0][0]
    assert moved == committed
    assert sql_rows(url, "SELECT count(*) FROM pgboss.job WHERE name = 'evals'") == [(committed,)]

    rerun = subprocess.run(
        [str(MIGRATE), "-f", str(runbook), "-o", "json", "transfer", "legacy", "--queue", "evals"],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rerun.returncode == 0, rerun.stderr
    status = dict(sql_rows(url, 'SELECT "id", "status"::text FROM "Job"'))
    assert status == dict.fromkeys(ids, "CANCELLED")  # 0 lost
    jobs = sql_rows(url, "SELECT id::text, data->>'legacyJobId' FROM pgboss.job WHERE name = 'evals'")
    assert len(jobs) == ROWS and sorted(j[1] for j in jobs) == sorted(ids)  # 0 duplicated
    namespace = uuid.UUID(TransferSettings().namespace)
    assert all(j[0] == str(uuid.uuid5(namespace, f"transfer-test:{j[1]}")) for j in jobs)  # deterministic
    markers = dict(sql_rows(url, 'SELECT "id", "cancellationReason" FROM "Job"'))
    assert {j[1]: j[0] for j in jobs} == markers
