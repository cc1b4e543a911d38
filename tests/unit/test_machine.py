"""The state machine's pure decisions."""

from __future__ import annotations

import datetime as dt

from runbook import machine
from runbook.measurement import Measurement, Verdict
from runbook.model import FlagDecl, ManualItem, Runbook, Settings, Soak, Stage

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def rb(*stages: Stage) -> Runbook:
    flags = (FlagDecl("A", "false"), FlagDecl("B", "false"), FlagDecl("C", "off"))
    return Runbook(version=1, name="t", settings=Settings(), flags=flags, stages=stages)


def m(check: str, verdict: Verdict) -> Measurement:
    return Measurement(verdict=verdict, value=1, explanation=f"{check} is {verdict.value}", check=check)


STAGES = (
    Stage("legacy"),
    Stage("one", set={"A": "true"}, soak=Soak(duration=3600)),
    Stage("two", set={"B": "true"}, rollback_to="one"),
    Stage(
        "three",
        set={"A": "false", "C": "on"},
        irreversible=True,
        manual=(ManualItem("stop", "workers stopped"),),
    ),
    Stage("four"),
)


def test_desired_flags_are_the_cumulative_merge_from_the_first_stage() -> None:
    r = rb(*STAGES)
    assert r.desired_flags("legacy") == {"A": "false", "B": "false", "C": "off"}
    assert r.desired_flags("one") == {"A": "true", "B": "false", "C": "off"}
    assert r.desired_flags("two") == {"A": "true", "B": "true", "C": "off"}
    assert r.desired_flags("three") == {"A": "false", "B": "true", "C": "on"}


def test_rollback_target_defaults_to_the_first_stage() -> None:
    r = rb(*STAGES)
    assert r.rollback_target("one").id == "legacy"
    assert r.rollback_target("two").id == "one"
    assert r.rollback_target("three").id == "legacy"


def test_flag_diff_marks_only_changes() -> None:
    diff = machine.flag_diff({"A": "false", "B": None}, {"A": "true", "B": None})
    assert [(c.name, c.before, c.after, c.changed) for c in diff] == [
        ("A", "false", "true", True),
        ("B", None, None, False),
    ]


def test_drift_lists_flags_whose_actual_value_differs() -> None:
    d = machine.drift({"A": "true", "B": "false"}, {"A": "true", "B": None})
    assert [(c.name, c.before, c.after) for c in d] == [("B", "false", None)]


def test_overall_verdict_precedence() -> None:
    assert machine.overall([]) is Verdict.PASS
    assert machine.overall([m("a", Verdict.PASS), m("b", Verdict.INCONCLUSIVE)]) is Verdict.INCONCLUSIVE
    assert machine.overall([m("a", Verdict.ERROR), m("b", Verdict.INCONCLUSIVE)]) is Verdict.ERROR
    assert machine.overall([m("a", Verdict.ERROR), m("b", Verdict.FAIL)]) is Verdict.FAIL


def test_soak_remaining_counts_down_and_stops_at_zero() -> None:
    one = STAGES[1]
    assert machine.soak_remaining(one, T0, T0 + dt.timedelta(minutes=20)) == 2400
    assert machine.soak_remaining(one, T0, T0 + dt.timedelta(hours=2)) == 0
    assert machine.soak_remaining(one, None, T0) == 0


def test_leave_blockers_soak_monitor_and_work() -> None:
    r = rb(*STAGES)
    now = T0 + dt.timedelta(minutes=30)
    blockers = machine.leave_blockers(
        r.stage("one"),
        T0,
        now,
        [m("mem", Verdict.FAIL), m("ok", Verdict.PASS)],
        [m("w", Verdict.INCONCLUSIVE)],
        r,
    )
    assert [b.code for b in blockers] == ["soak", "work", "monitor"]
    assert blockers[0].message == "soak: 30m of 1h left"
    assert "mem fail" in blockers[2].message and "ok" not in blockers[2].message


