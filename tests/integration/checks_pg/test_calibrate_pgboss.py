"""`migrate calibrate` reading pg-boss's own history (real pg-boss 12) for a queue the legacy table holds no
rows of: q-main's 4 completed and 2 failed jobs (scenario.mjs outcomes), judged against a 5% limit.

The legacy "Job" table is mapped with a type column (`evaluationId` stands in for one) so that the
queue's legacy rows are those of type q-main: there are none, so pg-boss's history stands for it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from runbook.commands.calibrate import calibrate
from runbook.session import Session
from tests.cli.test_calibrate import jobs_to_pass
from tests.integration.checks_pg.conftest import Template
from tests.integration.checks_pg.legacy_app import LegacyApp

pytestmark = pytest.mark.pgboss

RUNBOOK = """\
version: 1
name: calibrate-pgboss
settings:
  database: {url: "${DATABASE_URL}"}
  legacy: {type_column: evaluationId}
flags: {A: false}
stages:
  - id: one
    set: {A: true}
    monitor:
      - name: main-error-rate
        kind: pgboss
        metric: error_rate
        queue: q-main
        max: 0.05
"""


def test_pgboss_history_stands_for_a_queue_without_legacy_rows(
    templates: dict[str, Template], copy_db: Any, tmp_path: Path
) -> None:
    url = copy_db(templates["12"])
    app = LegacyApp(url)
    app.install()
    app.run("other-type", created=-600, started=-500, seconds=10)  # a legacy row of another type
    app.close()
    path = tmp_path / "stages.yaml"
    path.write_text(RUNBOOK)
    with Session.open(path, env={"DATABASE_URL": url}) as session:
        result = calibrate(session, path)
    legacy, pgboss = (h.to_json() for h in result.history)
    assert (legacy["source"], legacy["name"], legacy["completed"] + legacy["failed"]) == (
        "legacy",
        "q-main",
        0,
    )
    assert (pgboss["source"], pgboss["name"], pgboss["completed"], pgboss["failed"]) == (
        "pg-boss",
        "q-main",
        4,
        2,
    )
    got = {s.key: s for s in result.suggestions}
    assert (got["max"].current, got["max"].value) == (
        "0.05",
        "0.5",
    )  # twice 1/3, capped at the top of the scale
    n = jobs_to_pass(2 / 6, 0.5, 0.95)
    assert got["min_jobs"].value == str(n)
    assert got["min_jobs"].reason.startswith(
        "pg-boss q-main fail at 33.33% (2 of 6 over 7d); at that rate a 50% "
    )
    hours = n / (6 / (7 * 24))  # 6 jobs a week
    assert got["window"].value == f"{math.ceil(hours / 24)}d"
    assert got["window"].reason.startswith(
        f"at 0.9 jobs a day the 1h window holds about 0.04 jobs, fewer than the {n} jobs deciding it"
    )
