"""A rollback preempts whatever is in flight: `migrate rollback` run while an advance is in its preflight, has
flipped the flags, or is polling verify, and while a watcher is in a round. The flags reach the rollback's
target without waiting for the transition lock (measured from the rollback process starting), the advance
or watcher stops with a `preempted` record and exit 4, nothing commits after the rollback, and the history
tells it in order (one transition per operation, consecutive versions, no pending intent, no drift)."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from runbook.state import TRANSITIONS
from tests.reliability.conftest import Home, Stderr, record, runbook_yaml, transitions, wait_for_file

LEGACY = {"PGBOSS_ENABLED": "false", "PGBOSS_FOR_NEW_EVALS": "false"}
ROUNDS = int(os.environ.get("RELIABILITY_PREEMPTION_ROUNDS", "2"))
"""Rollbacks per scenario (each takes a few seconds)."""
LATENCY_BOUND_MS = float(os.environ.get("RELIABILITY_PREEMPTION_BOUND_MS", "2000"))
LATENCIES: list[float] = []
RESULTS: Counter[str] = Counter()


def _yaml() -> str:
    """The suite's runbook with a verify that may keep failing for long (TWO_VALUE) and a slow monitor."""
    text = runbook_yaml().replace("verify_deadline: 2s", "verify_deadline: 30s")
    return text.replace(
        "      - name: two-ok\n        kind: sql\n        query: SELECT 1\n",
        "      - name: two-ok\n        kind: sql\n        query: SELECT ${TWO_VALUE:-1}\n",
    )


def _safe(home: Home) -> bool:
    try:
        flags = home.flags()
    except OSError:  # between the temp file and the rename
        return False
    return all(flags.get(k) == v for k, v in LEGACY.items())


def _aborts(home: Home) -> int:
    with psycopg.connect(home.env["DATABASE_URL"], autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM runbook.aborts").fetchone()
    return int(row[0]) if row else 0


def _rollback_and_time(home: Home, *others: Stderr, release: Path | None = None) -> tuple[float, int, str]:
    """Start `migrate rollback`; return (seconds until the flags file shows the legacy flags, code, output).
    While the processes run, the flags must never leave the legacy values again once reached. `release`: a
    file created once the rollback's abort request is in the state, ending a paused operation's pause (on a
    busy machine a fixed pause could end before the rollback has even started)."""
    started = time.monotonic()
    asked = _aborts(home) if release else 0
    rb = home.popen("rollback", "--reason", "preemption test")
    safe_at = None
    polled = 0.0
    while rb.poll() is None or any(o.proc.poll() is None for o in others):
        if release and not release.exists() and time.monotonic() - polled > 0.05:
            polled = time.monotonic()
            if _aborts(home) > asked:
                release.touch()
        safe = _safe(home)
        if safe and safe_at is None:
            safe_at = time.monotonic() - started
        assert safe or safe_at is None, "the flags left the rollback's values after it had set them"
        time.sleep(0.002)
    out, err = rb.communicate(timeout=60)
    assert safe_at is not None and _safe(home), out + err
    return safe_at, rb.returncode, out + err


def _check_history(home: Home, step: str, operation: str, before: int) -> None:
    """One rollback from one to legacy after the advance to one; a `preempted` event; nothing after."""
    events = home.events()
    moved = transitions(events)
    new = [e for e in moved if e.id > before]
    assert [(e.operation, e.from_stage, e.to_stage) for e in new] == [("rollback", "one", "legacy")], new
    assert [e.version for e in moved] == list(range(1, len(moved) + 1))
    preempted = [e for e in events if e.operation == "preempted" and e.id > before]
    assert [(e.data["operation"], e.data["step"]) for e in preempted] == [(operation, step)], preempted
    rollback = new[0]
    later = [e for e in events if e.id > rollback.id and e.operation in TRANSITIONS]
    assert later == [], later  # 0 commits after the rollback
    status = home.run("-o", "json", "status")
    seen = json.loads(status.out)
    got = (status.code, seen["stage"], seen["pending_intent"], seen["drift"])
    assert got == (0, "legacy", None, []), seen
    RESULTS["commits after"] += len(later)


def _at_one(home: Home) -> int:
    home.write(_yaml())
    ran = home.run("advance", "--yes")
    assert ran.code == 0, ran.text
    return max(e.id for e in home.events())


@pytest.mark.parametrize("point", ["advance:preflight", "advance:intent", "advance:flipped"])
@pytest.mark.parametrize("n", range(ROUNDS))
def test_rollback_preempts_a_paused_advance(home: Home, point: str, n: int) -> None:
    before = _at_one(home)
    marker = home.dir / "paused"
    release = home.dir / "release"
    extra = {
        "RUNBOOK_PAUSE_AT": point,
        "RUNBOOK_PAUSE_FILE": str(marker),
        "RUNBOOK_PAUSE_SECONDS": "60",
        "RUNBOOK_PAUSE_RELEASE": str(release),
    }
    adv = Stderr(home.popen("advance", "--yes", extra=extra))
    wait_for_file(marker, adv.proc)
    if point == "advance:flipped":
        assert home.flags()["PGBOSS_FOR_NEW_EVALS"] == "true"  # the advance's flip is in place
    took, code, text = _rollback_and_time(home, adv, release=release)
    LATENCIES.append(took)
    assert code == 4, text
    assert "Preempted advance" in text, text
    acode, _out, aerr = adv.finish()
    assert acode == 4 and "advance preempted at" in aerr, aerr
    step = {"advance:preflight": "preflight", "advance:intent": "flip", "advance:flipped": "flip"}[point]
    _check_history(home, step, "advance", before)
    RESULTS["advance"] += 1


@pytest.mark.parametrize("n", range(ROUNDS))
def test_rollback_preempts_an_advance_polling_verify(home: Home, n: int) -> None:
    before = _at_one(home)
    adv = Stderr(home.popen("advance", "--yes", extra={"TWO_VALUE": "2"}))  # verify keeps failing
    adv.wait_for("verify: waiting for")
    took, code, text = _rollback_and_time(home, adv)
    LATENCIES.append(took)
    assert code == 4, text
    acode, _out, aerr = adv.finish()
    assert acode == 4 and "advance preempted at verify" in aerr, aerr
    assert "auto-rollback" not in aerr
    _check_history(home, "verify", "advance", before)
    RESULTS["advance"] += 1


@pytest.mark.parametrize("n", range(ROUNDS))
def test_rollback_stops_a_watch_round(home: Home, n: int) -> None:
    before = _at_one(home)
    slow = {"MONITOR_VALUE": "0 FROM pg_sleep(0.5)"}  # every round measures for half a second
    watch = Stderr(home.popen("watch", "--interval", "0.2s", "--max-samples", "200", extra=slow))
    deadline = time.monotonic() + 60
    with home.store() as store:
        while not store.samples("reliability", "one", "healthy"):
            assert watch.proc.poll() is None and time.monotonic() < deadline, watch.lines
            time.sleep(0.02)
    took, code, text = _rollback_and_time(home, watch)
    LATENCIES.append(took)
    assert code == 4, text
    wcode, out, err = watch.finish()
    assert wcode == 4 and "preempted by a rollback" in out, out + err
    _check_history(home, "sample", "watch", before)
    RESULTS["watch"] += 1


@pytest.mark.parametrize("n", range(ROUNDS))
def test_rollback_stops_a_gate_that_is_measuring(home: Home, n: int) -> None:
    before = _at_one(home)
    slow = {"MONITOR_VALUE": "0 FROM pg_sleep(1.5)"}  # the monitor passes, slowly
    gate = Stderr(home.popen("-o", "json", "gate", extra=slow))
    deadline = time.monotonic() + 60
    with psycopg.connect(home.env["DATABASE_URL"], autocommit=True) as conn:
        while not conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
            ("%pg_sleep(1.5)%",),
        ).fetchone():
            assert gate.proc.poll() is None and time.monotonic() < deadline, gate.lines
            time.sleep(0.01)
    took, code, text = _rollback_and_time(home, gate)
    LATENCIES.append(took)
    assert code == 4, text
    gcode, out, err = gate.finish()
    assert gcode == 4, out + err  # never a PASS over a stage being rolled back
    assert json.loads(out)["error"]["type"] == "PreemptedError", out
    _check_history(home, "judging", "gate", before)
    RESULTS["gate"] += 1


