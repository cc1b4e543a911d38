"""A process killed (SIGKILL) at every step of advance, rollback and the automatic rollback of a failed
verify: the next command reconciles, so flags and state agree, no intent is left pending, and the event log
tells the whole story (every intent is closed by its transition or by a reconcile event)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import pytest

from runbook.faultpoints import POINTS
from runbook.state import TRANSITIONS, Event
from tests.reliability.conftest import (
    NAME,
    POSTGRES_FLAGS,
    Home,
    kill,
    record,
    runbook_yaml,
    table_flags,
    wait_for_file,
)

STAGE_FLAGS = {
    "legacy": {"PGBOSS_ENABLED": "false", "PGBOSS_FOR_NEW_EVALS": "false"},
    "one": {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"},
    "two": {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "true"},
}


@dataclass(frozen=True)
class Case:
    point: str
    command: tuple[str, ...]
    extra: tuple[tuple[str, str], ...]
    pending: bool  # the kill leaves an unfinished intent
    reconcile: str | None  # what the reconcile records
    then: tuple[str, ...]  # the next command
    then_code: int
    final: str  # the stage in the end


ADVANCE = ("advance", "--yes")
ROLLBACK = ("rollback", "--reason", "crash test")
FAILING = (("VERIFY_VALUE", "2"),)
GATE = ("gate", "--rollback-on-failure")
WATCH = ("watch", "--max-samples", "1")
BREACH = (("MONITOR_VALUE", "1"),)
CASES = [
    Case("advance:locked", ADVANCE, (), False, None, ADVANCE, 0, "two"),
    Case("advance:preflight", ADVANCE, (), False, None, ADVANCE, 0, "two"),
    Case("advance:intent", ADVANCE, (), True, "already-consistent", ADVANCE, 0, "two"),
    Case("advance:flipped", ADVANCE, (), True, "reverted", ADVANCE, 0, "two"),
    Case("advance:verified", ADVANCE, (), True, "reverted", ADVANCE, 0, "two"),
    Case("advance:committed", ADVANCE, (), False, None, ADVANCE, 1, "two"),
    Case("rollback:locked", ROLLBACK, (), False, None, ROLLBACK, 4, "legacy"),
    # a rollback that reconciles an intent and finds nothing else to do exits 0 and says what it did
    Case("rollback:intent", ROLLBACK, (), True, "completed", ROLLBACK, 0, "legacy"),
    Case("rollback:flipped", ROLLBACK, (), True, "already-consistent", ROLLBACK, 0, "legacy"),
    Case("rollback:committed", ROLLBACK, (), False, None, ROLLBACK, 1, "legacy"),
    # the automatic rollback of a failed verify (advance legacy -> one) goes through the same steps
    Case("rollback:intent", ADVANCE, FAILING, True, "reverted", ROLLBACK, 0, "legacy"),
    Case("rollback:flipped", ADVANCE, FAILING, True, "already-consistent", ROLLBACK, 0, "legacy"),
    Case("rollback:committed", ADVANCE, FAILING, False, None, ROLLBACK, 1, "legacy"),
    # and so do the rollbacks of a breached monitor, by the CI gate and by the watcher
    Case("rollback:intent", GATE, BREACH, True, "completed", ROLLBACK, 0, "legacy"),
    Case("rollback:flipped", WATCH, BREACH, True, "already-consistent", ROLLBACK, 0, "legacy"),
]
RESULTS: Counter[str] = Counter()


def closed(intent: Event, events: list[Event]) -> bool:
    """Whether a later event completes or reconciles the intent (or a closed intent supersedes it)."""
    for e in events:
        if e.id <= intent.id:
            continue
        if e.intent_id == intent.id and e.operation in TRANSITIONS:
            return True
        if e.operation == "intent" and e.data.get("superseded") == intent.id:
            return closed(e, events)
    return False


def test_every_pause_point_is_covered() -> None:
    assert {c.point for c in CASES} == set(POINTS)


FLIPS = ("advance:flipped", "advance:verified", "rollback:intent", "rollback:flipped")
RUNS = [(c, "dotenv") for c in CASES] + [
    (c, "postgres") for c in CASES if c.point in FLIPS and not c.extra
]  # the flips again, with the flags in a table of another database


@pytest.mark.parametrize(("case", "backend"), RUNS, ids=[f"{c.command[0]}-{c.point}-{b}" for c, b in RUNS])
def test_a_kill_at_each_step_is_reconciled(
    home: Home, case: Case, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "postgres":
        home.env["FLAGS_URL"] = request.getfixturevalue("second_db")
        home.write(runbook_yaml(flags=POSTGRES_FLAGS))
    auto = case.command == ADVANCE and case.point.startswith("rollback:")
    if not auto:
        assert home.run(*ADVANCE).code == 0  # from stage one: advance goes to two, rollback to legacy
    before = len(home.events())
    marker = home.dir / "paused"
    extra = {
        "RUNBOOK_PAUSE_AT": case.point,
        "RUNBOOK_PAUSE_FILE": str(marker),
        "RUNBOOK_PAUSE_SECONDS": "300",
        **dict(case.extra),
    }
    proc = home.popen(*case.command, extra=extra)
    assert wait_for_file(marker, proc).startswith(case.point)
    kill(proc)

    status = home.run("-o", "json", "status")
    seen = json.loads(status.out)
    assert (seen["pending_intent"] is not None) == case.pending, seen
    if case.pending:
        assert status.code == 1
    nxt = home.run(*case.then, extra=dict(case.extra) if auto and case.then == ADVANCE else None)
    assert nxt.code == case.then_code, nxt.text
    if case.reconcile:
        assert "reconciled unfinished" in nxt.err, nxt.err
        if case.then == ROLLBACK:  # and says so in its result, not as an error
            assert "Reconciled unfinished" in nxt.out and "error:" not in nxt.err, nxt.text

    after = home.run("-o", "json", "status")
    final = json.loads(after.out)
    assert after.code == 0, after.text
    assert (final["stage"], final["pending_intent"], final["drift"]) == (case.final, None, [])
    assert final["flags"]["actual"] == STAGE_FLAGS[case.final] == final["flags"]["desired"]
    flags = home.flags() if backend == "dotenv" else table_flags(home.env["FLAGS_URL"])
    assert {k: flags[k] for k in STAGE_FLAGS[case.final]} == STAGE_FLAGS[case.final]

    events = home.events()
    new = events[before:]
    reconciles = [e for e in new if e.operation == "reconcile"]
    assert [e.outcome for e in reconciles] == ([case.reconcile] if case.reconcile else []), new
    intents = [e for e in events if e.operation == "intent"]
    assert all(closed(i, events) for i in intents), [(e.id, e.operation, e.intent_id) for e in events]
    # a reconcile that only reverts the flags closes the intent without moving the state
    moved = [
        e
        for e in events
        if e.operation in TRANSITIONS and not (e.operation == "reconcile" and e.from_stage == e.to_stage)
    ]
    versions = [e.version for e in moved]
    assert versions == list(range(1, len(versions) + 1))
    with home.store() as store:
        assert store.require(NAME).pending_intent is None
    RESULTS["cases"] += 1
    RESULTS[backend] += 1
    RESULTS["reconciled"] += len(reconciles)
    RESULTS["intents closed"] += len([e for e in new if e.operation == "intent"])


def test_zz_report_counts() -> None:
    if RESULTS["cases"]:
        record(
            f"RELIABILITY crashes: {RESULTS['cases']} SIGKILLs at {len(POINTS)} pause points (advance, "
            "rollback, auto-rollback of verify, gate and watch; "
            f"{RESULTS['dotenv']} dotenv, {RESULTS['postgres']} postgres flags): "
            f"{RESULTS['reconciled']} reconciled by the next command, {RESULTS['intents closed']} intents "
            "all closed, 0 pending, 0 flag drift"
        )
