"""The `pgboss` kind against real pg-boss 10, 11 and 12, asserting each metric equals the known truth.

Known truth, from `js/scenario.mjs outcomes` run by real pg-boss:
- q-main: 3 jobs succeed, 2 fail with retryLimit 0, 1 fails once and succeeds on its retry
  -> 4 completed, 2 failed: error rate 2/6, throughput 4;
- q-backlog: 3 ready jobs and 2 deferred by an hour, no worker -> queued 5, ready 3, deferred 2;
- q-active: 2 jobs fetched and never completed -> active 2;
- q-empty: created, never used.

Where real time would be needed (aged jobs, archive moves after 12 hours, exact run times, stale
counters or heartbeats), the test writes the rows directly with SQL, and says so at that spot."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from runbook.checkrun import CheckRunContext
from runbook.checks.base import Verdict
from runbook.checks.pgboss import PgBossParams, queued_per_queue, samples
from tests.integration.checks_pg.conftest import Template, execute, measure, pb, runbook_for

pytestmark = pytest.mark.pgboss

EXPECTED_LAYOUT = {"10": ("v10", 24), "11": ("v11", 26), "12": ("v12", 46)}


@pytest.fixture(params=["10", "11", "12"])
def db(request: pytest.FixtureRequest, templates: dict[str, Template], copy_db: Any) -> tuple[str, Template]:
    """(URL of a fresh copy of the outcomes database, its template) for each pg-boss major."""
    template = templates[request.param]
    return copy_db(template), template


def test_installed_reports_schema_version_and_layout(db: tuple[str, Template]) -> None:
    url, t = db
    layout, version = EXPECTED_LAYOUT[t.major]
    m = pb(url, metric="installed")
    assert m.verdict is Verdict.PASS
    assert m.inputs["layout"] == layout
    assert m.inputs["schema_version"] == m.value
    if t.major == "12":
        assert m.value >= 44  # the instance registry's schema; 12.38.0 is 46
    else:
        assert m.value == version
    assert f"layout {layout}" in m.explanation
    assert pb(url, metric="installed", min=m.value + 1).verdict is Verdict.FAIL


def test_queue_exists_names_the_create_queue_fix(db: tuple[str, Template]) -> None:
    url, _ = db
    assert pb(url, metric="queue_exists", queue="q-empty").verdict is Verdict.PASS
    m = pb(url, metric="queue_exists", queue="import-article")
    assert (m.verdict, m.value) == (Verdict.FAIL, False)
    assert "await boss.createQueue('import-article')" in m.explanation
    other = pb(url, metric="backlog", queue="import-article")
    assert other.verdict is Verdict.ERROR and "createQueue" in other.explanation


def test_error_rate_and_throughput_equal_the_outcomes(db: tuple[str, Template]) -> None:
    url, t = db
    m = pb(url, metric="error_rate", queue="q-main", window=3600, max=0.05)
    assert m.value == pytest.approx(2 / 6)
    assert m.verdict is Verdict.FAIL
    assert m.explanation == "error rate 0.333 (2 failed of 6 finished in the last 1h) > max 0.05"
    assert m.inputs["layout"] == EXPECTED_LAYOUT[t.major][0] and m.inputs["window"] == 3600
    assert any('"completed_on" >= greatest(' in q and "name = %(queue)s" in q for q in m.inputs["queries"])
    assert m.inputs["queue"] == "q-main" and m.inputs["max"] == 0.05
    assert not any("pg_catalog" in q for q in m.inputs["queries"])  # layout look-ups are not audit material
    assert pb(url, metric="error_rate", queue="q-main", max=0.5).verdict is Verdict.PASS
    few = pb(url, metric="error_rate", queue="q-main", max=0.5, min_jobs=7)
    assert few.verdict is Verdict.INCONCLUSIVE and "only 6 finished jobs" in few.explanation
    tp = pb(url, metric="throughput", queue="q-main", min=4)
    assert (tp.verdict, tp.value) == (Verdict.PASS, 4)
    assert pb(url, metric="throughput", queue="q-main", min=5).verdict is Verdict.FAIL
    # The flaky job failed once and completed on its retry: same row, retry_count 1.
    flaky = t.outcome["main"]["flaky"][0]
    assert execute(url, "SELECT state::text, retry_count FROM pgboss.job WHERE id = %s", (flaky,)) == [
        ("completed", 1)
    ]


def test_error_rate_with_confidence_judges_the_interval(db: tuple[str, Template]) -> None:
    """2 failed of 6 finished in q-main (real pg-boss): the interval, not the point 0.333, decides."""
    url, _ = db
    undecided = pb(url, metric="error_rate", queue="q-main", max=0.05, confidence=0.95)
    assert (undecided.verdict, undecided.value) == (Verdict.INCONCLUSIVE, pytest.approx(2 / 6))
    assert undecided.explanation == (
        "error rate 0.333 (2 failed of 6 finished in the last 1h), 95% interval 0.012-0.885 includes "
        "max 0.05: undecided; about 11 more jobs at the rate seen so far (0.333) would decide it"
    )
    lower, upper = undecided.inputs["interval"]["lower"], undecided.inputs["interval"]["upper"]
    assert lower < 0.05 < upper and (undecided.inputs["confidence"], undecided.inputs["jobs"]) == (0.95, 6)
    assert undecided.inputs["jobs_to_decide"] == 11 and undecided.inputs["failed"] == 2
    above = pb(url, metric="error_rate", queue="q-main", max=0.001, confidence=0.95)
    assert above.verdict is Verdict.FAIL and above.inputs["interval"]["lower"] > 0.001
    assert above.explanation.endswith(": the whole interval > max 0.001")
    below = pb(url, metric="error_rate", queue="q-main", max=0.99, confidence=0.95)
    assert below.verdict is Verdict.PASS and below.explanation.endswith(": the whole interval <= max 0.99")
    # without confidence the same data is judged by its point value, as before
    assert pb(url, metric="error_rate", queue="q-main", max=0.5).verdict is Verdict.PASS


def test_window_can_be_clipped_to_the_stage(db: tuple[str, Template]) -> None:
    url, _ = db
    now = dt.datetime.now(dt.UTC)
    m = pb(url, metric="error_rate", queue="q-main", since_stage=True, entered=now, max=0.5)
    assert m.verdict is Verdict.INCONCLUSIVE and "only 0 finished jobs" in m.explanation
    tp = pb(url, metric="throughput", queue="q-main", since_stage=True, entered=now, min=1)
    assert (tp.verdict, tp.value) == (Verdict.INCONCLUSIVE, 0)  # no traffic is not a failure
    earlier = now - dt.timedelta(hours=1)
    assert pb(
        url, metric="error_rate", queue="q-main", since_stage=True, entered=earlier
    ).value == pytest.approx(1 / 3)


def test_backlog_counts_live(db: tuple[str, Template]) -> None:
    url, t = db
    for state, expected in (("queued", 5), ("ready", 3), ("deferred", 2), ("active", 0)):
        m = pb(url, metric="backlog", queue="q-backlog", state=state, counters="live")
        assert (m.value, m.inputs["source"]) == (expected, "live"), state
    active = pb(url, metric="backlog", queue="q-active", state="active", max=1)
    assert (active.verdict, active.value) == (Verdict.FAIL, 2)
    auto = pb(url, metric="backlog", queue="q-backlog", max=10)
    assert (auto.verdict, auto.value, auto.inputs["source"]) == (Verdict.PASS, 5, "live")
    if t.major != "10":  # 11 and 12 cache counters; nobody supervised, so they were never refreshed
        assert "cached counters stale (never refreshed" in auto.explanation


@pytest.mark.parametrize("major", ["11", "12"])
def test_cached_counters_used_while_fresh_and_live_count_when_stale(
    major: str, templates: dict[str, Template], copy_db: Any
) -> None:
    url = copy_db(templates[major])
    # Simulated with SQL: a supervising instance cached a (deliberately different) count 1 s ago.
    execute(url, "UPDATE pgboss.queue SET queued_count = 42, monitor_on = now() WHERE name = 'q-backlog'")
    fresh = pb(url, metric="backlog", queue="q-backlog")
    assert (fresh.value, fresh.inputs["source"]) == (42, "cached")
    assert "cached queue.queued_count" in fresh.explanation
    # ... and then the supervisor died an hour ago: the cache is stale, the live count is used.
    execute(url, "UPDATE pgboss.queue SET monitor_on = now() - interval '1 hour' WHERE name = 'q-backlog'")
    stale = pb(url, metric="backlog", queue="q-backlog", max=10)
    assert (stale.verdict, stale.value, stale.inputs["source"]) == (Verdict.PASS, 5, "live")
    assert stale.inputs["cache_age"] == pytest.approx(3600, abs=60)
    assert "cached counters stale (1h" in stale.explanation
    forced = pb(url, metric="backlog", queue="q-backlog", counters="cached")
    assert (forced.value, forced.inputs["source"]) == (42, "cached")


def test_oldest_ready_age(db: tuple[str, Template]) -> None:
    url, t = db
    # Simulated: the first ready job was created and became ready 10 minutes ago.
    execute(
        url,
        "UPDATE pgboss.job SET created_on = now() - interval '600 seconds',"
        " start_after = now() - interval '600 seconds'"
        " WHERE name = 'q-backlog' AND id = %s",
        (t.outcome["backlog"]["ready"][0],),
    )
    m = pb(url, metric="oldest_ready_age", queue="q-backlog", max=300)
    assert m.verdict is Verdict.FAIL and m.unit == "s"
    assert 600 <= m.value < 700
    assert m.inputs["ready"] == 3
    assert pb(url, metric="oldest_ready_age", queue="q-empty", max=300).value == 0


def test_stuck_active_jobs(db: tuple[str, Template]) -> None:
    url, t = db
    ok = pb(url, metric="stuck_active", queue="q-active")
    assert (ok.verdict, ok.value, ok.inputs["active"]) == (Verdict.PASS, 0, 2)
    # Simulated: one fetched job started 2 hours ago (default expiry 15 minutes), its worker long gone.
    execute(
        url,
        "UPDATE pgboss.job SET started_on = now() - interval '2 hours' WHERE name = 'q-active' AND id = %s",
        (t.outcome["active"][0],),
    )
    m = pb(url, metric="stuck_active", queue="q-active")
    assert (m.verdict, m.value) == (Verdict.FAIL, 1)
    expire = "expire_in" if t.major == "10" else "expire_seconds"
    assert m.explanation.startswith(f"1 of 2 active jobs in q-active past their expiry ({expire})")
    assert m.explanation.endswith("> max 0")


def _set_exact_timings(url: str, outcome: dict[str, Any]) -> None:
    """Simulated: exact run and wait times. Completed runs 1..4 s; waits of all six jobs 10..60 s."""
    completed = [*outcome["main"]["ok"], *outcome["main"]["flaky"]]
    finished = [*completed, *outcome["main"]["fail"]]
    for i, job in enumerate(finished):
        run = i + 1 if job in completed else 5
        execute(
            url,
            "UPDATE pgboss.job SET started_on = now() - interval '10 minutes',"
            " created_on = now() - interval '10 minutes' - %s * interval '1 second',"
            " start_after = now() - interval '10 minutes' - %s * interval '1 second',"
            " completed_on = now() - interval '10 minutes' + %s * interval '1 second' WHERE id = %s",
            ((i + 1) * 10, (i + 1) * 10, run, job),
        )


def test_run_time_and_wait_time_percentiles(db: tuple[str, Template]) -> None:
    url, t = db
    _set_exact_timings(url, t.outcome)
    p50 = pb(url, metric="run_time", queue="q-main", percentile=50)
    p95 = pb(url, metric="run_time", queue="q-main", percentile=95, max=3)
    assert p50.value == pytest.approx(2.5) and p50.verdict is Verdict.PASS
    assert p95.value == pytest.approx(3.85) and p95.verdict is Verdict.FAIL
    assert p95.explanation == "run time p95 3.85s over 4 completed jobs in the last 1h > max 3s"
    w50 = pb(url, metric="wait_time", queue="q-main", percentile=50)
    w95 = pb(url, metric="wait_time", queue="q-main", percentile=95, max=60)
    assert w50.value == pytest.approx(35.0)
    assert (w95.value, w95.verdict) == (pytest.approx(57.5), Verdict.PASS)
    assert pb(url, metric="run_time", queue="q-main", min_jobs=5).verdict is Verdict.INCONCLUSIVE


def test_one_job_is_named_in_the_singular(db: tuple[str, Template]) -> None:
    """Explanations over a single job read as English: `1 completed job`, `its expiry`, `1 run time`."""
    url, t = db
    _set_exact_timings(url, t.outcome)
    first = t.outcome["main"]["ok"][0]  # run 1 s, waited 10 s
    execute(url, "DELETE FROM pgboss.job WHERE name = 'q-main' AND id <> %s", (first,))
    p95 = pb(url, metric="run_time", queue="q-main", percentile=95, max=3)
    assert p95.explanation == "run time p95 1s over 1 completed job in the last 1h <= max 3s"
    w50 = pb(url, metric="wait_time", queue="q-main", percentile=50)
    assert w50.explanation == "wait time p50 10s over 1 started job in the last 1h"
    tp = pb(url, metric="throughput", queue="q-main", min=1)
    assert tp.explanation == "1 job completed in q-main in the last 1h (0 failed) >= min 1"
    few = "in q-main in the last 1h (min_jobs 2): not enough to judge"
    rate = pb(url, metric="error_rate", queue="q-main", min_jobs=2)
    assert rate.explanation == f"only 1 finished job {few}"
    assert pb(url, metric="run_time", queue="q-main", min_jobs=2).explanation == f"only 1 completed job {few}"
    assert pb(url, metric="wait_time", queue="q-main", min_jobs=2).explanation == f"only 1 started job {few}"
    with CheckRunContext(runbook_for(url), stage_id="s1") as ctx:
        times = samples(PgBossParams(metric="run_time", queue="q-main"), ctx, 10)
    assert (times.value, times.explanation) == ([pytest.approx(1.0)], "1 run time")
    execute(url, "DELETE FROM pgboss.job WHERE id = %s", (t.outcome["active"][0],))
    stuck = pb(url, metric="stuck_active", queue="q-active")
    expire = "expire_in" if t.major == "10" else "expire_seconds"
    assert stuck.explanation == f"0 of 1 active job in q-active past its expiry ({expire}) <= max 0"


def test_v10_reads_the_archive(templates: dict[str, Template], copy_db: Any) -> None:
    t = templates["10"]
    url = copy_db(t)
    _set_exact_timings(url, t.outcome)
    moved = [*t.outcome["main"]["ok"][:2], t.outcome["main"]["fail"][0]]
    # Simulated maintenance (pg-boss 10 archives finished jobs after 12 hours): 2 completed and 1 failed
    # job move to pgboss.archive; the archive also holds a cancelled job and a never-started one whose
    # retention ran out, both stamped now, which must not count.
    execute(
        url, "INSERT INTO pgboss.archive SELECT *, now() FROM pgboss.job WHERE id = ANY(%s::uuid[])", (moved,)
    )
    execute(url, "DELETE FROM pgboss.job WHERE id = ANY(%s::uuid[])", (moved,))
    source = t.outcome["backlog"]["ready"][0]
    for state in ("cancelled", "created"):
        _archive_copy(url, source, state, "now()")
    assert execute(url, "SELECT count(*) FROM pgboss.job WHERE name = 'q-main'") == [(3,)]
    assert pb(url, metric="error_rate", queue="q-main").value == pytest.approx(2 / 6)
    assert pb(url, metric="throughput", queue="q-main").value == 4
    assert pb(url, metric="run_time", queue="q-main", percentile=95).value == pytest.approx(3.85)
    assert pb(url, metric="wait_time", queue="q-main", percentile=50).value == pytest.approx(35.0)
    hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)  # before the (simulated) completions
    work = measure("work", _work_params(queue="q-main", min_jobs=4), url, entered=hour_ago)
    assert (work.verdict, work.value) == (Verdict.PASS, 4)
    # An older failure, archived 3 days ago: outside a 1 h window, inside a 7 d one.
    _archive_copy(url, source, "failed", "now() - interval '3 days'")
    assert pb(url, metric="error_rate", queue="q-main", window=3600).value == pytest.approx(2 / 6)
    week = pb(url, metric="error_rate", queue="q-main", window=7 * 86400)
    assert week.value == pytest.approx(3 / 7)
    assert "3 failed of 7 finished in the last 7d" in week.explanation


def _archive_copy(url: str, source: str, state: str, completed_on: str) -> None:
    """Simulated: an archived q-main row in `state` (copied from job `source` so every column is valid)."""
    execute(url, "INSERT INTO pgboss.archive SELECT *, now() FROM pgboss.job WHERE id = %s", (source,))
    execute(
        url,
        "UPDATE pgboss.archive SET id = gen_random_uuid(), name = 'q-main', state = %s,"
        f" completed_on = {completed_on}, started_on = {completed_on} - interval '1 minute',"
        f" created_on = {completed_on} - interval '2 minutes',"
        f" start_after = {completed_on} - interval '2 minutes' WHERE id = %s",
        (state, source),
    )


def _work_params(**kw: Any) -> Any:
    from runbook.checks.work import WorkParams

    return WorkParams(**kw)


def test_work_counts_jobs_done_since_the_stage(db: tuple[str, Template]) -> None:
    url, t = db
    m = measure("work", _work_params(queue="q-main", min_jobs=4), url, entered=t.started_at)
    assert (m.verdict, m.value) == (Verdict.PASS, 4)
    assert m.explanation.startswith("4 jobs completed in pg-boss queue q-main since the stage was entered")
    short = measure("work", _work_params(queue="q-main", min_jobs=5), url, entered=t.started_at)
    assert (short.verdict, short.value) == (Verdict.INCONCLUSIVE, 4)
    naive_utc = t.started_at.replace(tzinfo=None)  # a naive datetime is taken as UTC
    assert measure("work", _work_params(queue="q-main", min_jobs=4), url, entered=naive_utc).value == 4
    none = measure("work", _work_params(queue="q-main", min_jobs=1), url, entered=dt.datetime.now(dt.UTC))
    assert (none.verdict, none.value) == (Verdict.INCONCLUSIVE, 0)


def test_queued_per_queue_skips_internal_queues(db: tuple[str, Template]) -> None:
    import psycopg

    url, _ = db
    with psycopg.connect(url) as conn:
        rows = queued_per_queue(conn, "pgboss")
    assert rows == [
        {"queue": "q-active", "queued": 0, "ready": 0, "deferred": 0, "active": 2},
        {"queue": "q-backlog", "queued": 5, "ready": 3, "deferred": 2, "active": 0},
    ]
