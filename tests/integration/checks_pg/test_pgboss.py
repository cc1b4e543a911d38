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

from runbook.checks.base import Verdict
from runbook.checks.pgboss import PgBossParams, instances, queued_per_queue
from tests.integration.checks_pg.conftest import (
    NodeWorker,
    Template,
    closed_port_url,
    execute,
    measure,
    poll,
    run_node,
)

pytestmark = pytest.mark.pgboss

EXPECTED_LAYOUT = {"10": ("v10", 24), "11": ("v11", 26), "12": ("v12", 46)}


@pytest.fixture(params=["10", "11", "12"])
def db(request: pytest.FixtureRequest, templates: dict[str, Template], copy_db: Any) -> tuple[str, Template]:
    """(URL of a fresh copy of the outcomes database, its template) for each pg-boss major."""
    template = templates[request.param]
    return copy_db(template), template


def pb(url: str, **params: Any) -> Any:
    entered = params.pop("entered", None)
    timeout = params.pop("statement_timeout", 5.0)
    return measure("pgboss", PgBossParams(**params), url, entered=entered, statement_timeout=timeout)


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


@pytest.mark.parametrize("major", ["11", "12"])
def test_cached_counters_written_by_a_real_supervisor(
    major: str, templates: dict[str, Template], copy_db: Any, node: Any, pgboss_dirs: Any
) -> None:
    url = copy_db(templates[major])
    worker = NodeWorker(node, pgboss_dirs[major], url, "q-work", fast_monitor=True)  # monitors every second
    try:
        m = poll(
            lambda: pb(url, metric="backlog", queue="q-backlog"), lambda m: m.inputs["source"] == "cached"
        )
        deferred = pb(url, metric="backlog", queue="q-backlog", state="deferred")
        ready = pb(url, metric="backlog", queue="q-backlog", state="ready")
    finally:
        worker.kill()
    assert (m.value, m.inputs["source"], m.inputs["cache_column"]) == (5, "cached", "queue.queued_count")
    assert 0 <= m.inputs["cache_age"] < 120
    assert (deferred.value, deferred.inputs["source"]) == (2, "cached")
    # ready_count is cached from schema 32 (12.21); 11's layout has none, so ready is counted live.
    assert ready.value == 3 and ready.inputs["source"] == ("cached" if major == "12" else "live")


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


def test_live_workers_v12_registry_sees_a_crash(
    templates: dict[str, Template], copy_db: Any, node: Any, pgboss_dirs: Any
) -> None:
    import psycopg

    url = copy_db(templates["12"])
    worker = NodeWorker(node, pgboss_dirs["12"], url, "q-work")
    try:
        live = poll(lambda: pb(url, metric="live_workers", queue="q-work"), lambda m: m.value == 1)
        assert (live.verdict, live.value, live.inputs["source"]) == (Verdict.PASS, 1, "instance registry")
        worker.kill()  # kill -9: no stop(), stopped_on stays null, the heartbeat (1 s) goes quiet
        dead = poll(lambda: pb(url, metric="live_workers", queue="q-work"), lambda m: m.value == 0)
    finally:
        worker.kill()
    assert (dead.verdict, dead.value) == (Verdict.FAIL, 0)
    assert "1 quiet without stop() (crashed or frozen" in dead.explanation
    with psycopg.connect(url) as conn:
        rows = instances(conn, "pgboss")
    crashed = [r for r in rows if "q-work" in r["queues"]]
    assert len(crashed) == 1 and crashed[0]["pid"] == worker.pid
    assert crashed[0]["live"] is False and crashed[0]["stopped_on"] is None
    assert crashed[0]["heartbeat_on"] >= crashed[0]["started_on"]
    stopped = [r for r in rows if "q-main" in r["queues"]]  # the outcomes script, stopped gracefully
    assert len(stopped) == 1 and stopped[0]["stopped_on"] is not None and stopped[0]["live"] is False


