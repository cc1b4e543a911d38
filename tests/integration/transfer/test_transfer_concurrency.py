"""Legacy workers claiming rows (`FOR UPDATE SKIP LOCKED`, as the legacy app does) while `migrate transfer
legacy` runs: a worker never gets a moved row, every row is either worked by the legacy path or moved, and no
job is inserted twice (counts and ids). Real pg-boss 10."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from click.testing import Result

from tests.integration.transfer.conftest import migrate, pending_rows, sql_rows, write_runbook

CLAIM = (
    """UPDATE "Job" SET "status" = 'RUNNING', "startedAt" = now() AT TIME ZONE 'UTC',"""
    """ "attempts" = "attempts" + 1 WHERE "id" = (SELECT "id" FROM "Job" WHERE "status" = 'PENDING'"""
    """ ORDER BY "createdAt" LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING "id", "status"::text"""
)
COMPLETE = (
    """UPDATE "Job" SET "status" = 'COMPLETED', "completedAt" = now() AT TIME ZONE 'UTC' WHERE "id" = %s"""
)


def legacy_worker(url: str, claimed: list[str], stop: threading.Event) -> None:
    """The legacy app's worker loop: claim the oldest PENDING row, work it, complete it."""
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            row = conn.execute(CLAIM).fetchone()
            if row is None:
                return
            claimed.append(str(row[0]))
            time.sleep(0.002)
            conn.execute(COMPLETE, (row[0],))


def racing(url: str, runbook: Path, *args: str) -> tuple[Result, list[str]]:
    """`migrate -o json transfer legacy --queue evals ARGS` while 3 legacy workers run; the rows they took."""
    claimed: list[list[str]] = [[], [], []]
    stop = threading.Event()
    threads = [threading.Thread(target=legacy_worker, args=(url, c, stop)) for c in claimed]
    for t in threads:
        t.start()
    try:
        res = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", *args)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    return res, [i for c in claimed for i in c]


def test_legacy_workers_never_get_a_moved_row(database: Callable[[str], str], tmp_path: Path) -> None:
    url = database("10")
    ids = pending_rows(url, 400)
    res, worked = racing(url, write_runbook(tmp_path), "--batch", "15")
    assert res.exit_code == 0, res.output
    status = dict(sql_rows(url, 'SELECT "id", "status"::text FROM "Job"'))
    moved = {i for i, s in status.items() if s == "CANCELLED"}
    assert worked and moved, "both paths must have taken rows for the test to mean anything"
    assert len(worked) == len(set(worked))
    assert moved.isdisjoint(worked)  # a legacy worker never got a moved row
    assert moved | set(worked) == set(ids)  # and every row went one way
    assert {status[i] for i in worked} == {"COMPLETED"}
    jobs = sql_rows(url, "SELECT id, data->>'legacyJobId' FROM pgboss.job WHERE name = 'evals'")
    assert len(jobs) == len(moved) == json.loads(res.stdout)["totals"]["moved"]
    assert {j[1] for j in jobs} == moved and len({j[0] for j in jobs}) == len(jobs)


def paused_transfer(url: str, runbook: Path, tmp_path: Path, point: str, *args: str) -> subprocess.Popen[str]:
    """`migrate transfer legacy --queue evals --batch 10 ARGS` (global ARGS first), once it stands at `point`
    of its first batch; it goes on when the test touches tmp_path/release."""
    marker = tmp_path / "paused"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "RUNBOOK_PAUSE_AT": point,
        "RUNBOOK_PAUSE_FILE": str(marker),
        "RUNBOOK_PAUSE_RELEASE": str(tmp_path / "release"),
    }
    migrate_bin = Path(sys.executable).parent / "migrate"
    argv = [
        str(migrate_bin),
        "-f",
        str(runbook),
        *args,
        "transfer",
        "legacy",
        "--queue",
        "evals",
        "--batch",
        "10",
    ]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    return proc


def test_rows_of_a_batch_in_flight_are_skipped_by_legacy_workers(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    """While a batch holds its rows (paused after the insert), the legacy claim takes the first row after
    the batch; the transfer then moves every other row, and never that one."""
    url = database("10")
    ids = pending_rows(url, 25)
    proc = paused_transfer(
        url, write_runbook(tmp_path), tmp_path, "transfer:inserted"
    )  # held: the claim below
    taken = sql_rows(url, CLAIM)
    (tmp_path / "release").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert taken == [(ids[10], "RUNNING")]  # rows 0-9 were locked by the batch: skipped, not waited for
    status = dict(sql_rows(url, 'SELECT "id", "status"::text FROM "Job"'))
    assert status == {i: ("RUNNING" if i == ids[10] else "CANCELLED") for i in ids}
    assert "batch 1: claimed 10, inserted 10, already in pg-boss 0, marked 10" in err
    assert sql_rows(url, "SELECT count(*) FROM pgboss.job WHERE name = 'evals'") == [(24,)]


def test_a_row_pending_again_behind_the_transfer_is_still_moved(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    """Each claim goes on past the last row claimed (runbook.transfer.batch); a row that becomes claimable
    behind that point meanwhile (here: a legacy worker's failed job put back to PENDING, the oldest of all)
    is moved by the last look from the start, not left behind."""
    url = database("10")
    ids = pending_rows(url, 25)
    old = pending_rows(url, 1, evaluation="retry")[0]
    sql_rows(
        url,
        """UPDATE "Job" SET "status" = 'FAILED', "createdAt" = "createdAt" - interval '1 day'"""
        " WHERE id = %s",
        (old,),
    )
    proc = paused_transfer(url, write_runbook(tmp_path), tmp_path, "transfer:committed", "-o", "json")
    sql_rows(url, """UPDATE "Job" SET "status" = 'PENDING' WHERE id = %s""", (old,))  # behind batch 1
    (tmp_path / "release").touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["totals"]["moved"] == 26
    status = dict(sql_rows(url, 'SELECT "id", "status"::text FROM "Job"'))
    assert status == dict.fromkeys([*ids, old], "CANCELLED")
    jobs = sql_rows(url, "SELECT data->>'legacyJobId' FROM pgboss.job WHERE name = 'evals'")
    assert sorted(j[0] for j in jobs) == sorted([*ids, old])
