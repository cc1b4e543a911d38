"""`plan` and `advance` show the flip as it will really happen: the flag diff starts from the flags the
backend holds (after drift too), and a plan that assumes a checklist item says it must be confirmed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import Outcome

Migrate = Callable[..., Outcome]


def test_the_diff_starts_from_the_flags_the_backend_holds(rb_dir: Path, migrate: Migrate) -> None:
    assert migrate("advance", "--yes").code == 0  # in one: PGBOSS_ENABLED=true
    env = rb_dir / "app.env"
    env.write_text(env.read_text().replace("PGBOSS_ENABLED=true", "PGBOSS_ENABLED=false"))  # drift
    r = migrate("plan")
    assert r.code == 0, r.text
    assert '  ~ PGBOSS_ENABLED           "false" -> "true"' in r.out.splitlines()
    assert "Plan: 2 to change, 0 unchanged." in r.out
    flags = {
        f["name"]: (f["before"], f["after"], f["changed"])
        for f in json.loads(migrate("-o", "json", "plan").out)["flags"]
    }
    on = ("false", "true", True)
    assert flags == {"PGBOSS_ENABLED": on, "PGBOSS_FOR_NEW_EVALS": on}
    r = migrate("-o", "json", "advance", "--dry-run")
    assert [(f["name"], f["before"]) for f in json.loads(r.out)["flags"]] == [
        ("PGBOSS_ENABLED", "false"),
        ("PGBOSS_FOR_NEW_EVALS", "false"),
    ]
    env.write_text(env.read_text().replace("PGBOSS_ENABLED=false", "PGBOSS_ENABLED=true"))
    r = migrate("plan")
    assert "Plan: 1 to change, 1 unchanged." in r.out, r.text


def test_plan_check_names_the_items_an_advance_must_confirm(rb_dir: Path, migrate: Migrate) -> None:
    assert migrate("advance", "--yes").code == 0
    assert migrate("advance", "--yes").code == 0  # in two; done asks for workers-stopped
    r = migrate("plan", "--check")
    assert r.code == 0, r.text
    assert r.out.rstrip().splitlines()[-1] == (
        "Ready once confirmed: `migrate advance --confirm workers-stopped` would enter done (or answer its"
        " prompts)."
    )
    r = migrate("advance", "--dry-run")
    assert r.code == 1 and "workers-stopped" in r.out
