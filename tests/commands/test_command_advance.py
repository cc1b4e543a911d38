"""`plan` and `advance` called directly: result objects (outcome, blockers, measurements, exit_code,
to_json) and the errors they raise, on real PostgreSQL with the dotenv flag backend."""

from __future__ import annotations

import time

import pytest

from runbook.commands.advance import advance
from runbook.commands.history import history
from runbook.commands.plan import plan
from runbook.errors import NotReadyError, UsageError
from runbook.exitcodes import ExitCode
from runbook.measurement import Verdict
from tests.commands.conftest import Workspace

UNTOUCHED = {"PGBOSS_ENABLED": "false", "OTHER": "keep-me"}
"""The flags file as the fixture wrote it."""
SAFE = {**UNTOUCHED, "PGBOSS_FOR_NEW_EVALS": "false"}
"""Every flag written at its safe value (other lines kept)."""


def operations(ws: Workspace) -> list[str]:
    return [e["operation"] for e in history(ws.open()).events]


def test_plan_before_anything_is_recorded(ws: Workspace) -> None:
    r = plan(ws.open())
    assert (r.current.id, r.next.id if r.next else None, r.version, r.entered_at) == (
        "legacy",
        "one",
        0,
        None,
    )
    assert [(c.name, c.before, c.after, c.changed) for c in r.changes] == [
        ("PGBOSS_ENABLED", "false", "true", True),
        ("PGBOSS_FOR_NEW_EVALS", "false", "false", False),
    ]
    assert (r.checked, r.measurements, r.blockers, r.exit_code) == (False, [], [], ExitCode.OK)
    data = r.to_json()
    assert data["next"]["preflight"] == [{"name": "db-up", "kind": "sql", "description": ""}]
    assert data["next"]["monitor"] == [{"name": "healthy", "kind": "sql", "description": ""}]
    assert (data["exit_code"], data["soak_remaining_seconds"]) == (0, 0.0)
    assert operations(ws) == []  # plan records nothing


def test_plan_check_runs_the_preflight_and_reports_its_blocker(ws: Workspace) -> None:
    r = plan(ws.open(), check=True)
    assert [(m.check, m.verdict, m.value) for m in r.measurements] == [("db-up", Verdict.PASS, 1)]
    assert r.exit_code is ExitCode.OK
    ws.edit("query: SELECT 1\n", "query: SELECT 2\n")
    r = plan(ws.open(), check=True)
    assert [(m.check, m.verdict, m.value) for m in r.measurements] == [("db-up", Verdict.FAIL, 2)]
    assert [b.code for b in r.blockers] == ["preflight"]
    assert r.exit_code is ExitCode.NOT_READY
    assert r.to_json()["blockers"][0]["code"] == "preflight"


def test_plan_at_the_last_stage_is_blocked_as_final(ws: Workspace) -> None:
    for confirms in ((), (), ("workers-stopped",)):
        assert advance(ws.open(), yes=True, confirms=confirms).outcome == "advanced"
    r = plan(ws.open())
    assert (r.current.id, r.next) == ("done", None)
    assert [b.code for b in r.blockers] == ["final"]
    assert r.exit_code is ExitCode.NOT_READY and r.to_json()["next"] is None


def test_advance_flips_the_flags_and_records_the_verdicts(ws: Workspace) -> None:
    r = advance(ws.open(), yes=True)
    assert (r.from_stage, r.to_stage, r.outcome, r.exit_code) == ("legacy", "one", "advanced", ExitCode.OK)
    assert [(m.check, m.verdict) for m in r.measurements] == [("db-up", Verdict.PASS)]
    assert [(m.check, m.verdict) for m in r.verify] == [("flag-written", Verdict.PASS)]
    assert (r.blockers, r.forced, r.rolled_back_to, r.failure) == ([], False, None, None)
    assert ws.flags() == {**SAFE, "PGBOSS_ENABLED": "true"}
    data = r.to_json()
    assert (data["from"], data["to"], data["outcome"], data["exit_code"]) == ("legacy", "one", "advanced", 0)
    assert [c["name"] for c in data["flags"] if c["changed"]] == ["PGBOSS_ENABLED"]
    events = history(ws.open(), operation="advance").events
    assert [(e["from_stage"], e["to_stage"]) for e in events] == [("legacy", "one")]
    assert {v["check"]: v["verdict"] for v in events[0]["verdicts"]} == {
        "db-up": "pass",
        "flag-written": "pass",
    }


def test_advance_blocked_by_its_preflight_changes_nothing(ws: Workspace) -> None:
    ws.edit("query: SELECT 1\n", "query: SELECT 2\n")
    r = advance(ws.open(), yes=True)
    assert (r.outcome, r.exit_code) == ("blocked", ExitCode.NOT_READY)
    assert [(b.code, b.message) for b in r.blockers] == [
        ("preflight", "preflight of one does not pass: db-up fail: value = 2, expected == 1")
    ]
    assert (r.verify, r.to_json()["exit_code"]) == ([], 1)
    assert ws.flags() == UNTOUCHED
    assert "advance" not in operations(ws)


