"""`migrate transfer legacy --workers N`: concurrent batches, each on its own connection, against live legacy
workers, at each kill point with both workers in flight, under a shared --limit, and with one worker's batch
refused: every row moved exactly once (0 lost, 0 twice), and the totals, the progress and the audited event
count exactly what committed. Real pg-boss 12."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from runbook.exitcodes import ExitCode
from runbook.faultpoints import TRANSFER_POINTS
from runbook.model import TransferSettings
from tests.integration.transfer.conftest import migrate, pending_rows, sql_rows, write_runbook
from tests.integration.transfer.test_transfer_concurrency import racing
from tests.integration.transfer.test_transfer_crashes import start, wait_for
from tests.integration.transfer.test_transfer_refused import drop_jobs

IN_FLIGHT = (
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'runbook-transfer'"
    " AND state = 'idle in transaction' AND datname = current_database()"
)
MOVED = """SELECT count(*) FROM "Job" WHERE status = 'CANCELLED'"""
JOBS = "SELECT count(*) FROM pgboss.job WHERE name = 'evals'"


def transferred(url: str, ids: list[str]) -> None:
    """Every row moved, each to exactly one job with its deterministic id, the row's marker naming it."""
    status = dict(sql_rows(url, 'SELECT "id", "status"::text FROM "Job"'))
    assert status == dict.fromkeys(ids, "CANCELLED")  # 0 lost
    jobs = sql_rows(url, "SELECT id::text, data->>'legacyJobId' FROM pgboss.job WHERE name = 'evals'")
    assert len(jobs) == len(ids) and sorted(j[1] for j in jobs) == sorted(ids)  # 0 twice
    namespace = uuid.UUID(TransferSettings().namespace)
    assert all(j[0] == str(uuid.uuid5(namespace, f"transfer-test:{j[1]}")) for j in jobs)
    assert {j[1]: j[0] for j in jobs} == dict(sql_rows(url, 'SELECT "id", "cancellationReason" FROM "Job"'))


def history_moved(runbook: Path, url: str) -> list[tuple[str, int]]:
    out = json.loads(migrate(runbook, url, "-o", "json", "history", "--operation", "transfer").stdout)
    return [(e["outcome"], e["data"]["moved"]) for e in out["events"]]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def test_two_workers_racing_live_legacy_workers(database: Callable[[str], str], tmp_path: Path) -> None:
    url = database("12")
    ids = pending_rows(url, 600)
    runbook = write_runbook(tmp_path)
    res, worked = racing(url, runbook, "--batch", "15", "--workers", "2")
    assert res.exit_code == 0, res.output
    status = dict(sql_rows(url, 'SELECT "id", "status"::text FROM "Job"'))
    moved = {i for i, s in status.items() if s == "CANCELLED"}
    assert worked and moved, "both paths must have taken rows for the test to mean anything"
    assert len(worked) == len(set(worked)) and moved.isdisjoint(worked)
    assert moved | set(worked) == set(ids)
    jobs = sql_rows(url, "SELECT id, data->>'legacyJobId' FROM pgboss.job WHERE name = 'evals'")
    out = json.loads(res.stdout)
    assert len(jobs) == len(moved) == out["totals"]["moved"] == out["totals"]["inserted"]
    assert {j[1] for j in jobs} == moved and len({j[0] for j in jobs}) == len(jobs)
    numbers = [b["batch"] for b in out["batches"]]
    assert sorted(numbers) == list(range(1, len(numbers) + 1)) == list(range(1, out["totals"]["batches"] + 1))
    assert sum(b["marked"] for b in out["batches"]) == len(moved)
    assert history_moved(runbook, url) == [("done", len(moved))]


@pytest.mark.parametrize("point", TRANSFER_POINTS)
def test_kill_with_two_batches_in_flight_then_rerun_moves_every_row_once(
    point: str, database: Callable[[str], str], tmp_path: Path
) -> None:
    """Both workers reach the point (each its own batch of 10); kill -9; a rerun with 2 workers."""
    url = database("12")
    ids = pending_rows(url, 45)
    runbook = write_runbook(tmp_path)
    marker = tmp_path / "paused"
    proc = start(runbook, url, point, marker, "--workers", "2")
    wait_for(marker, proc)
    committed = 20 if point == "transfer:committed" else 0
    if committed:
        wait_until(lambda: sql_rows(url, MOVED) == [(20,)], "both workers committed a batch")
    else:
        wait_until(lambda: sql_rows(url, IN_FLIGHT) == [(2,)], "two batches open at " + point)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    assert sql_rows(url, MOVED) == [(committed,)]
    assert sql_rows(url, JOBS) == [(committed,)]
    rerun = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--workers", "2")
    assert rerun.exit_code == 0, rerun.output
    assert json.loads(rerun.stdout)["totals"]["moved"] == 45 - committed
    transferred(url, ids)


def test_limit_is_shared_by_the_workers(database: Callable[[str], str], tmp_path: Path) -> None:
    url = database("12")
    pending_rows(url, 50)
    runbook = write_runbook(tmp_path)
    res = migrate(
        runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--batch", "4",
        "--workers", "3", "--limit", "23",
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    totals = json.loads(res.stdout)["totals"]
    assert (totals["moved"], totals["claimed"], totals["inserted"]) == (23, 23, 23)
    assert sql_rows(url, MOVED) == [(23,)] and sql_rows(url, JOBS) == [(23,)]
    assert history_moved(runbook, url) == [("done", 23)]


def test_a_refused_batch_stops_every_worker_and_what_committed_is_counted(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    """Row 33 of 60 is refused by pg-boss (a trigger drops its job): its batch rolls back, the other worker's
    batch in flight still commits, the transfer fails; the counts match what moved. Without the trigger a
    rerun moves the rest, once."""
    url = database("12")
    ids = pending_rows(url, 60)
    drop_jobs(url, "NEW.data->>'evaluationId' = 'eval-33'")
    runbook = write_runbook(tmp_path)
    args = ["-o", "json", "transfer", "legacy", "--queue", "evals", "--batch", "5", "--workers", "2"]
    res = migrate(runbook, url, *args)
    assert res.exit_code == ExitCode.NOT_READY, res.output
    assert "1 of 5 jobs of batch" in json.loads(res.stdout)["error"]["message"]
    [(moved,)] = sql_rows(url, MOVED)
    assert 30 <= moved < 60 and moved % 5 == 0  # rows 1-30 were claimed before row 33's batch
    assert sql_rows(url, JOBS) == [(moved,)]
    assert sql_rows(url, 'SELECT status::text FROM "Job" WHERE "evaluationId" = %s', ("eval-33",)) == [
        ("PENDING",)
    ]
    assert history_moved(runbook, url) == [("failed", moved)]
    sql_rows(url, "DROP TRIGGER drop_some ON pgboss.job")
    rerun = migrate(runbook, url, *args)
    assert rerun.exit_code == 0, rerun.output
    assert json.loads(rerun.stdout)["totals"]["moved"] == 60 - moved
    transferred(url, ids)
