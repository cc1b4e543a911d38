"""`watch` called directly with a bounded number of rounds: the result object (outcome, rounds, stage,
transitions, exit_code, to_json) and the views handed to `on_round`."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from runbook.commands import watchsteps
from runbook.commands.advance import advance
from runbook.commands.gate import gate
from runbook.commands.history import history
from runbook.commands.status import status
from runbook.commands.watch import watch
from runbook.errors import UsageError
from runbook.exitcodes import ExitCode
from tests.commands.conftest import Workspace


def test_watch_samples_until_its_round_limit(ws: Workspace) -> None:
    advance(ws.open(), yes=True)
    views: list[Any] = []
    r = watch(ws.open(), interval=0.05, max_rounds=2, on_round=views.append)
    assert (r.outcome, r.rounds, r.stage, r.transitions, r.exit_code) == ("limit", 2, "one", [], ExitCode.OK)
    assert len(views) == 2
    data = r.to_json()
    assert (data["outcome"], data["rounds"], data["exit_code"]) == ("limit", 2, 0)
    for zero in (0.0, -1.0):  # 0 silently meant the stage's interval (60 s)
        with pytest.raises(UsageError, match=f"the watch interval must be more than 0, got {zero}") as err:
            watch(ws.open(), interval=zero, max_rounds=1)
        assert (err.value.exit_code, err.value.hint) == (ExitCode.USAGE, "e.g. --interval 30s")


def test_a_breach_rolls_back_and_exits_4(ws: Workspace) -> None:
    advance(ws.open(), yes=True)
    r = watch(ws.open(MONITOR_VALUE="3"), interval=0.05, max_rounds=5)
    assert (r.outcome, r.rounds, r.stage, r.exit_code) == ("rolled-back", 1, "legacy", ExitCode.ROLLED_BACK)
    assert r.reason is not None and "healthy" in r.reason
    assert r.transitions == [{"operation": "auto-rollback", "from": "one", "to": "legacy", "cause": "breach"}]
    assert history(ws.open()).events[-1]["operation"] == "auto-rollback"
    assert ws.flags()["PGBOSS_ENABLED"] == "false"


def test_auto_advance_moves_on_when_every_gate_allows(ws: Workspace) -> None:
    advance(ws.open(), yes=True)
    r = watch(ws.open(), interval=0.05, max_rounds=1, auto_advance=True)
    assert r.transitions == [{"operation": "advance", "from": "one", "to": "two"}]
    assert r.exit_code is ExitCode.OK
    assert status(ws.open()).stage == "two"
    assert (r.stage, r.to_json()["stage"]) == ("two", "two")  # the stage it left off in, as status says
    assert ws.flags()["PGBOSS_FOR_NEW_EVALS"] == "true"


LEGACY_MONITOR = """\
  - id: legacy
    monitor:
      - name: legacy-healthy
        kind: sql
        query: SELECT ${LEGACY_VALUE:-0}
        expect: ["value == 0"]
"""


def test_a_breach_in_the_first_stage_has_nothing_to_roll_back_to(ws: Workspace) -> None:
    """watch and gate --rollback-on-failure decide alike (autorollback.roll_back): no flip, no record; and
    both exit 1, a breach not rolled back (watch used to go on sampling and exit 0), watch at once."""
    ws.edit("  - id: legacy\n", LEGACY_MONITOR)
    views: list[Any] = []
    r = watch(ws.open(LEGACY_VALUE="1"), interval=0.05, max_rounds=5, on_round=views.append)
    assert (r.outcome, r.rounds, r.stage, r.transitions, r.exit_code) == (
        "breached",
        1,
        "legacy",
        [],
        ExitCode.NOT_READY,
    )
    assert [v.note for v in views] == ["breach: legacy is the first stage, nothing to roll back to"]
    assert r.reason is not None and r.reason.startswith("watch: legacy-healthy: 1 failure in this stage")
    assert r.reason.endswith("; legacy is the first stage, nothing to roll back to")
    assert (r.to_json()["outcome"], r.to_json()["exit_code"]) == ("breached", 1)
    g = gate(ws.open(LEGACY_VALUE="1"), rollback_on_failure=True)
    assert (g.rolled_back_to, g.not_rolled_back, g.exit_code) == (None, None, ExitCode.NOT_READY)
    assert [e["operation"] for e in history(ws.open()).events] == ["init"]
    assert ws.flags()["PGBOSS_ENABLED"] == "false"


def _rounds_at(ws: Workspace) -> list[float]:
    """When each round of the runbook was stored (the samples table's `at`, one per round), in seconds."""
    store = ws.open().store()
    return sorted({s.at.timestamp() for s in store.all_samples("cli-test")})


def test_a_waiting_watcher_that_takes_over_keeps_the_interval(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--wait: once the other watcher's lease ends, the first two samples are an interval apart (the wait
    for the lease used to count as the first round's time: the second sample followed at once), and the
    first one comes an interval after the other watcher's last sample, not right after it."""
    monkeypatch.setattr(watchsteps, "LEASE_POLL", 0.05)  # poll for the lease often: the test is quick
    advance(ws.open(), yes=True)
    session = ws.open()
    assert watch(session, interval=1.0, max_rounds=1).outcome == "limit"  # the other watcher's last sample
    assert session.store().acquire_lease("cli-test", "another watcher", 0.3)  # held, then expires
    views: list[Any] = []
    r = watch(ws.open(), interval=1.0, max_rounds=2, wait_for_lease=True, on_round=views.append)
    assert (r.outcome, r.rounds) == ("limit", 2)
    assert views[0].note == "waiting for the watcher lease held by another watcher"
    ats = _rounds_at(ws)
    assert len(ats) == 3
    gaps = [b - a for a, b in itertools.pairwise(ats)]
    assert min(gaps) >= 0.4 * 1.0, gaps  # the documented promise: no two samples closer than 0.4 interval
    assert min(gaps) >= 0.9, gaps  # in fact, the interval


def test_a_replica_taking_a_runbook_over_keeps_its_pace_and_a_watch_by_hand_samples_at_once(
    ws: Workspace,
) -> None:
    """keep_pace (replicas hand runbooks over without --wait): the first sample comes an interval after the
    last one of the watcher that gave the runbook up; a watch started by hand samples at once."""
    advance(ws.open(), yes=True)
    assert watch(ws.open(), interval=1.0, max_rounds=1).outcome == "limit"
    assert watch(ws.open(), interval=1.0, max_rounds=1, keep_pace=True).rounds == 1
    first, second = _rounds_at(ws)
    assert second - first >= 0.9, (first, second)
    assert watch(ws.open(), interval=1.0, max_rounds=1).rounds == 1
    third = _rounds_at(ws)[-1]
    assert third - second < 0.9, (second, third)  # by hand: no wait
