"""A fresh set-up shows no drift: `migrate init` then `migrate status`, with the dotenv backend (one flags
file name everywhere), the postgres backend (a missing row at the safe value is not drift) and the command
backend (an unset flag at the safe value is not drift: the same contract)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from runbook.model import DOTENV_FLAGS_FILE, DotenvFlags
from tests.cli.conftest import Outcome

Migrate = Callable[..., Outcome]
FLAGS = ("PGBOSS_ENABLED", "PGBOSS_FOR_NEW_EVALS", "PGBOSS_FOR_ALL_JOBS")


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str, migrate: Migrate) -> Path:
    """A folder after `migrate init`, DATABASE_URL a fresh database (no flags table yet)."""
    monkeypatch.chdir(tmp_path)
    for name in ("RUNBOOK_FILE", "RUNBOOK_FLAG_BACKEND", "RUNBOOK_STATE_URL", "RUNBOOK_TIME_SCALE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    assert migrate("init").code == 0
    return tmp_path


def test_the_dotenv_backend_reads_the_file_init_writes(
    fresh: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert DotenvFlags().path == DOTENV_FLAGS_FILE == ".env.flags"
    assert (fresh / ".env.flags").is_file() and not (fresh / ".env").exists()
    monkeypatch.setenv("RUNBOOK_FLAG_BACKEND", "dotenv")
    r = migrate("status")
    assert r.code == 0, r.text
    assert f"Flags (dotenv {fresh / '.env.flags'}):" in r.out
    for name in FLAGS:
        assert f'{name:<24} desired "false"  actual "false"\n' in r.out
    assert "DRIFT" not in r.out and "Drift" not in r.out


def test_postgres_no_row_at_the_safe_value_is_not_drift_until_something_differs(
    fresh: Path, migrate: Migrate, pg_url: str
) -> None:
    r = migrate("status")
    assert r.code == 0, r.text
    for name in FLAGS:
        assert f'{name:<24} desired "false"  actual null  (no row: the app\'s environment, else off)' in r.out
    assert "DRIFT" not in r.out
    data = json.loads(migrate("status", "-o", "json").out)
    assert (data["drift"], data["flags"]["unset"], data["exit_code"]) == ([], list(FLAGS), 0)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # the app's table, with one flag really on
        conn.execute("CREATE SCHEMA IF NOT EXISTS runbook")
        conn.execute("CREATE TABLE IF NOT EXISTS runbook.flags (name text PRIMARY KEY, value text NOT NULL)")
        conn.execute("INSERT INTO runbook.flags VALUES ('PGBOSS_ENABLED', 'true')")
    r = migrate("status")
    assert r.code == 1
    assert 'PGBOSS_ENABLED           desired "false"  actual "true"  DRIFT' in r.out
    assert (
        'PGBOSS_FOR_NEW_EVALS     desired "false"  actual null  (no row: the app\'s environment, else off)'
        in r.out
    )
    assert "Drift: 1 flag differs from what stage legacy wants" in r.out


def test_postgres_no_row_where_the_stage_wants_a_flag_on_is_drift(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    monkeypatch.setenv("FLAG_BACKEND", "postgres")
    spec = rb_dir / "stages.yaml"
    spec.write_text(spec.read_text().replace("    path: app.env\n", ""))
    assert migrate("advance", "--yes").code == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM runbook.flags")
    data = json.loads(migrate("-o", "json", "status").out)
    assert data["exit_code"] == 1
    assert data["drift"] == [{"name": "PGBOSS_ENABLED", "before": "true", "after": None, "changed": True}]
    assert data["flags"]["unset"] == ["PGBOSS_FOR_NEW_EVALS"]  # wanted false: the environment, else off


SHIPPED_BACKEND = "    type: ${RUNBOOK_FLAG_BACKEND:-postgres}\n"
COMMAND_BACKEND = """\
    type: command
    shell: true
    get: "cat flags/{name} 2>/dev/null || true"
    set: "mkdir -p flags && printf %s {value} > flags/{name}"
"""
"""Each flag in flags/NAME beside the runbook; a missing file prints nothing: not set."""


def test_command_unset_at_the_safe_value_is_not_drift_until_something_differs(
    fresh: Path, migrate: Migrate
) -> None:
    spec = fresh / "stages.yaml"
    assert SHIPPED_BACKEND in spec.read_text(), "the shipped stages.yaml changed: update the replacement"
    spec.write_text(spec.read_text().replace(SHIPPED_BACKEND, COMMAND_BACKEND))
    r = migrate("status")
    assert r.code == 0, r.text
    note = "(not set: the app's environment, else off)"
    for name in FLAGS:
        assert f'{name:<24} desired "false"  actual null  {note}' in r.out
    assert "DRIFT" not in r.out
    data = json.loads(migrate("status", "-o", "json").out)
    assert (data["drift"], data["flags"]["unset"], data["exit_code"]) == ([], list(FLAGS), 0)
    (fresh / "flags").mkdir()
    (fresh / "flags" / "PGBOSS_ENABLED").write_text("true")
    r = migrate("status")
    assert r.code == 1
    assert 'PGBOSS_ENABLED           desired "false"  actual "true"  DRIFT' in r.out
    assert "Drift: 1 flag differs from what stage legacy wants" in r.out


def test_command_unset_where_the_stage_wants_a_flag_on_is_drift(rb_dir: Path, migrate: Migrate) -> None:
    spec = rb_dir / "stages.yaml"
    dotenv = "    type: ${FLAG_BACKEND:-dotenv}\n    path: app.env\n"
    assert dotenv in spec.read_text(), "tests/cli/conftest.py RUNBOOK changed: update the replacement"
    spec.write_text(spec.read_text().replace(dotenv, COMMAND_BACKEND))
    assert migrate("advance", "--yes").code == 0
    (rb_dir / "flags" / "PGBOSS_ENABLED").unlink()
    (rb_dir / "flags" / "PGBOSS_FOR_NEW_EVALS").unlink()
    data = json.loads(migrate("-o", "json", "status").out)
    assert data["exit_code"] == 1
    assert data["drift"] == [{"name": "PGBOSS_ENABLED", "before": "true", "after": None, "changed": True}]
    assert data["flags"]["unset"] == ["PGBOSS_FOR_NEW_EVALS"]  # wanted false: the environment, else off
    assert data["flags"]["unset_label"] == "not set"
