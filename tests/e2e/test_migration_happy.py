"""The whole migration, legacy -> increment-1..4 -> retired, with the real CLI, the shipped runbook (durations
compressed x0.001), the example app under load, real pg-boss 10.4.x and 12.x and a real PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import AppFactory
from tests.e2e.migration_support import APP_ENV, events, legacy_open, load, make_migration, rows, settle

pytestmark = pytest.mark.e2e

STAGES = ["increment-1", "increment-2", "increment-3", "increment-4", "retired"]


@pytest.mark.parametrize("major", ["10", "12"])
def test_whole_migration_processes_every_job_exactly_once(
    major: str, make_app: AppFactory, pg_url: str, tmp_path: Path
) -> None:
    app = make_app(major, **APP_ENV)
    assert app.health()["pgboss"]["major"] == int(major)
    m = make_migration(tmp_path, pg_url, app)

    plan = m("plan")
    assert "Next:    increment-1" in plan.stdout
    assert re.search(r'~ PGBOSS_ENABLED\s+"false" -> "true"', plan.stdout)
    assert "(durations compressed x0.001)" in plan.stdout

    with load(app) as bg:
        m.climb(STAGES)
        sent = bg.stop()
    assert m.stage() == "retired"
    assert app.health()["flags"] == {
        "PGBOSS_ENABLED": True,
        "PGBOSS_FOR_NEW_EVALS": True,
        "PGBOSS_FOR_ALL_JOBS": True,
    }

    summary = settle(pg_url, sent)
    assert summary["exactly_once"], summary
    assert (summary["duplicated"], summary["lost"], summary["failed"]) == (0, 0, 0)
    routed = summary["routed_to"]
    assert routed["legacy"]["created"] > 0 and routed["pgboss"]["created"] > 0
    assert routed["legacy"]["processed_once"] + routed["pgboss"]["processed_once"] == sent.sent
    assert legacy_open(pg_url) == 0

    advances = events(pg_url, "advance")
    assert [(e["from_stage"], e["to_stage"]) for e in advances] == list(
        zip(["legacy", *STAGES[:-1]], STAGES, strict=True)
    )
    # every advance was decided on checks that all passed, recorded with their inputs
    for e in advances:
        assert e["verdicts"] and {v["verdict"] for v in e["verdicts"]} == {"pass"}, e["to_stage"]
    entered = {e["to_stage"]: e["at"] for e in advances}
    # increment-3: no new evaluation went to the legacy table; increment-4: no new job of any type
    late_evals = rows(
        pg_url,
        "SELECT count(*) FROM ledger WHERE type = 'evaluation' AND routed_to = 'legacy'"
        " AND created_at > %s::timestamptz + interval '1 second'",
        (entered["increment-3"],),
    )
    late_any = rows(
        pg_url,
        "SELECT count(*) FROM ledger WHERE routed_to = 'legacy' AND created_at > %s::timestamptz"
        " + interval '1 second'",
        (entered["increment-4"],),
    )
    assert (late_evals[0][0], late_any[0][0]) == (0, 0)
    confirms = [e["data"]["item"] for e in events(pg_url, "confirm")]
    assert confirms == ["legacy-workers-stopped", "legacy-code-removed", "job-table-archived"]
    text = m.history()
    assert "advance increment-4 -> retired" in text
    assert re.search(r"legacy-drained\s+legacy table \"public\".\"Job\" drained: 0 pending, 0 running", text)
