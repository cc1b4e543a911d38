"""A PostgreSQL crash under `migrate transfer legacy`, whose batches commit asynchronously
(runbook.transfer.batch): the server stops as a power cut would (no checkpoint, unwritten log lost) and starts
again.

The server of these tests keeps commit records in its log buffers for up to 10 s (wal_writer_delay), so a
crash really loses the batches committed just before it: what the tests show is that it loses whole batches
only (a legacy row is marked exactly when its job is in pg-boss), that a rerun then moves every row exactly
once, and that a transfer that has reported its totals has them on disk (without the final flush, none of
its 3,000 rows survived the crash)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.integration.checks_pg.legacy_app import DDL
from tests.integration.transfer.conftest import (
    QUEUE_OPTIONS,
    QUEUES,
    RUNBOOK,
    Boss,
    pending_rows,
    sql_rows,
    write_runbook,
)
from tests.reliability.conftest import RestartablePostgres

MIGRATE = Path(sys.executable).parent / "migrate"
ROWS, BATCH = 3000, 50
STATE_ELSEWHERE = RUNBOOK.replace(
    "    url: ${DATABASE_URL}\n", '    url: ${DATABASE_URL}\n  state: {url: "${STATE_URL}"}\n'
)
assert STATE_ELSEWHERE != RUNBOOK


@pytest.fixture
def server(
    tmp_path_factory: pytest.TempPathFactory, bosses: dict[str, Boss]
) -> Iterator[RestartablePostgres]:
    """A server of this test alone with the legacy table and pg-boss 12; commits stay unwritten up to 10 s."""
    root = Path(tmp_path_factory.mktemp("crash-pg"))
    pg = RestartablePostgres(root)
    try:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET wal_writer_delay = '10s'")
            conn.execute("ALTER SYSTEM SET wal_writer_flush_after = '1GB'")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(DDL)
        bosses["12"].run(pg.url, "setup", *QUEUES, env={"QUEUE_OPTIONS": json.dumps(QUEUE_OPTIONS)})
        yield pg
    finally:
        pg.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def transfer(runbook: Path, url: str, state_url: str | None = None) -> subprocess.Popen[str]:
    args = [str(MIGRATE), "-f", str(runbook), "-o", "json", "transfer", "legacy", "--queue", "evals"]
    return subprocess.Popen(
        [*args, "--batch", str(BATCH)],
        env={**os.environ, "DATABASE_URL": url, "STATE_URL": state_url or url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def moved(url: str) -> int:
    return int(sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'CANCELLED'""")[0][0])


def wait_until_moved(url: str, proc: subprocess.Popen[str], rows: int) -> None:
    deadline = time.monotonic() + 60
    while moved(url) < rows:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"the transfer did not move {rows} rows within 60 s"
        time.sleep(0.01)


def flush(url: str) -> int:
    """Commit a write with synchronous_commit on (it flushes every commit before it); rows moved by then."""
    with psycopg.connect(url) as conn:
        done = moved(url)
        conn.execute("SELECT pg_logical_emit_message(true, 'test', 'flush')")
    return done


def assert_whole_batches(url: str) -> int:
    """Every marked legacy row has its job in pg-boss (under the id its marker names) and every job its
    marked row; returns how many rows are moved."""
    rows = dict(sql_rows(url, """SELECT "id", "cancellationReason" FROM "Job" WHERE status = 'CANCELLED'"""))
    jobs = sql_rows(url, "SELECT data->>'legacyJobId', id::text FROM pgboss.job WHERE name = 'evals'")
    assert len(jobs) == len({j[0] for j in jobs})  # no legacy row twice
    assert dict(jobs) == rows
    return len(rows)


def test_a_crash_mid_transfer_loses_whole_batches_only_and_a_rerun_moves_every_row_once(
    server: RestartablePostgres, tmp_path: Path
) -> None:
    ids = pending_rows(server.url, ROWS)
    runbook = write_runbook(tmp_path)
    proc = transfer(runbook, server.url)
    wait_until_moved(server.url, proc, 10 * BATCH)
    flushed = flush(server.url)  # what a pg-boss fetch or a legacy worker's claim would do meanwhile
    wait_until_moved(server.url, proc, flushed + 5 * BATCH)
    server.crash()
    out, err = proc.communicate(timeout=60)
    error = json.loads(out)["error"]
    assert (proc.returncode, error["type"]) == (5, "UnreachableError"), err
    assert "run the same command again" in error["hint"]
    server.start()

    kept = assert_whole_batches(server.url)
    assert flushed <= kept < ROWS and kept % BATCH == 0  # whole batches, all flushed ones among them

    rerun = transfer(runbook, server.url)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert json.loads(out)["totals"]["moved"] == ROWS - kept
    assert assert_whole_batches(server.url) == ROWS
    assert sorted(r[0] for r in sql_rows(server.url, 'SELECT "id" FROM "Job"')) == sorted(ids)


def test_a_transfer_that_reported_its_totals_has_them_on_disk(
    server: RestartablePostgres, database: Callable[[str], str], tmp_path: Path
) -> None:
    """Runbook's state on another server: its event's commit does not flush the application's log."""
    pending_rows(server.url, ROWS)
    runbook = write_runbook(tmp_path, STATE_ELSEWHERE)
    proc = transfer(runbook, server.url, database("12"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert json.loads(out)["totals"]["moved"] == ROWS
    server.crash()  # at once: the log writer has not run since (10 s)
    server.start()
    assert assert_whole_batches(server.url) == ROWS
