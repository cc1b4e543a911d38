"""CLI test helpers: a runbook folder with a dotenv flags file, and a CliRunner that returns exit code and
output (stdout and stderr apart)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from runbook.cli import main

RUNBOOK = """\
version: 1
name: cli-test
settings:
  database:
    url: ${DATABASE_URL}
  flags:
    type: ${FLAG_BACKEND:-dotenv}
    path: app.env
  defaults:
    verify_deadline: 2s
    verify_interval: 0.2s
flags:
  PGBOSS_ENABLED: false
  PGBOSS_FOR_NEW_EVALS: false
stages:
  - id: legacy
  - id: one
    set: {PGBOSS_ENABLED: true}
    preflight:
      - name: db-up
        kind: sql
        query: SELECT 1
        expect: ["value == 1"]
    verify:
      - name: flag-written
        kind: sql
        query: SELECT ${VERIFY_VALUE:-1}
        expect: ["value == 1"]
    soak: ${SOAK:-0s}
    monitor:
      - name: healthy
        kind: sql
        query: SELECT ${MONITOR_VALUE:-0}
        expect: ["value == 0"]
  - id: two
    set: {PGBOSS_FOR_NEW_EVALS: true}
    verify:
      - name: two-ok
        kind: sql
        query: SELECT ${TWO_VALUE:-1}
        expect: ["value == 1"]
  - id: done
    irreversible: true
    manual:
      - id: workers-stopped
        text: the legacy workers are stopped
"""


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def with_setting(text: str, setting: str) -> str:
    """The runbook `text` with `setting` (YAML lines at settings' indent, e.g. `  state: {schema: x}\n`)
    put before its flag backend."""
    anchor = "  flags:\n    type:"
    assert anchor in text
    return text.replace(anchor, setting + anchor, 1)


@pytest.fixture
def rb_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str) -> Path:
    (tmp_path / "stages.yaml").write_text(RUNBOOK)
    (tmp_path / "app.env").write_text("# flags of the app\nPGBOSS_ENABLED=false\nOTHER=keep-me\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.delenv("RUNBOOK_TIME_SCALE", raising=False)
    return tmp_path


@pytest.fixture
def migrate() -> Callable[..., Outcome]:
    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Outcome:
        runner = CliRunner()
        res = runner.invoke(main, list(args), env=env, input=input, catch_exceptions=False)
        return Outcome(res.exit_code, res.stdout, res.stderr)

    return run