@pytest.fixture(scope="module", autouse=True)
def _report_preemption() -> Iterator[None]:
    """The count line, and the bounds on it, once the module's rollbacks have run (any subset of them)."""
    yield
    if not LATENCIES:
        return
    ms = sorted(x * 1000 for x in LATENCIES)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    record(
        f"RELIABILITY preemption: {len(ms)} rollbacks during advance/watch/gate ({RESULTS['advance']} "
        f"advance: preflight, intent, flip, verify; {RESULTS['watch']} watch rounds; "
        f"{RESULTS['gate']} gate runs), "
        "p50 to safe flags "
        f"{statistics.median(ms):.0f} ms, p99 {p99:.0f} ms, "
        f"{RESULTS['commits after']} commits after a rollback"
    )
    assert RESULTS["commits after"] == 0
    # The target is p99 < 500 ms (process start included: 311-375 ms when the 2-core machine is quiet, up to
    # 817 ms while other suites run). The bound here is loose so that a busy machine does not fail the
    # suite (the old code took seconds: it waited for the lock); the line above reports the figure.
    assert p99 < LATENCY_BOUND_MS, ms


def test_a_watch_breach_preempts_an_advance_holding_the_lock(home: Home) -> None:
    """An automatic rollback is a rollback too: a watcher that sees a breach while an advance holds the lock
    (here paused in its preflight, before any intent) preempts it as `migrate rollback` does instead of
    waiting for the lock: the flags stay safe, the advance stops at its next step and never commits, one
    transition (the auto-rollback) is recorded."""
    before = _at_one(home)
    marker, release = home.dir / "paused", home.dir / "release"
    pause = {
        "RUNBOOK_PAUSE_AT": "advance:preflight",
        "RUNBOOK_PAUSE_FILE": str(marker),
        "RUNBOOK_PAUSE_SECONDS": "60",
        "RUNBOOK_PAUSE_RELEASE": str(release),
    }
    adv = Stderr(home.popen("advance", "--yes", extra=pause))
    wait_for_file(marker, adv.proc)
    asked = _aborts(home)
    started = time.monotonic()
    watch = Stderr(
        home.popen("watch", "--interval", "0.2s", "--max-samples", "50", extra={"MONITOR_VALUE": "1"})
    )
    while watch.proc.poll() is None and time.monotonic() - started < 60:
        if not release.exists() and _aborts(home) > asked:
            release.touch()  # the watcher asked the advance to stop: let it reach its next step
        time.sleep(0.05)
    wcode, out, err = watch.finish()
    took = time.monotonic() - started
    assert wcode == 4, out + err
    assert _safe(home)
    acode, _out, aerr = adv.finish()
    assert acode == 4 and "advance preempted at preflight" in aerr, aerr
    new = [e for e in transitions(home.events()) if e.id > before]
    assert [(e.operation, e.from_stage, e.to_stage) for e in new] == [("auto-rollback", "one", "legacy")], new
    assert new[0].data["preempted"]["operation"] == "advance"
    assert took < 30, took  # not a wait for the lock that ends in LockedError