def test_forced_advance_is_audited_with_its_blockers(ws: Workspace) -> None:
    ws.edit("query: SELECT 1\n", "query: SELECT 2\n")
    r = advance(ws.open(), yes=True, force=True, reason="preflight known-bad in staging")
    assert (r.outcome, r.forced, r.reason, r.exit_code) == (
        "advanced",
        True,
        "preflight known-bad in staging",
        ExitCode.OK,
    )
    assert [b.code for b in r.blockers] == ["preflight"]
    ev = history(ws.open(), operation="advance").events[-1]
    assert (ev["reason"], ev["data"]["forced"]) == ("preflight known-bad in staging", True)
    assert [b["code"] for b in ev["data"]["blockers"]] == ["preflight"]


def test_force_without_a_reason_is_a_usage_error(ws: Workspace) -> None:
    with pytest.raises(UsageError) as err:
        advance(ws.open(), yes=True, force=True)
    assert (err.value.exit_code, err.value.message) == (ExitCode.USAGE, "--force needs --reason")
    assert err.value.hint is not None and "--reason" in err.value.hint
    assert operations(ws) == []  # refused before the state store was touched


def test_unconfirmed_advance_is_a_usage_error_and_flips_nothing(ws: Workspace) -> None:
    with pytest.raises(UsageError, match="not confirmed") as err:
        advance(ws.open())  # no --yes, and the session's confirm answers no
    assert err.value.hint is not None and "--yes" in err.value.hint
    assert ws.flags() == UNTOUCHED


def test_dry_run_measures_and_records_nothing(ws: Workspace) -> None:
    r = advance(ws.open(), dry_run=True)
    assert (r.outcome, r.exit_code, r.blockers) == ("dry-run", ExitCode.OK, [])
    assert [m.check for m in r.measurements] == ["db-up"]
    assert ws.flags() == UNTOUCHED
    assert operations(ws) == []


def test_failing_command_verify_rolls_back_by_itself(ws: Workspace) -> None:
    assert advance(ws.open(), yes=True).outcome == "advanced"
    r = advance(ws.open(TWO_VALUE="7"), yes=True)
    assert (r.from_stage, r.to_stage, r.outcome, r.rolled_back_to) == ("one", "two", "rolled-back", "legacy")
    assert r.exit_code is ExitCode.ROLLED_BACK and r.to_json()["exit_code"] == 4
    assert [(m.check, m.kind, m.verdict) for m in r.verify] == [("two-ok", "command", Verdict.FAIL)]
    assert ws.flags() == SAFE
    assert operations(ws)[-1] == "auto-rollback"


def test_failing_monitor_blocks_leaving(ws: Workspace) -> None:
    assert advance(ws.open(), yes=True).outcome == "advanced"
    r = advance(ws.open(MONITOR_VALUE="3"), yes=True)
    assert (r.outcome, r.exit_code) == ("blocked", ExitCode.NOT_READY)
    assert [(b.code, b.message) for b in r.blockers] == [
        ("monitor", "monitors do not hold: healthy fail: value = 3, expected == 0")
    ]


def test_manual_items_block_until_confirmed_and_the_last_stage_is_not_ready(ws: Workspace) -> None:
    for _ in range(2):
        assert advance(ws.open(), yes=True).outcome == "advanced"
    r = advance(ws.open(), yes=True, force=True, reason="manual items cannot be forced")
    assert (r.outcome, [b.code for b in r.blockers]) == ("blocked", ["manual"])
    with pytest.raises(UsageError, match="done has no checklist item 'nope'") as err:
        advance(ws.open(), yes=True, confirms=["nope"])
    assert err.value.hint == "its items: workers-stopped"
    r = advance(ws.open(), yes=True, confirms=["workers-stopped"])
    assert (r.to_stage, r.outcome) == ("done", "advanced")
    with pytest.raises(NotReadyError, match="already at the last stage, done") as last:
        advance(ws.open(), yes=True)
    assert last.value.exit_code is ExitCode.NOT_READY


def test_a_preflight_looks_back_to_when_the_stage_being_left_was_entered(ws: Workspace) -> None:
    from runbook.commands.gate import gate

    ws.edit(
        "    set: {PGBOSS_FOR_NEW_EVALS: true}\n",
        "    set: {PGBOSS_FOR_NEW_EVALS: true}\n    preflight:\n      - name: since\n        kind: sql\n"
        "        query: SELECT extract(epoch FROM %(stage_entered_at)s::timestamptz)\n",
    )
    assert advance(ws.open(), yes=True).outcome == "advanced"
    entered = plan(ws.open()).entered_at.timestamp()
    time.sleep(0.2)  # measured from now, the preflight's window would start 0.2 s too late
    (since,) = [m for m in plan(ws.open(), check=True).measurements if m.check == "since"]
    assert since.value == pytest.approx(entered, abs=1e-3)  # since_stage in a preflight: since `one`
    (gated,) = gate(ws.open()).preflight
    assert gated.value == pytest.approx(entered, abs=1e-3)