def test_live_workers_v12_without_registration_uses_the_proxies(
    templates: dict[str, Template], copy_db: Any, node: Any, pgboss_dirs: Any
) -> None:
    url = copy_db(templates["12"])
    execute(url, "DELETE FROM pgboss.instance")  # the outcomes script's (stopped) row
    worker = NodeWorker(node, pgboss_dirs["12"], url, "q-work", registry=False)  # registerInstance: false
    try:
        m = pb(url, metric="live_workers")
    finally:
        worker.kill()
    assert execute(url, "SELECT count(*) FROM pgboss.instance") == [(0,)]
    assert m.verdict is Verdict.PASS and m.inputs["proxy"] is True and m.inputs["connections"] >= 1
    assert "the instance registry is empty: registerInstance: false?" in m.explanation


@pytest.mark.parametrize("major", ["10", "11"])
def test_live_workers_proxies_before_the_registry(
    major: str, templates: dict[str, Template], copy_db: Any, node: Any, pgboss_dirs: Any
) -> None:
    url = copy_db(templates[major])
    worker = NodeWorker(node, pgboss_dirs[major], url, "q-work")
    try:
        live = pb(url, metric="live_workers")
        assert live.verdict is Verdict.PASS and live.value >= 1
        assert live.inputs["proxy"] is True and live.inputs["connections"] >= 1
        assert "proxy (pg-boss" in live.explanation and "no worker registry" in live.explanation
        worker.kill()
        gone = poll(lambda: pb(url, metric="live_workers"), lambda m: m.inputs.get("connections") == 0)
    finally:
        worker.kill()
    assert gone.inputs["connections"] == 0
    # Simulated: an hour passes with no instance refreshing cron_on (nor monitor_on on 11).
    execute(url, "UPDATE pgboss.version SET cron_on = now() - interval '1 hour'")
    if major == "11":
        execute(url, "UPDATE pgboss.queue SET monitor_on = now() - interval '1 hour'")
    dead = pb(url, metric="live_workers")
    assert (dead.verdict, dead.value) == (Verdict.FAIL, 0)
    assert "version.cron_on 3600s ago" in dead.explanation


def test_custom_schema_from_settings_or_params(pg_url: str, node: Any, pgboss_dirs: Any) -> None:
    run_node(node, pgboss_dirs["12"], pg_url, "outcomes", schema="app_jobs")
    direct = pb(pg_url, metric="error_rate", queue="q-main", schema="app_jobs")
    assert direct.value == pytest.approx(2 / 6) and direct.inputs["schema"] == "app_jobs"
    settings = measure(
        "pgboss", PgBossParams(metric="throughput", queue="q-main"), pg_url, pgboss_schema="app_jobs"
    )
    assert settings.value == 4
    assert pb(pg_url, metric="installed").explanation.startswith('pg-boss schema "pgboss" not installed')


# --- failure modes ---------------------------------------------------------------------------------


def test_not_installed_fails_naming_the_schema(pg_url: str) -> None:
    m = pb(pg_url, metric="installed")
    assert m.verdict is Verdict.FAIL
    assert m.explanation.startswith('pg-boss schema "pgboss" not installed')
    assert pb(pg_url, metric="backlog", queue="q").verdict is Verdict.FAIL
    other = measure("pgboss", PgBossParams(metric="installed", schema="jobs"), pg_url)
    assert 'pg-boss schema "jobs" not installed' in other.explanation


def test_pgboss_9_layout_is_refused(pg_url: str) -> None:
    # A v9-like schema: version 20, camel-case-less old column names, an archive table.
    execute(
        pg_url,
        "CREATE SCHEMA pgboss; CREATE TABLE pgboss.version (version int, maintained_on timestamptz,"
        " cron_on timestamptz); INSERT INTO pgboss.version VALUES (20);"
        " CREATE TABLE pgboss.job (id uuid, name text, state text, createdon timestamptz,"
        " startedon timestamptz, completedon timestamptz, expirein interval);"
        " CREATE TABLE pgboss.archive (LIKE pgboss.job);"
        " ALTER TABLE pgboss.archive ADD archivedon timestamptz",
    )
    m = pb(pg_url, metric="installed")
    assert m.verdict is Verdict.ERROR
    assert "version 20, the layout of pg-boss 9 or older" in m.explanation
    assert "upgrade the app to pg-boss 10" in m.explanation


