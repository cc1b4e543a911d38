"""`kill -9` of `migrate transfer pgboss` (pg-boss 10 -> 12, two databases) at each step of a batch (claimed,
copied + ledger committed in the target, deleted in the source, committed), then a rerun: every job is in the
target exactly once and gone from the source (0 lost, 0 duplicated), the ledger all `done`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runbook.faultpoints import TRANSFER_PGBOSS_POINTS
from tests.integration.transfer.conftest import Boss, sql_rows, write_runbook
from tests.integration.transfer.test_transfer_crashes import wait_for

MIGRATE = Path(sys.executable).parent / "migrate"
JOBS, BATCH = 25, 10
COPIED = {
    "transfer-pgboss:claimed": (JOBS, 0),
    "transfer-pgboss:copied": (JOBS, BATCH),  # the target committed; the source still holds them
    "transfer-pgboss:deleted": (JOBS, BATCH),  # the source's delete is not committed
    "transfer-pgboss:committed": (JOBS - BATCH, BATCH),
}
"""Jobs of queue evals in (source, target) after the kill at each point."""


def args(runbook: Path, src: str, dst: str) -> list[str]:
    return [
        str(MIGRATE), "-f", str(runbook), "-o", "json", "transfer", "pgboss", "--from-schema", "pgboss",
        "--from-url", src, "--to-schema", "pgboss", "--to-url", dst, "--batch", str(BATCH),
    ]  # fmt: skip


def count(url: str) -> int:
    return int(sql_rows(url, "SELECT count(*) FROM pgboss.job WHERE name = 'evals'")[0][0])


def kill_at(point: str, runbook: Path, src: str, dst: str, tmp_path: Path) -> None:
    """Run the transfer paused at fault point `point`, then SIGKILL it there."""
    marker = tmp_path / "paused"
    env = {
        **os.environ,
        "DATABASE_URL": dst,
        "RUNBOOK_PAUSE_AT": point,
        "RUNBOOK_PAUSE_FILE": str(marker),
        "RUNBOOK_PAUSE_SECONDS": "300",
    }
    proc = subprocess.Popen(args(runbook, src, dst), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(marker, proc)  # type: ignore[arg-type]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.mark.parametrize("point", TRANSFER_PGBOSS_POINTS)
def test_kill_at_each_step_then_rerun_moves_every_job_once(
    point: str, bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    src, dst = database("10"), database("12")
    sent = bosses["10"].run(src, "send", "evals", str(JOBS))
    runbook = write_runbook(tmp_path)
    kill_at(point, runbook, src, dst, tmp_path)
    assert (count(src), count(dst)) == COPIED[point]

    rerun = subprocess.run(
        args(runbook, src, dst), env={**os.environ, "DATABASE_URL": dst}, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    out = json.loads(rerun.stdout)
    assert out["recovered"] == (
        BATCH if point in ("transfer-pgboss:copied", "transfer-pgboss:deleted") else 0
    )
    assert count(src) == 0  # nothing left behind
    moved = sql_rows(dst, "SELECT id::text, data FROM pgboss.job WHERE name = 'evals'")
    assert len(moved) == JOBS  # 0 duplicated (ids are unique per queue, and none missing)
    assert sorted(i for i, _ in moved) == sorted(sent)  # 0 lost, same ids
    assert sorted(d["ref"] for _, d in moved) == list(range(JOBS))
    ledger = sql_rows(
        dst, "SELECT phase, count(*), sum(cardinality(job_ids)) FROM runbook.transfer_ledger GROUP BY 1"
    )
    assert ledger[0][0] == "done" and len(ledger) == 1 and ledger[0][2] >= JOBS

    # the killed run is in the history, recorded by the rerun with what the ledger says it moved (a batch the
    # rerun finished for it included): the moved counts add up to the jobs in the target, once
    history = subprocess.run(
        [str(MIGRATE), "-f", str(runbook), "-o", "json", "history", "--operation", "transfer"],
        env={**os.environ, "DATABASE_URL": dst}, capture_output=True, text=True,
    )  # fmt: skip
    events = json.loads(history.stdout)["events"]
    killed = JOBS - COPIED[point][0] + out["recovered"]
    assert [(e["outcome"], e["data"]["moved"]) for e in events] == [
        ("interrupted", killed), ("done", JOBS - killed)
    ]  # fmt: skip
    assert events[0]["data"]["recovered"] == out["recovered"] and out["interrupted"][0]["moved"] == killed
    assert sum(e["data"]["moved"] for e in events) == count(dst) == JOBS


def test_a_job_a_source_worker_takes_after_the_crash_stays_there_and_its_copy_is_withdrawn(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    src, dst = database("10"), database("12")
    sent = bosses["10"].run(src, "send", "evals", str(JOBS))
    runbook = write_runbook(tmp_path)
    kill_at("transfer-pgboss:copied", runbook, src, dst, tmp_path)
    copied = [r[0] for r in sql_rows(dst, "SELECT id::text FROM pgboss.job WHERE name = 'evals' ORDER BY id")]
    # the crash released the batch: a pg-boss 10 worker on the source takes one copied job, finishes another
    taken, finished = copied[0], copied[1]
    sql_rows(src, "UPDATE pgboss.job SET state = 'active', started_on = now() WHERE id = %s", (taken,))
    sql_rows(
        src, "UPDATE pgboss.job SET state = 'completed', completed_on = now() WHERE id = %s", (finished,)
    )

    rerun = subprocess.run(
        args(runbook, src, dst), env={**os.environ, "DATABASE_URL": dst}, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    out = json.loads(rerun.stdout)
    assert (out["recovered"], out["withdrawn"]) == (BATCH - 2, 2)
    left = dict(sql_rows(src, "SELECT id::text, state::text FROM pgboss.job WHERE name = 'evals'"))
    assert left == {taken: "active", finished: "completed"}  # the worker keeps what it took
    moved = [r[0] for r in sql_rows(dst, "SELECT id::text FROM pgboss.job WHERE name = 'evals'")]
    assert len(moved) == JOBS - 2 and sorted(moved + list(left)) == sorted(sent)  # each job in one place
