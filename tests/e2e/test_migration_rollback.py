"""Stages that go bad: the toolkit rolls back by itself (the watcher, or a CI gate run), the app switches
within a second, and no job is lost or run twice. Real CLI, shipped runbook x0.001, real pg-boss."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from runbook.demo.story import set_app_flags
from tests.e2e.conftest import AppFactory
from tests.e2e.migration_support import (
    APP_ENV,
    events,
    load,
    make_migration,
    rows,
    settle,
)

pytestmark = pytest.mark.e2e

SAFE = {"PGBOSS_ENABLED": False, "PGBOSS_FOR_NEW_EVALS": False, "PGBOSS_FOR_ALL_JOBS": False}


def failed_in_pgboss(database_url: str, expected: int, timeout: float = 10.0) -> int:
    """Jobs pg-boss holds as failed, once it agrees with `expected` (the app writes its ledger just before
    pg-boss records the failure) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        count = int(rows(database_url, "SELECT count(*) FROM pgboss.job WHERE state = 'failed'")[0][0])
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


def flip_time(database_url: str) -> float:
    """Epoch seconds at which the flag backend last wrote PGBOSS_ENABLED."""
    found = rows(
        database_url, "SELECT extract(epoch FROM updated_at) FROM runbook.flags WHERE name = 'PGBOSS_ENABLED'"
    )
    return float(found[0][0])


@pytest.mark.parametrize("major", ["10", "12"])
def test_failing_evaluations_roll_back_by_themselves(
    major: str, make_app: AppFactory, pg_url: str, tmp_path: Path
) -> None:
    app = make_app(major, **APP_ENV)
    m = make_migration(tmp_path, pg_url, app)
    with load(app) as bg:
        m.climb(["increment-1", "increment-2", "increment-3"])
        m.watch(4)
        set_app_flags(pg_url, {"FAULT_FAIL_RATE_EVALUATION": "0.8"})
        watched = m.watch(80, expect=4)  # a job fails once its 3 retries are used up (1+2+4 s backoff)
        assert app.wait_for_flags(SAFE, timeout=1.0)["flags"] == SAFE
        flipped = flip_time(pg_url)
        assert m.stage() == "legacy"
        set_app_flags(pg_url, {"FAULT_FAIL_RATE_EVALUATION": None})
        time.sleep(2)
        sent = bg.stop()
    assert "auto-rollback increment-3 -> legacy" in watched.output

    # the app stopped sending to pg-boss within a second of the flip
    late = rows(
        pg_url,
        "SELECT count(*) FROM ledger WHERE routed_to = 'pgboss' AND created_at > to_timestamp(%s + 1.0)",
        (flipped,),
    )
    assert late[0][0] == 0
    after = rows(pg_url, "SELECT count(*) FROM ledger WHERE created_at > to_timestamp(%s + 1.0)", (flipped,))
    assert after[0][0] > 0  # the load kept going, all of it to the legacy table

    # jobs already in pg-boss were processed (workers keep running) or reported as failed: none lost or twice
    summary = settle(pg_url, sent)
    assert (summary["duplicated"], summary["lost"]) == (0, 0), summary
    assert (
        summary["failed"]
        == summary["routed_to"]["pgboss"]["failed"]
        == failed_in_pgboss(pg_url, summary["failed"])
    )
    assert summary["processed_once"] + summary["failed"] == sent.sent
    assert summary["failed_attempts"] > 0

    # history explains the decision with the measured values
    (rollback,) = events(pg_url, "auto-rollback")
    assert (rollback["from_stage"], rollback["to_stage"]) == ("increment-3", "legacy")
    assert rollback["flags_after"] == {k: "false" for k in SAFE}
    # work left behind in pg-boss at the flip is reported (retrying evaluations), and drained afterwards
    left = {q["queue"]: q for q in rollback["data"]["leftover"]}
    assert left["evaluation"]["queued"] + left["evaluation"]["active"] > 0, left
    text = m.history("--operation", "auto-rollback")
    reason = re.search(r"reason: watch: evaluation-error-rate: (.*)", text)
    assert reason, text
    rate = re.search(r"error rate ([0-9.]+) \((\d+) failed of (\d+) finished", reason.group(1))
    assert rate, reason.group(1)
    assert float(rate.group(1)) > 0.05 and int(rate.group(2)) > 0
    assert float(rate.group(1)) == pytest.approx(int(rate.group(2)) / int(rate.group(3)), abs=0.01)
    assert re.search(r"FAIL\s+evaluation-error-rate\s+error rate [0-9.]+ .*> max 0\.05", text), text