def test_inconclusive_monitor_blocks_leaving() -> None:
    r = rb(*STAGES)
    blockers = machine.leave_blockers(r.stage("two"), T0, T0, [m("e", Verdict.INCONCLUSIVE)], [], r)
    assert [b.code for b in blockers] == ["monitor"]


def test_last_stage_cannot_be_left() -> None:
    r = rb(*STAGES)
    assert [b.code for b in machine.leave_blockers(r.stage("four"), T0, T0, [], [], r)] == ["final"]


def test_entry_blockers_preflight_and_manual() -> None:
    three = STAGES[3]
    blockers = machine.entry_blockers(three, [m("drained", Verdict.ERROR)], confirmed=[])
    assert [b.code for b in blockers] == ["preflight", "manual"]
    assert "stop (workers stopped)" in blockers[1].message
    assert machine.entry_blockers(three, [m("drained", Verdict.PASS)], confirmed=["stop"]) == []


def test_rollback_past_an_irreversible_stage_is_detected() -> None:
    r = rb(*STAGES)
    assert machine.crossed_irreversible(r, "four", "legacy") is not None
    assert machine.crossed_irreversible(r, "three", "two") is not None
    assert machine.crossed_irreversible(r, "four", "three") is None
    assert machine.crossed_irreversible(r, "two", "legacy") is None


def test_verify_outcome_error_rolls_back_inconclusive_does_not() -> None:
    assert machine.verify_outcome([m("a", Verdict.ERROR)]) is Verdict.FAIL
    assert machine.verify_outcome([m("a", Verdict.INCONCLUSIVE)]) is Verdict.INCONCLUSIVE
    assert machine.verify_outcome([m("a", Verdict.PASS)]) is Verdict.PASS
    assert machine.verify_settled([m("a", Verdict.PASS)]) is True
    assert machine.verify_settled([m("a", Verdict.FAIL)]) is False


def test_rollback_blocker_with_a_known_stage_refuses_forward_and_irreversible() -> None:
    r = rb(*STAGES)
    assert machine.rollback_blocker(r, "two", "one", forced=False) is None
    forward = machine.rollback_blocker(r, "one", "three", forced=True)
    assert forward is not None and forward.code == "forward"
    assert forward.message == "three is after the current stage one"
    crossed = machine.rollback_blocker(r, "four", "two", forced=False)
    assert crossed is not None and crossed.code == "irreversible"
    assert crossed.message == "three is irreversible; rolling back to two would undo it"
    assert machine.rollback_blocker(r, "four", "two", forced=True) is None
    assert machine.rollback_blocker(r, "four", "three", forced=False) is None


def test_rollback_blocker_with_an_unknown_stage_allows_only_safe_targets() -> None:
    r = rb(*STAGES, Stage("five", set={"A": "false", "B": "false", "C": "off"}))
    for target in ("one", "two", "three", "four"):
        b = machine.rollback_blocker(r, None, target, forced=True)
        assert b is not None and b.code == "unsafe", target
    # the first stage and a stage whose flags are all safe are allowed, but only forced when an
    # irreversible stage after them may be undone
    legacy = machine.rollback_blocker(r, None, "legacy", forced=False)
    assert legacy is not None and legacy.code == "irreversible" and "three" in legacy.message
    assert machine.rollback_blocker(r, None, "legacy", forced=True) is None
    assert machine.rollback_blocker(r, None, "five", forced=False) is None


def test_rollback_blocker_unknown_stage_without_irreversible_stages_needs_no_force() -> None:
    r = rb(*STAGES[:3])
    assert machine.rollback_blocker(r, None, "legacy", forced=False) is None
    assert machine.safe_target(r, "legacy") and not machine.safe_target(r, "one")
    assert machine.irreversible_after(r, "legacy") is None
    assert machine.irreversible_after(rb(*STAGES), "one") == STAGES[3]
