"""The pgboss, legacy and work kinds as a runbook author writes them: parsed from YAML by the strict loader
(durations as strings, errors located to the line) and run by the engine's check runner."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from runbook.checkrun import CheckRunContext, run_checks
from runbook.checks.base import Verdict
from runbook.errors import SpecError
from runbook.spec import load_runbook_text
from tests.integration.checks_pg.conftest import Template, execute
from tests.integration.checks_pg.legacy_app import LegacyApp

pytestmark = pytest.mark.pgboss

RUNBOOK = """
version: 1
name: checks
settings:
  database:
    url: ${DATABASE_URL}
    statement_timeout: 5s
  legacy:
    stale_after: 45m
flags:
  PGBOSS_ENABLED:
    safe: false
stages:
  - id: increment-1
    monitor:
      - name: import-error-rate
        kind: pgboss
        metric: error_rate
        queue: q-main
        window: 1h
        max: 0.05
      - name: import-backlog
        kind: pgboss
        metric: backlog
        queue: q-backlog
        state: ready
        max: 10
      - name: legacy-drained
        kind: legacy
        metric: drained
      - name: legacy-stale
        kind: legacy
        metric: stale_running
    soak:
      work:
        - name: imports-on-pgboss
          kind: work
          queue: q-main
          min_jobs: 4
"""


def test_yaml_checks_run_through_the_engine(templates: dict[str, Template], copy_db: Any) -> None:
    url = copy_db(templates["12"])
    app = LegacyApp(url)
    app.install()
    job = app.create(at=-3600)
    assert app.claim(at=-40 * 60) == job  # running for 40 minutes: stale after 30m, not after 45m
    app.close()
    rb = load_runbook_text(RUNBOOK, "stages.yaml", env={"DATABASE_URL": url})
    stage = rb.stage("increment-1")
    with CheckRunContext(rb, stage_id=stage.id, stage_entered_at=templates["12"].started_at) as ctx:
        results = run_checks([*stage.monitor, *stage.soak.work], ctx)
    got = {m.check: (m.kind, m.verdict, m.value) for m in results}
    assert got == {
        "import-error-rate": ("pgboss", Verdict.FAIL, pytest.approx(2 / 6)),
        "import-backlog": ("pgboss", Verdict.PASS, 3),
        "legacy-drained": ("legacy", Verdict.INCONCLUSIVE, 1),
        "legacy-stale": ("legacy", Verdict.PASS, 0),  # settings.legacy.stale_after: 45m
        "imports-on-pgboss": ("work", Verdict.PASS, 4),
    }
    assert all(m.measured_at <= dt.datetime.now(dt.UTC) for m in results)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("queue: q-main\n        window", "window"), "monitor[0].metric: metric error_rate needs a queue"),
        (("metric: drained", "metric: drianed"), 'did you mean "drained"?'),
        (
            ("window: 1h", "window: soon"),
            'monitor[0].window: expected a duration like 90s, 5m, 24h or 2d, got "soon"',
        ),
        (("min_jobs: 4", "min_jobs: 0"), "work[0].min_jobs: min_jobs must be at least 1"),  # at its line
        (("state: ready", "state: waiting"), 'expected one of "queued", "ready", "deferred", "active"'),
    ],
)
def test_bad_params_are_located_errors(change: tuple[str, str], message: str) -> None:
    with pytest.raises(SpecError) as err:
        load_runbook_text(RUNBOOK.replace(*change), "stages.yaml", env={"DATABASE_URL": "postgresql://x/y"})
    assert message in str(err.value)
    assert str(err.value).startswith("stages.yaml:")


COMPARE = """
version: 1
name: compare
settings:
  database:
    url: ${DATABASE_URL}
flags:
  PGBOSS_ENABLED:
    safe: false
stages:
  - id: increment-3
    monitor:
      - name: processing-time-vs-legacy
        kind: compare
        max: 1.2
        a:
          name: pgboss-p95
          kind: pgboss
          metric: run_time
          queue: q-main
          percentile: 95
          window: 1h
        b:
          name: legacy-p95
          kind: legacy
          metric: processing_time
          percentile: 95
          window: 1h
"""


def test_pgboss_and_legacy_p95_compared(templates: dict[str, Template], copy_db: Any) -> None:
    url = copy_db(templates["12"])
    # Simulated with SQL: q-main's 4 completed jobs ran 10, 20, 30 and 40 s (p95 38.5 s) ...
    completed = [*templates["12"].outcome["main"]["ok"], *templates["12"].outcome["main"]["flaky"]]
    for i, job in enumerate(completed):
        execute(
            url,
            "UPDATE pgboss.job SET started_on = now() - interval '5 minutes',"
            " completed_on = now() - interval '5 minutes' + %s * interval '1 second' WHERE id = %s",
            ((i + 1) * 10, job),
        )
    # ... and the legacy app's 4 jobs ran 20, 40, 60 and 80 s (p95 77 s).
    app = LegacyApp(url)
    app.install()
    for i in range(4):
        app.run(f"eval-{i}", created=-20 * 60 + i, started=-15 * 60, seconds=(i + 1) * 20)
    app.close()
    rb = load_runbook_text(COMPARE, "stages.yaml", env={"DATABASE_URL": url})
    with CheckRunContext(rb, stage_id="increment-3") as ctx:
        [m] = run_checks(rb.stage("increment-3").monitor, ctx)
    assert (m.verdict, m.value) == (Verdict.PASS, pytest.approx(0.5))
    assert m.inputs["a"]["value"] == pytest.approx(38.5) and m.inputs["b"]["value"] == pytest.approx(77.0)
