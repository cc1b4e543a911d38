"""The `legacy` kind (and `work` on legacy rows) against the real Prisma "Job" table.

The database's TimeZone is Pacific/Auckland (UTC+13 in November) while the app writes UTC into
`timestamp without time zone` columns, as Prisma does: a comparison that forgot the conversion would be
13 hours off and every assertion on created_since / stale_running / windows below would fail.

Known truth (`scenario`, times relative to now):
  old  COMPLETED, started -3h, ran 1000 s          f2  FAILED at -30m
  c1   COMPLETED, started -20m, ran 10 s            c2  COMPLETED, started -20m, ran 20 s
  c3   COMPLETED (import-1), started -10m, 30 s     c4  COMPLETED (import-2), started -10m, 40 s
  f1   FAILED at -29m, retried -> p2 PENDING (originalJobId = f1)
  r1   RUNNING since -45m (stale after 30m)         r2  RUNNING since -1m
  p1   PENDING (import-3), created -5m              x1  CANCELLED, created -6m
-> pending 2, running 2, completed 5, failed 2, cancelled 1; in the last hour 2 failed of 6 finished;
   processing times of the last hour 10, 20, 30, 40 s."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from runbook.checkrun import CheckRunContext
from runbook.checks.base import Verdict
from runbook.checks.legacy import LegacyParams, samples
from runbook.checks.work import WorkParams
from runbook.model import LegacySettings
from tests.integration.checks_pg.conftest import closed_port_url, execute, measure, runbook_for
from tests.integration.checks_pg.legacy_app import LegacyApp

M = 60.0
H = 3600.0
IMPORTS = "\"evaluationId\" LIKE 'import-%'"


@pytest.fixture
def scenario(pg_url: str) -> Iterator[tuple[str, dict[str, str], LegacyApp]]:
    execute(pg_url, "SELECT 1")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{conn.info.dbname}\" SET timezone TO 'Pacific/Auckland'")
    app = LegacyApp(pg_url)
    app.install()
    ids = {
        "old": app.run("eval-0", created=-4 * H, started=-3 * H, seconds=1000),
        "f2": app.run("eval-1", created=-35 * M, started=-31 * M, seconds=60, ok=False),
        "c1": app.run("eval-2", created=-25 * M, started=-20 * M, seconds=10),
        "c2": app.run("eval-3", created=-25 * M + 1, started=-20 * M, seconds=20),
        "c3": app.run("import-1", created=-12 * M, started=-10 * M, seconds=30),
        "c4": app.run("import-2", created=-12 * M + 1, started=-10 * M, seconds=40),
    }
    ids["f1"] = app.create(at=-34 * M, evaluation="eval-4")
    assert app.claim(at=-30 * M) == ids["f1"]
    retry = app.fail(ids["f1"], at=-29 * M, retry=True)
    assert retry is not None
    ids["p2"] = retry
    ids["r1"] = app.create(at=-50 * M, evaluation="eval-5")
    assert app.claim(at=-45 * M) == ids["r1"]
    ids["r2"] = app.create(at=-40 * M, evaluation="eval-6")
    assert app.claim(at=-1 * M) == ids["r2"]
    ids["p1"] = app.create(at=-5 * M, evaluation="import-3")
    ids["x1"] = app.create(at=-6 * M, evaluation="eval-7")
    app.cancel(ids["x1"], at=-2 * M)
    yield pg_url, ids, app
    app.close()


def lg(
    db_url: str, *, entered: dt.datetime | None = None, legacy: LegacySettings | None = None, **params: Any
) -> Any:
    timeout = params.pop("statement_timeout", 5.0)
    return measure(
        "legacy", LegacyParams(**params), db_url, entered=entered, legacy=legacy, statement_timeout=timeout
    )


def ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)


def test_the_session_really_is_not_utc(scenario: Any) -> None:
    url, ids, _ = scenario
    assert execute(url, "SHOW timezone") == [("Pacific/Auckland",)]
    assert execute(url, 'SELECT "originalJobId" FROM "public"."Job" WHERE "id" = %s', (ids["p2"],)) == [
        (ids["f1"],)
    ]


def test_counts_by_status(scenario: Any) -> None:
    url, _, _ = scenario
    m = lg(url, metric="counts", max=10)
    assert (m.verdict, m.value) == (Verdict.PASS, 4)
    assert m.inputs["counts"] == {"PENDING": 2, "RUNNING": 2}
    assert (
        m.explanation
        == 'legacy rows in "public"."Job": PENDING 2, RUNNING 2 (pending + running = 4) <= max 10'
    )
    finished = lg(url, metric="counts", status=("done", "failed", "cancelled"))
    assert finished.value == 8 and finished.inputs["counts"] == {"COMPLETED": 5, "FAILED": 2, "CANCELLED": 1}
    imports = lg(url, metric="counts", filter=IMPORTS)
    assert imports.value == 1 and "(filtered)" in imports.explanation
    assert any('FROM "public"."Job"' in q and '"status" IN (%s, %s)' in q for q in m.inputs["queries"])


def test_drained_waits_then_passes(scenario: Any) -> None:
    url, _, app = scenario
    m = lg(url, metric="drained")
    assert (m.verdict, m.value) == (Verdict.INCONCLUSIVE, 4)
    assert m.explanation == 'legacy table "public"."Job" not drained yet: 2 pending, 2 running'
    assert lg(url, metric="drained", strict=True).verdict is Verdict.FAIL
    for job in [app.claim(), app.claim()]:
        assert job is not None
        app.complete(job)
    for job, _ in app.rows("\"status\" = 'RUNNING'"):
        app.complete(job)
    done = lg(url, metric="drained")
    assert (done.verdict, done.value) == (Verdict.PASS, 0)


def test_created_since_the_stage_in_utc(scenario: Any) -> None:
    url, _, app = scenario
    m = lg(url, metric="created_since", entered=ago(15 * M))
    assert (m.verdict, m.value) == (Verdict.FAIL, 4)  # c3, c4, p1, x1
    assert m.explanation.endswith("> max 0: the app still writes jobs to the legacy table")
    assert lg(url, metric="created_since", entered=ago(15 * M), filter=IMPORTS).value == 3
    now = dt.datetime.now(dt.UTC)
    quiet = lg(url, metric="created_since", entered=now)
    assert (quiet.verdict, quiet.value) == (Verdict.PASS, 0)
    app.create(evaluation="eval-after-flip")
    late = lg(url, metric="created_since", entered=now)
    assert (late.verdict, late.value) == (Verdict.FAIL, 1)
    assert lg(url, metric="created_since").verdict is Verdict.INCONCLUSIVE  # no stage entered


def test_stale_running(scenario: Any) -> None:
    url, _, _ = scenario
    m = lg(url, metric="stale_running")
    assert (m.verdict, m.value) == (Verdict.FAIL, 1)
    assert m.explanation.startswith("1 running legacy row started more than 30m ago (oldest 45m")
    assert lg(url, metric="stale_running", stale_after=H).value == 0
    custom = LegacySettings(stale_after=50 * M)
    assert lg(url, metric="stale_running", legacy=custom).value == 0


def test_error_rate_and_processing_time(scenario: Any) -> None:
    url, _, _ = scenario
    m = lg(url, metric="error_rate", max=0.05)
    assert m.value == pytest.approx(2 / 6) and m.verdict is Verdict.FAIL
    assert m.explanation == "legacy error rate 0.333 (2 failed of 6 finished in the last 1h) > max 0.05"
    assert lg(url, metric="error_rate", min_jobs=7).verdict is Verdict.INCONCLUSIVE
    p50 = lg(url, metric="processing_time", percentile=50)
    p95 = lg(url, metric="processing_time", percentile=95, max=30)
    assert p50.value == pytest.approx(25.0)
    assert (p95.value, p95.verdict) == (pytest.approx(38.5), Verdict.FAIL)
    assert (
        p95.explanation == "legacy processing time p95 38.5s over 4 completed rows in the last 1h > max 30s"
    )
    wide = lg(url, metric="processing_time", percentile=50, window=4 * H)
    assert wide.value == pytest.approx(30.0)  # 10, 20, 30, 40 and the old 1000 s job
    staged = lg(url, metric="error_rate", window=4 * H, since_stage=True, entered=ago(15 * M))
    assert staged.value == 0 and staged.inputs["completed"] == 2  # only c3 and c4 finished since


def test_one_row_is_named_in_the_singular(scenario: Any) -> None:
    """Since 9m25s ago only c4 (40 s) finished: explanations over one row read as English."""
    url, _, _ = scenario
    entered = ago(9 * M + 25)
    span = "in the last 1h (not before the stage was entered)"
    p95 = lg(url, metric="processing_time", percentile=95, max=30, since_stage=True, entered=entered)
    assert p95.explanation == f"legacy processing time p95 40s over 1 completed row {span} > max 30s"
    few = f"{span} (min_jobs 2): not enough to judge"
    rate = lg(url, metric="error_rate", min_jobs=2, since_stage=True, entered=entered)
    assert rate.explanation == f"only 1 finished legacy row {few}"
    slow = lg(url, metric="processing_time", min_jobs=2, since_stage=True, entered=entered)
    assert slow.explanation == f"only 1 completed legacy row {few}"
    params = LegacyParams(metric="processing_time", since_stage=True)
    with CheckRunContext(runbook_for(url), stage_id="s1", stage_entered_at=entered) as ctx:
        times = samples(params, ctx, 10)
    assert (times.value, times.explanation) == ([pytest.approx(40.0)], "1 processing time")


def test_a_one_row_table_is_named_in_the_singular(pg_url: str) -> None:
    app = LegacyApp(pg_url)
    app.install()
    app.run("eval-0", created=-2 * M, started=-M, seconds=10)
    app.close()
    execute(pg_url, 'ANALYZE "public"."Job"')
    m = lg(pg_url, metric="drained", scan_limit_rows=0)
    assert m.verdict is Verdict.ERROR
    assert m.explanation.startswith('"public"."Job" holds about 1 row (above scan_limit_rows 0) and no index')


def test_error_rate_with_confidence(scenario: Any) -> None:
    url, _, _ = scenario
    m = lg(url, metric="error_rate", max=0.05, confidence=0.95)
    assert (m.verdict, m.value) == (Verdict.INCONCLUSIVE, pytest.approx(2 / 6))
    assert m.explanation.startswith(
        "legacy error rate 0.333 (2 failed of 6 finished in the last 1h), 95% interval 0.012-0.885 includes"
    )
    assert m.inputs["interval"]["lower"] == pytest.approx(0.01202, abs=1e-5)
    assert m.inputs["window"] == 3600 and m.inputs["max"] == 0.05
    fail = lg(url, metric="error_rate", max=0.001, confidence=0.95)
    assert fail.verdict is Verdict.FAIL and "the whole interval > max 0.001" in fail.explanation
    assert lg(url, metric="error_rate", max=0.99, confidence=0.99).verdict is Verdict.PASS


def test_type_column_mapping(scenario: Any) -> None:
    url, _, _ = scenario
    execute(url, 'ALTER TABLE "public"."Job" ADD COLUMN "type" text')
    execute(url, f'UPDATE "public"."Job" SET "type" = \'import-article\' WHERE {IMPORTS}')
    mapping = LegacySettings(type_column="type")
    m = lg(url, metric="counts", type="import-article", legacy=mapping)
    assert m.value == 1 and "(type import-article)" in m.explanation
    work = measure(
        "work",
        WorkParams(source="legacy", type="import-article", min_jobs=2),
        url,
        entered=ago(15 * M),
        legacy=mapping,
    )
    assert (work.verdict, work.value) == (Verdict.PASS, 2)
    unmapped = lg(url, metric="counts", type="import-article")
    assert unmapped.verdict is Verdict.ERROR and "set settings.legacy.type_column" in unmapped.explanation


def test_work_on_legacy_rows(scenario: Any) -> None:
    url, _, _ = scenario
    recent = measure("work", WorkParams(source="legacy", min_jobs=2), url, entered=ago(15 * M))
    assert (recent.verdict, recent.value) == (Verdict.PASS, 2)
    more = measure("work", WorkParams(source="legacy", min_jobs=5), url, entered=ago(25 * M))
    assert (more.verdict, more.value) == (Verdict.INCONCLUSIVE, 4)
    assert more.explanation == "4 legacy rows processed since the stage was entered (need 5): keep soaking"
    failed_too = WorkParams(source="legacy", include_failed=True, filter="true")
    assert measure("work", failed_too, url, entered=ago(35 * M)).value == 6


def test_large_table_without_index_is_refused_with_the_index_to_create(scenario: Any) -> None:
    url, _, _ = scenario
    execute(url, 'ANALYZE "public"."Job"')
    m = lg(url, metric="drained", scan_limit_rows=5)
    statement = (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Job_status_active_idx" ON "public"."Job" ("status")'
        " WHERE \"status\" IN ('PENDING', 'RUNNING')"
    )
    assert m.verdict is Verdict.ERROR
    assert 'holds about 12 rows (above scan_limit_rows 5) and no index starts with "status"' in m.explanation
    assert statement in m.explanation
    assert lg(url, metric="drained", scan_limit_rows=5, allow_scan=True).value == 4
    execute(url, statement)  # the suggested statement is valid and sufficient
    assert lg(url, metric="drained", scan_limit_rows=5).value == 4
    assert lg(url, metric="stale_running", scan_limit_rows=5).value == 1
    # A partial index does not serve counts of finished rows; a full one is suggested.
    done = lg(url, metric="counts", status=("done",), scan_limit_rows=5)
    assert done.verdict is Verdict.ERROR
    assert (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Job_status_idx" ON "public"."Job" ("status");'
        in done.explanation
    )
    created = lg(url, metric="created_since", entered=ago(M), scan_limit_rows=5)
    assert '"Job_createdAt_idx" ON "public"."Job" ("createdAt")' in created.explanation
    window = lg(url, metric="error_rate", scan_limit_rows=5)
    assert '("completedAt") WHERE "completedAt" IS NOT NULL' in window.explanation


def test_timeout_names_the_table_and_the_index(scenario: Any) -> None:
    url, _, _ = scenario
    execute(url, 'ANALYZE "public"."Job"')
    with psycopg.connect(url) as locker:
        locker.execute('LOCK TABLE "public"."Job" IN ACCESS EXCLUSIVE MODE')
        m = lg(url, metric="drained", statement_timeout=0.5)
    assert m.verdict is Verdict.ERROR
    assert m.explanation.startswith('query on "public"."Job" was cancelled by statement_timeout')
    assert '"Job_status_active_idx"' in m.explanation


def test_wrong_mapping_is_an_error_naming_the_setting(scenario: Any) -> None:
    url, _, _ = scenario
    m = lg(url, metric="stale_running", legacy=LegacySettings(started_column="started_at"))
    assert m.verdict is Verdict.ERROR
    assert m.explanation.startswith(
        'column "started_at" does not exist for settings.legacy.started_column in "public"."Job";'
        " its columns are:"
    )
    assert '"startedAt"' in m.explanation and m.explanation.endswith("fix settings.legacy.started_column")
    missing = lg(url, metric="drained", legacy=LegacySettings(table="jobs"))
    assert (
        missing.verdict is Verdict.ERROR
        and 'legacy table "public"."jobs" does not exist' in missing.explanation
    )
    broken = lg(url, metric="counts", filter='"nope" = 1')
    assert broken.verdict is Verdict.ERROR and 'column "nope" does not exist' in broken.explanation


def test_unreachable_database(scenario: Any) -> None:
    url, _, _ = scenario
    m = lg(url, metric="drained", url=closed_port_url())
    assert m.verdict is Verdict.ERROR and "connection refused" in m.explanation


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="status must list groups"):
        LegacyParams(status=("queued",))  # type: ignore[arg-type]  # the point: a status the type refuses
    with pytest.raises(ValueError, match="takes no max/min"):
        LegacyParams(metric="drained", max=0)
    with pytest.raises(ValueError, match="percentile"):
        LegacyParams(metric="processing_time", percentile=0)
    assert LegacyParams(metric="created_since").effective_max == 0
    with pytest.raises(ValueError, match="needs a queue"):
        WorkParams()
    with pytest.raises(ValueError, match="at least 1"):
        WorkParams(queue="q", min_jobs=0)


def test_the_suggested_indexes_are_the_ones_the_checks_use(pg_url: str) -> None:
    app = LegacyApp(pg_url)
    app.install()
    app.close()
    t0 = dt.datetime.now(dt.UTC)
    execute(  # 100,000 rows, 0.1% PENDING and 0.1% RUNNING, one created per second before t0
        pg_url,
        'INSERT INTO "public"."Job" ("id", "status", "evaluationId", "createdAt", "updatedAt", "startedAt",'
        " \"completedAt\") SELECT 'j' || g, CASE g %% 1000 WHEN 0 THEN 'PENDING'::\"JobStatus\" WHEN 1 THEN"
        " 'RUNNING' ELSE 'COMPLETED' END, 'e' || g, t, t, t, t + interval '5 seconds'"
        " FROM generate_series(1, 100000) g,"
        " LATERAL (SELECT (%s::timestamptz AT TIME ZONE 'UTC') - g * interval '1 second') x(t)",
        (t0,),
    )
    execute(pg_url, 'ANALYZE "public"."Job"')
    metrics = ("drained", "stale_running", "created_since", "error_rate", "processing_time")
    entered = t0 - dt.timedelta(seconds=H + 0.5)  # rows 1 to 3600 were created since
    kw: dict[str, Any] = {
        "scan_limit_rows": 50_000,
        "entered": entered,
        "window": 2 * 86400,
        "since_stage": True,
    }
    statements = set()
    for metric in metrics:
        m = lg(pg_url, metric=metric, **kw)
        assert m.verdict is Verdict.ERROR, metric
        statements.add(m.explanation.split("create the index: ")[1].split(";")[0])
    assert len(statements) == 3
    for statement in statements:
        execute(pg_url, statement)
    execute(pg_url, 'ANALYZE "public"."Job"')
    results = {metric: lg(pg_url, metric=metric, **kw) for metric in metrics}
    assert results["drained"].value == 200  # 100 PENDING + 100 RUNNING
    assert results["stale_running"].value == 98  # RUNNING rows 1 and 1001 started less than 30m ago
    assert results["created_since"].value == 3600
    # completed since the stage: rows 1 to 3605 (completed 5 s after creation) less 3 PENDING and 4 RUNNING
    assert results["error_rate"].inputs["completed"] == 3598 and results["error_rate"].value == 0
    assert results["processing_time"].value == pytest.approx(5.0)
    scans: dict[str, int] = {}
    for _ in range(50):  # statistics reach pg_stat_user_indexes shortly after the sessions end
        scans = dict(
            execute(pg_url, "SELECT indexrelname, idx_scan FROM pg_stat_user_indexes WHERE relname = 'Job'")
        )
        if all(
            scans.get(n, 0) > 0 for n in ("Job_status_active_idx", "Job_createdAt_idx", "Job_completedAt_idx")
        ):
            break
        time.sleep(0.2)
    assert scans["Job_status_active_idx"] >= 2 and scans["Job_createdAt_idx"] >= 1
    assert scans["Job_completedAt_idx"] >= 2