def test_unreachable_database_is_an_error_not_a_failure(pg_url: str) -> None:
    url = closed_port_url()
    m = measure("pgboss", PgBossParams(metric="backlog", queue="q", url=url), pg_url)
    assert m.verdict is Verdict.ERROR
    assert "connection refused" in m.explanation
    assert "secret-pw" not in m.explanation


@pytest.mark.parametrize(
    ("major", "locked", "table", "index"),
    [
        ("10", "pgboss.archive", "pgboss.job and pgboss.archive", "archive_name_completed_on_idx"),
        ("11", "pgboss.job_common", "pgboss.job", "job_common_name_completed_on_idx"),
    ],
)
def test_timeout_names_the_table_and_the_index(
    major: str, locked: str, table: str, index: str, templates: dict[str, Template], copy_db: Any
) -> None:
    import psycopg

    url = copy_db(templates[major])
    with psycopg.connect(url) as locker:
        locker.execute(f"LOCK TABLE {locked} IN ACCESS EXCLUSIVE MODE")  # held until the block ends
        m = pb(url, metric="error_rate", queue="q-main", statement_timeout=0.5)
    assert m.verdict is Verdict.ERROR
    assert m.explanation.startswith(f"query on {table} was cancelled by statement_timeout")
    statement = m.explanation.split("; ")[1]
    assert statement.startswith(
        "pg-boss 10's archive has no index on completed_on: CREATE INDEX" if major == "10" else "CREATE INDEX"
    )
    execute(
        url, statement[statement.index("CREATE INDEX") :].split(" (pg-boss")[0]
    )  # the suggestion is valid SQL
    assert execute(url, "SELECT count(*) FROM pg_indexes WHERE indexname = %s", (index,)) == [(1,)]
    assert pb(url, metric="error_rate", queue="q-main").value == pytest.approx(2 / 6)


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="needs a queue"):
        PgBossParams(metric="backlog")
    with pytest.raises(ValueError, match="internal to pg-boss"):
        PgBossParams(metric="backlog", queue="__pgboss__send-it")
    with pytest.raises(ValueError, match="percentile"):
        PgBossParams(metric="run_time", queue="q", percentile=100)
    with pytest.raises(ValueError, match="no value can pass"):
        PgBossParams(metric="backlog", queue="q", max=1, min=2)
    with pytest.raises(ValueError, match="unknown metric"):
        PgBossParams(metric="latency", queue="q")  # type: ignore[arg-type]
    assert PgBossParams(metric="stuck_active", queue="q").effective_max == 0
    assert PgBossParams(metric="live_workers").effective_min == 1


def test_a_stray_archive_beside_a_v12_schema_is_not_read(
    templates: dict[str, Template], copy_db: Any
) -> None:
    url = copy_db(templates["12"])
    # Simulated: a hand-migrated database kept pg-boss 10's archive table (with a failure in the window).
    execute(
        url,
        "CREATE TABLE pgboss.archive (LIKE pgboss.job);"
        " ALTER TABLE pgboss.archive ADD archived_on timestamptz",
    )
    execute(
        url,
        "INSERT INTO pgboss.archive SELECT *, now() FROM pgboss.job"
        " WHERE name = 'q-main' AND state = 'failed'",
    )
    m = pb(url, metric="error_rate", queue="q-main")
    assert m.inputs["layout"] == "v12" and m.value == pytest.approx(2 / 6)
    assert not any("archive" in q for q in m.inputs["queries"])
