"""What a rollback says about the work left in pg-boss: the jobs per queue, "nothing" only when it counted
nothing, and that it could not count when pg-boss's database did not answer (never "nothing left")."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Outcome, with_setting

Migrate = Callable[..., Outcome]
UNREACHABLE = "postgresql://nobody:hunter2secret@127.0.0.1:1/nowhere?connect_timeout=2"


def test_pgboss_unreachable_is_never_reported_as_nothing_left(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = rb_dir / "stages.yaml"
    spec.write_text(with_setting(spec.read_text(), "  pgboss:\n    url: ${BOSS_URL}\n"))
    monkeypatch.setenv("BOSS_URL", UNREACHABLE)
    assert migrate("advance", "--yes").code == 0
    r = migrate("rollback", "--reason", "app is failing")
    assert r.code == 4, r.text
    assert "Nothing left queued" not in r.out and "hunter2secret" not in r.text
    assert "Could not count the jobs still queued in pg-boss (its database did not answer)" in r.out
    assert migrate("advance", "--yes").code == 0
    r = migrate("-o", "json", "rollback", "--reason", "again")
    assert (r.code, json.loads(r.out)["leftover"]) == (4, None)


def test_nothing_left_when_it_counted_nothing(rb_dir: Path, migrate: Migrate) -> None:
    assert migrate("advance", "--yes").code == 0
    r = migrate("rollback", "--reason", "app is failing")
    assert r.code == 4 and "Nothing left queued in pg-boss." in r.out, r.text  # no pg-boss schema: none
    assert migrate("advance", "--yes").code == 0
    assert json.loads(migrate("-o", "json", "rollback").out)["leftover"] == []