def test_memory_leak_fails_the_gate_and_rolls_back(make_app: AppFactory, pg_url: str, tmp_path: Path) -> None:
    app = make_app("12", **APP_ENV)
    m = make_migration(tmp_path, pg_url, app)
    with load(app, rate=4, eval_share=0.2) as bg:  # mostly imports: increment-1's rate check needs 40
        m.climb(["increment-1", "increment-2"])
        m.watch(6)
        set_app_flags(pg_url, {"FAULT_LEAK_MB_PER_SEC": "40"})
        output = m.gate_until_rollback()
        assert app.wait_for_flags(SAFE, timeout=1.0)["faults"]["leakedMb"] > 0
        set_app_flags(pg_url, {"FAULT_LEAK_MB_PER_SEC": None})
        sent = bg.stop()
    assert m.stage() == "legacy"
    assert re.search(
        r"FAIL\s+worker-memory\s+memory.rss from .*(above the max|growth \+[0-9.]+MB/h.*above)", output
    )
    (rollback,) = events(pg_url, "auto-rollback")
    assert rollback["from_stage"] == "increment-2" and rollback["reason"].startswith("gate: worker-memory:")
    memory = [v for v in rollback["verdicts"] if v["check"] == "worker-memory"]
    assert memory[0]["verdict"] == "fail" and memory[0]["value"] > 100 * 2**20
    summary = settle(pg_url, sent)
    assert (summary["duplicated"], summary["lost"], summary["failed"]) == (0, 0, 0), summary


def test_worker_crash_fails_uptime_and_rolls_back(make_app: AppFactory, pg_url: str, tmp_path: Path) -> None:
    app = make_app("12", **APP_ENV)
    m = make_migration(tmp_path, pg_url, app)
    with load(app, rate=4) as bg:
        m.climb(["increment-1"])
        m.watch(3)
        first_pid = app.pid
        assert app.call("POST", "/api/admin/crash")["crashing"] is True
        assert app.wait_exit(10) == 1
        app.start()  # the supervisor (pm2, systemd, kubernetes) starts it again
        assert app.pid != first_pid
        output = m.gate_until_rollback()
        assert app.wait_for_flags(SAFE, timeout=1.0)["flags"] == SAFE
        sent = bg.stop()
    assert m.stage() == "legacy"
    assert re.search(r"FAIL\s+worker-uptime\s+startedAt from .*", output), output
    (rollback,) = events(pg_url, "auto-rollback")
    assert rollback["reason"].startswith("gate: worker-uptime:"), rollback["reason"]
    # nothing ran twice; a job the crash cut short is not lost: it is still in its queue or table, where
    # pg-boss (after expireInSeconds) or the legacy sweep (after 30 minutes) retries it
    summary = wait_or_summary(pg_url, sent.sent)
    assert summary["duplicated"] == 0, summary
    unsettled = rows(
        pg_url,
        """SELECT l.key FROM ledger l WHERE l.processed_count = 0 AND NOT l.gave_up
           AND NOT EXISTS (SELECT 1 FROM pgboss.job j WHERE j.id::text = l.job_id AND j.state = 'active')
           AND NOT EXISTS (SELECT 1 FROM "Job" g WHERE g.id::text = l.job_id AND g.status = 'RUNNING')""",
    )
    assert unsettled == []


def wait_or_summary(database_url: str, created: int, timeout: float = 30.0) -> dict[str, object]:
    """The ledger summary once everything but jobs a crash left `active` has settled."""
    from runbook.db import connect
    from runbook.demo import ledger_summary

    deadline = time.monotonic() + timeout
    with connect(database_url, what="the app database") as conn:
        while True:
            summary = ledger_summary(conn)
            stuck = rows(
                database_url,
                """SELECT count(*) FROM ledger l WHERE processed_count = 0 AND NOT gave_up AND (
                     EXISTS (SELECT 1 FROM pgboss.job j WHERE j.id::text = l.job_id AND j.state = 'active')
                     OR EXISTS (SELECT 1 FROM "Job" g
                                WHERE g.id::text = l.job_id AND g.status = 'RUNNING'))""",
            )[0][0]
            if summary["created"] == created and summary["lost"] == stuck:
                return summary
            if time.monotonic() > deadline:
                return summary
            time.sleep(0.25)
