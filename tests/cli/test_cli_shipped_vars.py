"""RUNBOOK_FLAG_BACKEND and RUNBOOK_STATE_URL are variables of the shipped stages.yaml: a runbook that does
not read them gets a warning naming the setting to write, never a silent no-op."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runbook.model import Runbook
from runbook.shipped_vars import unread_variables
from runbook.spec import load_runbook_text
from tests.cli.conftest import Outcome
from tests.conftest import REPO

Migrate = Callable[..., Outcome]
OWN = """\
version: 1
name: own
settings:
  database: {url: "${DATABASE_URL}"}
flags: {A: false}
stages:
  - id: one
"""
WARN_BACKEND = (
    "RUNBOOK_FLAG_BACKEND is set but own.yaml does not read it, so it changes nothing: it is a variable of "
    "the shipped stages.yaml, not of migrate; set settings.flags.type in the runbook "
    "(e.g. `type: ${RUNBOOK_FLAG_BACKEND:-postgres}`)"
)
WARN_STATE = "RUNBOOK_STATE_URL is set but own.yaml does not read it, so it changes nothing"


@pytest.fixture
def own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("RUNBOOK_SPEC_CACHE", str(tmp_path / "cache"))  # the second run is a cache hit
    monkeypatch.delenv("RUNBOOK_FILE", raising=False)
    (tmp_path / "own.yaml").write_text(OWN)
    (tmp_path / "stages.yaml").write_text((REPO / "stages.yaml").read_text())
    return tmp_path


def test_the_loader_records_the_variables_a_runbook_reads() -> None:
    shipped = load_runbook_text((REPO / "stages.yaml").read_text(), "stages.yaml", env={"DATABASE_URL": "x"})
    assert {"DATABASE_URL", "RUNBOOK_FLAG_BACKEND", "RUNBOOK_STATE_URL"} <= shipped.variables
    env = {"RUNBOOK_FLAG_BACKEND": "dotenv", "RUNBOOK_STATE_URL": "postgresql://state"}
    assert unread_variables(shipped, env) == []
    own: Runbook = load_runbook_text(OWN, "own.yaml", env={"DATABASE_URL": "x"})
    assert own.variables == frozenset({"DATABASE_URL"})
    assert [w[:60] for w in unread_variables(own, env)] == [
        f"warning: {WARN_BACKEND}"[:60],
        f"warning: {WARN_STATE}"[:60],
    ]
    assert unread_variables(own, {"RUNBOOK_FLAG_BACKEND": ""}) == []  # set but empty: nothing to ignore


def test_validate_and_status_warn_when_the_runbook_does_not_read_them(own: Path, migrate: Migrate) -> None:
    env = {"RUNBOOK_FLAG_BACKEND": "dotenv", "RUNBOOK_STATE_URL": "postgresql://elsewhere/state"}
    for _ in range(2):  # loaded, then from the spec cache
        v = migrate("validate", "own.yaml", env=env)
        assert v.code == 0, v.text
        assert f"Warning: {WARN_BACKEND}\n" in v.out and WARN_STATE in v.out
        data = json.loads(migrate("validate", "own.yaml", "-o", "json", env=env).out)
        assert [w[:50] for w in data["warnings"]] == [WARN_BACKEND[:50], WARN_STATE[:50]]
        s = migrate("status", "-f", "own.yaml", "-o", "json", env=env)
        assert s.code == 0, s.text
        json.loads(s.out)  # stdout stays one JSON document; the warnings are on stderr
        assert f"warning: {WARN_BACKEND}\n" in s.err and WARN_STATE in s.err
    shipped = migrate("validate", env=env)
    assert shipped.code == 0 and "Warning" not in shipped.out
    quiet = migrate("validate", "own.yaml", env={"RUNBOOK_FLAG_BACKEND": "", "RUNBOOK_STATE_URL": ""})
    assert "Warning" not in quiet.out
