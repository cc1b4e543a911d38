"""`rollback`, `status`, `history`, `gate`, `unlock` and `report` called directly: result objects
(fields, exit_code, to_json) and the errors they raise, on real PostgreSQL with the dotenv and postgres flag
backends."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from runbook.commands.advance import advance
from runbook.commands.gate import gate
from runbook.commands.history import history
from runbook.commands.report import report
from runbook.commands.rollback import rollback
from runbook.commands.status import status
from runbook.commands.unlock import unlock
from runbook.errors import LockedError, NotReadyError, UsageError
from runbook.exitcodes import ExitCode
from runbook.measurement import Verdict
from tests.commands.conftest import Workspace


def at_two(ws: Workspace) -> None:
    for _ in range(2):
        assert advance(ws.open(), yes=True).outcome == "advanced"


def test_rollback_to_its_target_and_to_a_named_stage(ws: Workspace) -> None:
    at_two(ws)
    r = rollback(ws.open(), to="one", reason="evals too slow")
    assert (r.from_stage, r.to_stage, r.reason, r.forced, r.journaled) == (
        "two",
        "one",
        "evals too slow",
        False,
        False,
    )
    assert [(c.name, c.before, c.after) for c in r.changes if c.changed] == [
        ("PGBOSS_FOR_NEW_EVALS", "true", "false")
    ]
    assert r.exit_code is ExitCode.ROLLED_BACK and r.to_json()["exit_code"] == 4
    assert ws.flags()["PGBOSS_ENABLED"] == "true"
    r = rollback(ws.open())
    assert (r.from_stage, r.to_stage) == ("one", "legacy")
    assert ws.flags()["PGBOSS_ENABLED"] == "false"
    events = history(ws.open(), operation="rollback").events
    assert [(e["from_stage"], e["to_stage"], e["reason"]) for e in events] == [
        ("two", "one", "evals too slow"),
        ("one", "legacy", None),
    ]


def test_rollback_refusals_name_the_fix(ws: Workspace) -> None:
    at_two(ws)
    with pytest.raises(UsageError, match="unknown stage 'nowhere'") as unknown:
        rollback(ws.open(), to="nowhere")
    assert unknown.value.hint == "stages: legacy, one, two, done"
    with pytest.raises(UsageError, match="two is the current stage") as here:
        rollback(ws.open(), to="two")
    assert here.value.exit_code is ExitCode.USAGE
    assert rollback(ws.open(), to="legacy").to_stage == "legacy"
    with pytest.raises(NotReadyError, match="already at legacy with its flags") as nothing:
        rollback(ws.open())
    assert nothing.value.exit_code is ExitCode.NOT_READY


def test_rollback_out_of_an_irreversible_stage_needs_force_and_a_reason(ws: Workspace) -> None:
    at_two(ws)
    assert advance(ws.open(), yes=True, confirms=["workers-stopped"]).to_stage == "done"
    with pytest.raises(NotReadyError, match="done is irreversible") as refused:
        rollback(ws.open())
    assert refused.value.hint is not None and "--force --reason" in refused.value.hint
    with pytest.raises(UsageError, match="--force needs --reason"):
        rollback(ws.open(), force=True)  # a reason is needed too
    r = rollback(ws.open(), force=True, reason="data loss found")
    assert (r.from_stage, r.to_stage, r.forced) == ("done", "legacy", True)
    assert history(ws.open(), operation="rollback").events[-1]["data"]["forced"] is True


def test_status_reports_drift_and_exits_not_ready(ws: Workspace) -> None:
    r = status(ws.open())  # the fixture's flags file lacks PGBOSS_FOR_NEW_EVALS: drift until written
    assert (r.stage, r.version, r.recorded, r.next_stage) == ("legacy", 0, False, "one")
    assert [(c.name, c.before, c.after) for c in r.drift] == [("PGBOSS_FOR_NEW_EVALS", "false", None)]
    assert r.exit_code is ExitCode.NOT_READY
    advance(ws.open(), yes=True)
    r = status(ws.open())
    assert (r.stage, r.recorded, r.drift, r.flags_error, r.exit_code) == ("one", True, [], None, ExitCode.OK)
    assert r.desired == r.actual == {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"}
    flags = ws.root / "app.env"
    flags.write_text(flags.read_text().replace("PGBOSS_ENABLED=true", "PGBOSS_ENABLED=false"))
    r = status(ws.open())
    assert [(c.name, c.before, c.after) for c in r.drift] == [("PGBOSS_ENABLED", "true", "false")]
    assert r.exit_code is ExitCode.NOT_READY
    data = r.to_json()
    assert (data["drift"][0]["name"], data["flags"]["backend"], data["exit_code"]) == (
        "PGBOSS_ENABLED",
        f"dotenv {flags}",
        1,
    )


def test_postgres_backend_fresh_status_is_not_drift_and_advance_writes_the_table(ws: Workspace) -> None:
    ws.edit("    path: app.env\n", "")
    r = status(ws.open(FLAG_BACKEND="postgres"))
    assert (r.drift, sorted(r.unset), r.exit_code) == (
        [],
        ["PGBOSS_ENABLED", "PGBOSS_FOR_NEW_EVALS"],
        ExitCode.OK,
    )
    assert r.actual == {"PGBOSS_ENABLED": None, "PGBOSS_FOR_NEW_EVALS": None}
    assert advance(ws.open(FLAG_BACKEND="postgres"), yes=True).outcome == "advanced"
    with psycopg.connect(ws.database_url) as conn:
        rows: dict[str, str] = dict(conn.execute("SELECT name, value FROM runbook.flags").fetchall())
    assert rows == {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"}
    r = status(ws.open(FLAG_BACKEND="postgres"))
    assert (r.actual, r.unset, r.exit_code) == (rows, [], ExitCode.OK)


def test_history_filters_and_limits(ws: Workspace) -> None:
    at_two(ws)
    rollback(ws.open(), reason="why not")
    r = history(ws.open())
    assert (r.runbook, r.exit_code) == ("cli-test", ExitCode.OK)
    assert [e["operation"] for e in r.events] == [
        "init", "intent", "advance", "intent", "advance", "intent", "rollback"
    ]  # fmt: skip
    assert [e["operation"] for e in history(ws.open(), limit=2).events] == ["intent", "rollback"]
    only = history(ws.open(), operation="advance").to_json()
    assert [(e["from_stage"], e["to_stage"]) for e in only["events"]] == [("legacy", "one"), ("one", "two")]
    assert (only["operation"], only["other_events"]) == ("advance", 0)  # counted only when none matched
    none = history(ws.open(), operation="transfer")
    assert (none.events, none.operation, none.other_events, none.exit_code) == (
        [],
        "transfer",
        7,
        ExitCode.OK,
    )
    with pytest.raises(UsageError, match="unknown operation 'bogus'") as bogus:
        history(ws.open(), operation="bogus")
    assert bogus.value.hint is not None and bogus.value.hint.startswith("operations: init, advance, confirm,")


def test_gate_passes_fails_and_rolls_back_on_failure(ws: Workspace, tmp_path: Path) -> None:
    advance(ws.open(), yes=True)
    r = gate(ws.open())
    assert (r.stage, r.next_stage, r.exit_code, r.rolled_back_to) == ("one", "two", ExitCode.OK, None)
    assert [(m.check, m.verdict) for m in r.monitors] == [("healthy", Verdict.PASS)]
    assert r.preflight == []  # two has no preflight
    junit = tmp_path / "out" / "gate.xml"
    r = gate(ws.open(MONITOR_VALUE="3"), junit=str(junit))
    assert (r.exit_code, r.rolled_back_to, r.files) == (ExitCode.NOT_READY, None, [str(junit)])
    assert [b["check"] for b in r.breaches] == ["healthy"]
    assert "<failure" in junit.read_text()
    r = gate(ws.open(MONITOR_VALUE="3"), rollback_on_failure=True)
    assert (r.rolled_back_to, r.exit_code, r.to_json()["exit_code"]) == ("legacy", ExitCode.ROLLED_BACK, 4)
    assert history(ws.open()).events[-1]["operation"] == "auto-rollback"
    assert ws.flags()["PGBOSS_ENABLED"] == "false"


def test_gate_refuses_an_unwritable_junit_file_before_measuring(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UsageError, match="cannot write") as err:
        gate(ws.open(), junit=str(tmp_path / "a-file" / "gate.xml"))
    assert err.value.hint == "pass --junit with a writable file path"


def test_unlock_releases_a_held_lock_and_is_audited(ws: Workspace) -> None:
    holder = ws.open()
    store = holder.store()
    r = unlock(ws.open())
    assert (r.runbook, r.released, r.exit_code) == ("cli-test", False, ExitCode.OK)
    assert r.detail == 'the lock of "cli-test" was not held; nothing to do'
    with store.lock("cli-test", "advance", holder.actor):
        with pytest.raises(LockedError, match='runbook "cli-test" is locked by') as locked:
            advance(ws.open(), yes=True)
        assert locked.value.exit_code is ExitCode.LOCKED
        assert locked.value.hint == "wait, or run `migrate unlock` if that process is gone"
        # the holder (this process) is still running on this host: not ended without force
        with pytest.raises(LockedError, match="a process still running on this host") as live:
            unlock(ws.open(), reason="holder hung")
        assert live.value.exit_code is ExitCode.LOCKED
        assert live.value.hint == (
            "wait for it to finish, or take the lock anyway (its database session is ended): "
            '`migrate unlock --force --reason "why"`'
        )
        with pytest.raises(UsageError, match="--force needs --reason"):
            unlock(ws.open(), force=True)
        assert [e["outcome"] for e in history(ws.open()).events] == [  # the refusals recorded nothing
            'the lock of "cli-test" was not held; nothing to do'
        ]
        r = unlock(ws.open(), reason="holder hung", force=True)
    assert r.released and r.detail.startswith("terminated backend ")
    assert r.detail.endswith(f"; forced: its process (pid {os.getpid()} on this host) was still running")
    assert r.to_json() == {
        "runbook": "cli-test",
        "released": True,
        "detail": r.detail,
        "lock_released": True,
        "lease_released": False,
    }
    ev = history(ws.open(), operation="unlock").events[-1]
    assert (ev["reason"], ev["outcome"], ev["data"]["forced"], ev["data"]["holder_process"]) == (
        "holder hung",
        r.detail,
        True,
        "running",
    )
    assert advance(ws.open(), yes=True).outcome == "advanced"


def test_report_counts_what_it_wrote(ws: Workspace, tmp_path: Path) -> None:
    advance(ws.open(), yes=True)
    gate(ws.open())
    gate(ws.open(MONITOR_VALUE="3"))
    out = tmp_path / "reports" / "r.html"
    r = report(ws.open(), path=str(out))
    assert (r.path, r.samples, r.checks, r.exit_code) == (str(out), 2, 1, ExitCode.OK)
    assert r.events == len(history(ws.open()).events)
    assert r.to_json() == {"path": str(out), "events": r.events, "samples": 2, "checks": 1}
    assert out.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(UsageError, match="cannot write the report") as err:
        report(ws.open(), path=str(out / "below-a-file.html"))
    assert err.value.hint == "pass --out with a file path in a writable folder"
