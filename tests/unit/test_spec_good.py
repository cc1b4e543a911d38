"""The good runbooks in tests/data/runbooks/good load into exactly the expected model values."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.checks.command import CommandParams
from runbook.checks.http import HttpParams
from runbook.checks.sql import SqlParams
from runbook.model import Defaults, DotenvFlags, Limits, ManualItem, PostgresFlags, Runbook
from runbook.spec import load_runbook, load_runbook_text

GOOD = Path(__file__).resolve().parent.parent / "data" / "runbooks" / "good"
ENV = {"APP_TOKEN": "s3cret", "APP_PORT": "4000"}


def full(time_scale: float = 1.0, env: dict[str, str] | None = None) -> Runbook:
    return load_runbook(GOOD / "full.yaml", env=ENV if env is None else env, time_scale=time_scale)


def test_minimal_runbook_inherits_every_default() -> None:
    rb = load_runbook(GOOD / "minimal.yaml", env={}, time_scale=1.0)
    assert (rb.version, rb.name, rb.time_scale) == (1, "minimal", 1.0)
    assert rb.source == str(GOOD / "minimal.yaml")
    assert isinstance(rb.settings.flags, PostgresFlags)
    assert rb.settings.defaults == Defaults()
    before, after = rb.stages
    assert (before.interval, before.verify_deadline) == (60.0, 120.0)
    [check] = after.monitor
    assert (check.name, check.kind, check.timeout, check.limits) == ("errors", "sql", 10.0, Limits())
    assert check.params == SqlParams(query="SELECT count(*) FROM errors", expect=("value == 0",))
    assert check.location == f"{GOOD / 'minimal.yaml'}:10:9"
    assert rb.desired_flags("before") == {"FEATURE_ON": "false"}
    assert rb.desired_flags("after") == {"FEATURE_ON": "true"}


def test_flags_are_normalised_to_text_and_merged_cumulatively() -> None:
    rb = full()
    assert rb.safe_flags() == {
        "PGBOSS_ENABLED": "false",
        "PGBOSS_FOR_NEW_EVALS": "false",
        "PGBOSS_FOR_ALL_JOBS": "false",
        "WORKER_CONCURRENCY": "1",
    }
    assert rb.flags[0].description == "import-article jobs go to pg-boss"
    assert rb.desired_flags("increment-2") == {**rb.safe_flags(), "PGBOSS_ENABLED": "true"}
    assert rb.desired_flags("increment-4") == {
        "PGBOSS_ENABLED": "true",
        "PGBOSS_FOR_NEW_EVALS": "true",
        "PGBOSS_FOR_ALL_JOBS": "true",
        "WORKER_CONCURRENCY": "10",
    }


def test_settings_interpolation_and_escapes() -> None:
    rb = full()
    s = rb.settings
    assert rb.name == "pg-boss migration (platform)"
    assert s.database.url is None  # ${DATABASE_URL:-} is empty, so the optional field is unset
    assert s.app.url == "http://localhost:4000"
    assert s.app.headers == {"Authorization": "Bearer s3cret"}
    assert s.flags == DotenvFlags(path=".env", reload=("pm2", "reload", "app"), reload_timeout=90.0)
    assert (s.legacy.table, s.legacy.pending, s.legacy.type_column) == ("jobs", ("queued", "PENDING"), None)
    assert s.state.schema == "runbook_state"
    assert s.notifications[0].format == "slack"
    assert s.notifications[0].events == ("rolled_back", "advanced")
    monitor = rb.stage("increment-1").monitor[0]
    assert monitor.params.query == "SELECT count(*) FROM jobs WHERE note = '${not interpolated}'"
    assert full(env={**ENV, "TEAM": "jobs"}).name == "pg-boss migration (jobs)"


def test_stage_values_defaults_and_shorthands() -> None:
    rb = full()
    legacy, inc1, inc2, inc3, inc4 = rb.stages
    assert legacy.monitor[0].params == HttpParams(url="/api/health")  # merged from the x-health anchor
    assert legacy.monitor[0].timeout == 5.0
    assert (inc1.verify_deadline, inc1.interval, inc1.soak.duration) == (60.0, 30.0, 3600.0)
    assert inc1.description == "import jobs go to pg-boss\n"
    verify = inc1.verify[0]
    assert verify.limits == Limits(failure_limit=1, consecutive_error_limit=3, consecutive_failure_limit=2)
    assert verify.timeout == 8.0
    assert inc1.monitor[0].limits.failure_limit == 0
    assert inc1.manual == (
        ManualItem("watch-the-worker-logs-for-10-minutes", "Watch the worker logs for 10 minutes!"),
        ManualItem("dashboards", "Dashboards show pg-boss queues"),
    )
    assert (inc2.soak.duration, inc2.interval, inc2.verify_deadline, inc2.approval) == (
        86400.0,
        300.0,
        180.0,
        True,
    )
    assert inc2.soak.work[0].name == "imports-done"
    assert inc3.monitor[0].params == CommandParams(run=("./scripts/smoke.sh", "--quick"))
    assert inc3.monitor[0].timeout == 120.0
    assert rb.rollback_target("increment-3").id == "increment-1"
    assert rb.rollback_target("increment-2").id == "legacy"
    assert (inc4.irreversible, inc4.approval) == (True, True)
    assert full(env={**ENV, "REQUIRE_APPROVAL": "false"}).stages[4].approval is False
    assert inc4.location.endswith("full.yaml:108:5")


@pytest.mark.parametrize("scale", [0.5, 0.001])
def test_time_scale_multiplies_every_duration(scale: float) -> None:
    real, fast = full(), full(time_scale=scale)
    assert fast.time_scale == scale
    pairs: list[tuple[float | None, float | None]] = [
        (real.settings.state.sample_retention, fast.settings.state.sample_retention),
        (real.settings.legacy.stale_after, fast.settings.legacy.stale_after),
    ]
    same = [  # timeouts are real seconds at any time scale: a query or a flag pickup takes real time
        (real.settings.database.statement_timeout, fast.settings.database.statement_timeout),
        (real.settings.database.connect_timeout, fast.settings.database.connect_timeout),  # a default
        (real.settings.flags.reload_timeout, fast.settings.flags.reload_timeout),  # type: ignore[union-attr]
        (real.settings.defaults.verify_interval, fast.settings.defaults.verify_interval),  # a default
    ]
    for a, b in zip(real.stages, fast.stages, strict=True):
        pairs += [(a.soak.duration, b.soak.duration), (a.interval, b.interval)]
        same += [(a.verify_deadline, b.verify_deadline)]
        same += [
            (x.timeout, y.timeout) for x, y in zip(a.monitor + a.verify, b.monitor + b.verify, strict=True)
        ]
    for original, scaled in pairs:
        assert original is not None and scaled is not None
        assert scaled == pytest.approx(original * scale)
    for original, kept in same:
        assert original is not None and kept == original
    assert fast.stage("increment-2").soak.duration == pytest.approx(86400 * scale)


def test_time_scale_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_TIME_SCALE", "0.01")
    rb = load_runbook(GOOD / "minimal.yaml", env={})
    assert rb.time_scale == 0.01
    assert rb.stages[0].interval == pytest.approx(0.6)


THRESHOLDS = """\
version: 1
name: thresholds
flags: {A: false}
stages:
  - id: one
    monitor:
      - {name: oldest, kind: pgboss, metric: oldest_ready_age, queue: q, max: 1d, min: 90s}
      - {name: seconds, kind: pgboss, metric: wait_time, queue: q, max: 600}
      - name: backlog
        kind: pgboss
        metric: backlog
        queue: q
        max: ${BACKLOG:-100}
      - {name: legacy-time, kind: legacy, metric: processing_time, max: 1h30m}
"""


@pytest.mark.parametrize("scale", [1.0, 0.001])
def test_thresholds_in_the_metric_unit(scale: float) -> None:
    """`max: 1d` on a duration metric is seconds (never time-scaled: it judges a real age); numbers stay."""
    rb = load_runbook_text(THRESHOLDS, "t.yaml", env={}, time_scale=scale)
    got = {c.name: (c.params.max, c.params.min) for c in rb.stages[0].monitor}
    assert got == {
        "oldest": (86400.0, 90.0),
        "seconds": (600.0, None),
        "backlog": (100.0, None),
        "legacy-time": (5400.0, None),
    }
    oldest = rb.stages[0].monitor[0].params.max
    assert (type(oldest).__name__, oldest.unit) == ("Quantity", "duration")
