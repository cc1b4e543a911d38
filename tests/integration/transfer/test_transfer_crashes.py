"""`kill -9` of `migrate transfer legacy` at each step of a batch (claim, insert, mark, commit), then a rerun:
every legacy row is moved exactly once (0 lost, 0 duplicated), on real pg-boss 12."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def transfer_events(runbook: Path, url: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(MIGRATE), "-f", str(runbook), "-o", "json", "history", "--operation", "transfer"],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout)["events"])


def kill_at(runbook: Path, url: str, point: str, marker: Path) -> None:
    marker.unlink(missing_ok=True)
    proc = start(runbook, url, point, marker)
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_killed_runs_are_audited_once_by_the_next_run_and_the_history_adds_up(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    """A run killed after its first batch committed, another killed inside a batch: the run after each one
    records its 'interrupted' event from the ledger (10 and 0 rows), the last its own (15); a later one
    records nothing again, even when an auditor died after the event but before marking the run audited.
    The moved counts of the history add up to the rows SQL shows moved; the report shows the interrupted
    runs."""
    url = database("12")
    pending_rows(url, ROWS)
    runbook = write_runbook(tmp_path)
    kill_at(runbook, url, "transfer:committed", tmp_path / "paused1")
    kill_at(runbook, url, "transfer:inserted", tmp_path / "paused2")
    # the second run, before it was killed, recorded the first one's event (10 rows); its own is missing
    assert [(e["outcome"], e["data"]["moved"]) for e in transfer_events(runbook, url)] == [
        ("interrupted", BATCH)
    ]

    env = {**os.environ, "DATABASE_URL": url}
    cmd = [str(MIGRATE), "-f", str(runbook), "-o", "json", "transfer", "legacy", "--queue", "evals"]
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    out = json.loads(rerun.stdout)
    assert [r["moved"] for r in out["interrupted"]] == [0]
    assert out["totals"]["moved"] == ROWS - BATCH
    text = subprocess.run(cmd[:3] + cmd[5:], env=env, capture_output=True, text=True, timeout=60)
    assert text.returncode == 0 and "killed" not in text.stdout, text.stdout  # audited once: none left

    # an auditor that died between its event and marking the run audited: the history's run id stops a repeat
    sql_rows(url, "UPDATE runbook.transfer_runs SET audited_at = NULL")
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr

    events = transfer_events(runbook, url)
    outcomes = [(e["outcome"], e["data"]["moved"]) for e in events]
    assert outcomes == [
        ("interrupted", BATCH),
        ("interrupted", 0),
        ("done", ROWS - BATCH),
        ("done", 0),
        ("done", 0),
    ]
    assert len({e["data"]["run_id"] for e in events}) == len(events)
    moved = sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'CANCELLED'""")[0][0]
    assert moved == ROWS == sum(int(e["data"]["moved"]) for e in events)
    first = events[0]
    assert "moved 10 rows in 1 batch (inserted 10, already present 0); interrupted" in str(first["reason"])
    assert first["data"]["queue"] == "evals" and first["data"]["batch"] == BATCH

    page = tmp_path / "report.html"
    made = subprocess.run(
        [str(MIGRATE), "-f", str(runbook), "report", "--out", str(page)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    html = page.read_text()
    assert html.count("outcome: interrupted") == 2 and "moved 10 rows in 1 batch" in html
