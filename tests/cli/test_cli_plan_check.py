"""`migrate plan --check` measures what it says: the current monitors before the first stage is recorded,
and at the last stage the current monitors (exit 0 when they hold) instead of "nothing to plan"."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Outcome

Migrate = Callable[..., Outcome]

RUNBOOK = """\
version: 1
name: plan-check
settings:
  database:
    url: ${DATABASE_URL}
  flags:
    type: dotenv
    path: app.env
  defaults:
    verify_deadline: 2s
    verify_interval: 0.2s
flags:
  FEATURE: false
stages:
  - id: first
    monitor:
      - name: first-ok
        kind: sql
        query: SELECT ${FIRST:-0}
        expect: ["value == 0"]
  - id: last
    set: {FEATURE: true}
    preflight:
      - name: db-up
        kind: sql
        query: SELECT 1
        expect: ["value == 1"]
    monitor:
      - name: last-ok
        kind: sql
        query: SELECT ${LAST:-0}
        expect: ["value == 0"]
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str) -> Path:
    (tmp_path / "stages.yaml").write_text(RUNBOOK)
    (tmp_path / "app.env").write_text("FEATURE=false\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    for name in ("RUNBOOK_FILE", "RUNBOOK_TIME_SCALE", "FIRST", "LAST"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def checks(r: Outcome) -> dict[str, str]:
    return {c["check"]: c["verdict"] for c in json.loads(r.out)["checks"]}


def test_before_the_first_stage_is_recorded_the_current_monitors_run(home: Path, migrate: Migrate) -> None:
    r = migrate("plan", "--check", "-o", "json")
    assert r.code == 0, r.text
    assert checks(r) == {"first-ok": "pass", "db-up": "pass"}
    assert json.loads(r.out)["current"]["version"] == 0  # still nothing recorded: plan is read-only
    bad = migrate("plan", "--check", "-o", "json", env={"FIRST": "1"})
    assert bad.code == 1
    assert checks(bad) == {"first-ok": "fail", "db-up": "pass"}
    assert [b["code"] for b in json.loads(bad.out)["blockers"]] == ["monitor"]
    text = migrate("plan", "--check", env={"FIRST": "1"})
    assert "Not ready:\n  - monitors do not hold: first-ok" in text.out


def test_at_the_last_stage_the_current_monitors_are_measured(home: Path, migrate: Migrate) -> None:
    assert migrate("advance", "--yes").code == 0
    r = migrate("plan", "--check")
    assert r.code == 0, r.text
    assert "last is the last stage; nothing to advance to." in r.out
    assert "Measured now (the monitors of last):\n  " in r.out and "last-ok" in r.out
    assert "Holding: the monitors of last pass." in r.out
    assert checks(migrate("plan", "--check", "-o", "json")) == {"last-ok": "pass"}
    bad = migrate("plan", "--check", "-o", "json", env={"LAST": "3"})
    assert bad.code == 1
    assert checks(bad) == {"last-ok": "fail"}
    assert [b["code"] for b in json.loads(bad.out)["blockers"]] == ["monitor"]
    md = migrate("plan", "--check", "-o", "markdown", env={"LAST": "3"})
    assert md.code == 1 and "**Not holding:**\n- monitors do not hold: last-ok" in md.out
    plain = migrate("plan")  # without --check nothing is measured: there is nothing to advance to
    assert plain.code == 1 and "last is the last stage; nothing to advance to." in plain.out
    assert "Measured now" not in plain.out
