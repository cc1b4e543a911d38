"""The CLI walked forward and back on real PostgreSQL with the dotenv and postgres flag backends: exact exit
codes, output, flags written, and the audit log."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from runbook.operations import OPERATIONS
from tests.cli.conftest import Outcome

Migrate = Callable[..., Outcome]


def flags_of(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v
    return out


def test_plan_before_anything_shows_the_flag_diff(rb_dir: Path, migrate: Migrate) -> None:
    r = migrate("plan")
    assert r.code == 0, r.text
    assert "Current: legacy, nothing recorded yet" in r.out
    assert '~ PGBOSS_ENABLED           "false" -> "true"' in r.out
    assert "Plan: 1 to change, 1 unchanged." in r.out
    assert "preflight  db-up (sql)" in r.out


def test_advance_flips_flags_keeps_other_lines_and_records_the_verdicts(
    rb_dir: Path, migrate: Migrate
) -> None:
    r = migrate("advance", "--yes")
    assert r.code == 0, r.text
    assert "Advanced legacy -> one." in r.out
    assert (rb_dir / "app.env").read_text() == (
        "# flags of the app\nPGBOSS_ENABLED=true\nOTHER=keep-me\nPGBOSS_FOR_NEW_EVALS=false\n"
    )
    status = migrate("-o", "json", "status")
    assert status.code == 0, status.text
    data = json.loads(status.out)
    assert data["stage"] == "one"
    assert data["flags"]["actual"] == {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"}
    assert data["drift"] == []
    hist = json.loads(migrate("-o", "json", "history").out)["events"]
    assert [e["operation"] for e in hist] == ["init", "intent", "advance"]
    adv = hist[-1]
    assert (adv["from_stage"], adv["to_stage"]) == ("legacy", "one")
    assert {v["check"]: v["verdict"] for v in adv["verdicts"]} == {"db-up": "pass", "flag-written": "pass"}
    assert adv["flags_after"] == {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"}
    # --operation: one of the operations events record; none of them yet is not "no events" (a new-user trial)
    r = migrate("history", "--operation", "transfer")
    assert (r.code, r.out, r.err) == (
        0,
        "No transfer events yet for cli-test (3 other events; drop --operation to see them).\n",
        "",
    )
    r = migrate("-o", "json", "history", "--operation", "transfer")
    assert json.loads(r.out) == {
        "runbook": "cli-test",
        "events": [],
        "operation": "transfer",
        "other_events": 3,
    }
    r = migrate("history", "--operation", "bogus")
    assert (r.code, r.out) == (2, ""), r.text
    choices = ", ".join(f"'{op}'" for op in OPERATIONS)
    said = r.err.splitlines()[-1]
    assert said == f"Error: Invalid value for '--operation': 'bogus' is not one of {choices}."
    assert "unlock" in OPERATIONS and "transfer" in OPERATIONS


def test_failing_preflight_blocks_and_changes_nothing(rb_dir: Path, migrate: Migrate) -> None:
    (rb_dir / "stages.yaml").write_text(
        (rb_dir / "stages.yaml").read_text().replace("SELECT 1\n", "SELECT 2\n")
    )
    r = migrate("advance", "--yes")
    assert r.code == 1, r.text
    assert "Not advanced: legacy -> one is blocked:" in r.out
    assert "preflight of one does not pass: db-up fail: value = 2, expected == 1" in r.out
    assert flags_of(rb_dir / "app.env")["PGBOSS_ENABLED"] == "false"


def test_force_needs_a_reason_and_is_audited(rb_dir: Path, migrate: Migrate) -> None:
    (rb_dir / "stages.yaml").write_text(
        (rb_dir / "stages.yaml").read_text().replace("SELECT 1\n", "SELECT 2\n")
    )
    r = migrate("advance", "--yes", "--force")
    assert r.code == 2
    assert "--force needs --reason" in r.err
    r = migrate("advance", "--yes", "--force", "--reason", "preflight is known-bad in staging")
    assert r.code == 0, r.text
    assert "(forced: preflight is known-bad in staging)" in r.out
    ev = json.loads(migrate("-o", "json", "history", "--operation", "advance").out)["events"][-1]
    assert ev["reason"] == "preflight is known-bad in staging"
    assert ev["data"]["forced"] is True
    assert ev["data"]["blockers"][0]["code"] == "preflight"


def test_verify_failure_rolls_back_by_itself_with_exit_4(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert migrate("advance", "--yes").code == 0
    monkeypatch.setenv("TWO_VALUE", "7")
    r = migrate("advance", "--yes")
    assert r.code == 4, r.text
    assert "Rolled back: verify of two failed; flags are back at legacy." in r.out
    assert flags_of(rb_dir / "app.env") == {
        "PGBOSS_ENABLED": "false",
        "OTHER": "keep-me",
        "PGBOSS_FOR_NEW_EVALS": "false",
    }
    text = migrate("history").out
    assert "auto-rollback two -> legacy" in text
    assert "reason: verify failed: two-ok: value = 7, expected == 1" in text
    assert json.loads(migrate("-o", "json", "status").out)["stage"] == "legacy"


def test_soak_blocks_leaving_and_plan_says_how_long(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOAK", "2h")
    assert migrate("advance", "--yes").code == 0
    r = migrate("advance", "--yes")
    assert r.code == 1
    assert "soak: 2h of 2h left" in r.out or "soak: 1h 59m of 2h left" in r.out
    r = migrate("--time-scale", "0.0001", "plan")
    assert "(durations compressed x0.0001)" in r.out


def test_failing_monitor_blocks_leaving(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert migrate("advance", "--yes").code == 0
    monkeypatch.setenv("MONITOR_VALUE", "3")
    r = migrate("advance", "--yes")
    assert r.code == 1
    assert "monitors do not hold: healthy fail: value = 3, expected == 0" in r.out


def test_manual_items_must_be_confirmed_and_irreversible_rollback_needs_force(
    rb_dir: Path, migrate: Migrate
) -> None:
    assert migrate("advance", "--yes").code == 0
    assert migrate("advance", "--yes").code == 0
    r = migrate("advance", "--yes")
    assert r.code == 1
    assert "confirm before entering done: workers-stopped (the legacy workers are stopped)" in r.out
    r = migrate("advance", "--yes", "--confirm", "nope")
    assert r.code == 2 and "done has no checklist item 'nope'" in r.err
    r = migrate("advance", "--yes", "--confirm", "workers-stopped")
    assert r.code == 0, r.text
    confirms = json.loads(migrate("-o", "json", "history", "--operation", "confirm").out)["events"]
    assert [(e["to_stage"], e["data"]["item"]) for e in confirms] == [("done", "workers-stopped")]
    r = migrate("rollback")
    assert r.code == 1
    assert "done is irreversible; rolling back to legacy would undo it" in r.err
    r = migrate("rollback", "--force")  # forced, but without its why: as advance, a usage error
    assert (r.code, r.err.splitlines()[0]) == (2, "error: --force needs --reason"), r.text
    r = migrate("rollback", "--force", "--reason", "data loss found")
    assert r.code == 4, r.text
    assert "Rolled back done -> legacy (data loss found)." in r.out


def test_rollback_to_a_named_stage_and_not_forward(rb_dir: Path, migrate: Migrate) -> None:
    assert migrate("advance", "--yes").code == 0
    assert migrate("advance", "--yes").code == 0
    r = migrate("rollback", "--to", "two")
    assert r.code == 2 and "two is the current stage" in r.err
    r = migrate("rollback", "--yes", "--to", "one", "--reason", "evals too slow")  # -y: accepted, a no-op
    assert r.code == 4, r.text
    assert flags_of(rb_dir / "app.env")["PGBOSS_FOR_NEW_EVALS"] == "false"
    assert flags_of(rb_dir / "app.env")["PGBOSS_ENABLED"] == "true"
    r = migrate("rollback", "--to", "two")
    assert r.code == 2 and "two is after the current stage one" in r.err
    r = migrate("rollback", "--to", "nowhere")
    assert r.code == 2 and "unknown stage 'nowhere'" in r.err


def test_status_reports_drift(rb_dir: Path, migrate: Migrate) -> None:
    assert migrate("advance", "--yes").code == 0
    env = rb_dir / "app.env"
    env.write_text(env.read_text().replace("PGBOSS_ENABLED=true", "PGBOSS_ENABLED=false"))
    r = migrate("status")
    assert r.code == 1
    assert 'PGBOSS_ENABLED           desired "true"  actual "false"  DRIFT' in r.out
    assert "Drift: 1 flag differs from what stage one wants" in r.out


def test_status_exits_5_when_the_flag_backend_is_unavailable(rb_dir: Path, migrate: Migrate) -> None:
    """A new-user trial: a dotenv `path:` in a folder that does not exist made status exit 1; the documented
    code for an unavailable backend is 5, as advance returns."""
    spec = rb_dir / "stages.yaml"
    spec.write_text(spec.read_text().replace("    path: app.env\n", "    path: nowhere/app.env\n"))
    missing = rb_dir / "nowhere" / "app.env"
    r = migrate("status")
    assert r.code == 5, r.text
    assert f"  could not read flags: the folder of the flags file {missing} does not exist\n" in r.out
    assert '  PGBOSS_ENABLED           desired "false"  actual null\n' in r.out and "DRIFT" not in r.out
    body = json.loads(migrate("-o", "json", "status").out)
    assert (body["exit_code"], body["flags"]["error"]) == (
        5,
        r.out.split("could not read flags: ")[1].strip(),
    )
    r = migrate("advance", "--yes")
    assert r.code == 5, r.text


def test_postgres_backend_writes_the_table_and_notifies(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    monkeypatch.setenv("FLAG_BACKEND", "postgres")
    spec = rb_dir / "stages.yaml"
    spec.write_text(spec.read_text().replace("    path: app.env\n", ""))
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute("LISTEN runbook_flags")
        r = migrate("advance", "--yes")
        assert r.code == 0, r.text
        notes = list(listener.notifies(timeout=2, stop_after=1))
    assert notes and json.loads(notes[0].payload)["flags"]["PGBOSS_ENABLED"] == "true"
    with psycopg.connect(pg_url) as conn:
        rows: dict[str, str] = dict(conn.execute("SELECT name, value FROM runbook.flags").fetchall())
    assert rows == {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"}
    assert migrate("rollback").code == 4
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT value FROM runbook.flags WHERE name = 'PGBOSS_ENABLED'").fetchone() == (
            "false",
        )


def test_time_scale_is_recorded_in_history(rb_dir: Path, migrate: Migrate) -> None:
    assert migrate("--time-scale", "0.01", "advance", "--yes").code == 0
    assert "RUNBOOK_TIME_SCALE" not in os.environ  # the option is for that invocation only
    ev = json.loads(migrate("-o", "json", "history", "--operation", "advance").out)["events"][-1]
    assert ev["data"]["time_scale"] == 0.01
    assert "(durations compressed x0.01)" in migrate("history").out
