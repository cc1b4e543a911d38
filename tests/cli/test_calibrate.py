"""`migrate calibrate` on real PostgreSQL: the shipped runbook against a legacy "Job" table holding a week of
known history, the suggested numbers against an independent computation (scipy), `--write` round trip
(the diff, the file re-loaded by the real loader, comments kept, a second run suggests nothing), and bad
input (exit 2 / 5 naming the fix).

Known history (rows written with SQL as the legacy app leaves them: COMPLETED or FAILED, startedAt,
completedAt): one job finished every 15 minutes, row i (1..800) at now - 15i min + 7 min, so the last 7 days
hold rows 1..672: 4 an hour, every 112th failed -> 6 failed of 672 (0.89%); run times 20 + (7i mod 41) s."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from scipy.special import betaln  # type: ignore[import-untyped]
from scipy.stats import mannwhitneyu, norm  # type: ignore[import-untyped]

from runbook.spec import load_runbook
from tests.cli.conftest import Outcome
from tests.integration.checks_pg.legacy_app import DDL

ROWS = range(1, 801)
IN_WINDOW = [i for i in ROWS if i * 15 - 7 < 7 * 24 * 60]
FAILED = [i for i in IN_WINDOW if i % 112 == 0]
RUN_TIMES = [20.0 + (7 * i % 41) for i in IN_WINDOW if i % 112]
SHIPPED = Path(__file__).parents[2] / "runbook" / "data" / "stages.yaml"


def finished_jobs(
    conn: psycopg.Connection[Any], n: int, *, every_minutes: int, offset_minutes: int, fail_every: int
) -> None:
    """Legacy rows 1..n finished at now - (every * i - offset) minutes (UTC), every `fail_every`th failed,
    run times 20 + (7i mod 41) s."""
    conn.execute(
        """INSERT INTO "Job" ("id", "status", "attempts", "startedAt", "completedAt", "createdAt",
             "updatedAt", "evaluationId")
           SELECT 'job-' || i,
             (CASE WHEN i %% %(fail)s = 0 THEN 'FAILED' ELSE 'COMPLETED' END)::"JobStatus", 1,
             t - (20 + (7 * i %% 41)) * interval '1 second', t, t - interval '1 hour', t, 'eval-' || i
           FROM generate_series(1, %(n)s) i, LATERAL (SELECT (now() AT TIME ZONE 'UTC')
             - (%(every)s * i - %(offset)s) * interval '1 minute' AS t) AS x""",
        {"n": n, "every": every_minutes, "offset": offset_minutes, "fail": fail_every},
    )


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str) -> Path:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(DDL)
        finished_jobs(conn, 800, every_minutes=15, offset_minutes=7, fail_every=112)
        conn.execute(
            """INSERT INTO "Job" ("id", "updatedAt", "evaluationId") VALUES ('waiting', now(), 'e')"""
        )
    shutil.copy(SHIPPED, tmp_path / "stages.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    for name in (
        "MIN_JOBS_FOR_RATES",
        "MIN_EVALUATION_JOBS",
        "MIN_IMPORT_JOBS",
        *(f"SOAK_INCREMENT_{i}" for i in range(1, 5)),
        "MAX_EVALUATION_ERROR_RATE",
        "RATE_CONFIDENCE",
        "RATE_WINDOW",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def percentile(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont: linear between the closest ranks."""
    s, k = sorted(values), q * (len(values) - 1)
    return s[math.floor(k)] + (s[math.ceil(k)] - s[math.floor(k)]) * (k - math.floor(k))


def jobs_to_pass(rate: float, limit: float, confidence: float) -> int:
    """Independently: the fewest jobs, failing at `rate`, after which Robbins' beta-binomial mixture with a
    Beta(20 limit, 20 (1 - limit)) prior reaches 1 / (1 - confidence) at `limit` (scipy's betaln)."""
    a, b = 20 * limit, 20 * (1 - limit)
    for n in range(1, 100_000):
        x = rate * n
        log_m = betaln(a + x, b + n - x) - betaln(a, b) - x * math.log(limit) - (n - x) * math.log1p(-limit)
        if log_m >= math.log(1 / (1 - confidence)):
            return n
    raise AssertionError("never decided")


def run_times_needed(slowdown: float, alpha: float) -> int:
    """Independently: pg-boss run times needed to show a `slowdown` of the legacy ones at `alpha`."""
    effect = float(mannwhitneyu([x * slowdown for x in RUN_TIMES], RUN_TIMES).statistic) / len(RUN_TIMES) ** 2
    z, m = float(norm.ppf(1 - alpha)), len(RUN_TIMES)
    return next(n for n in range(1, 10_000) if (effect - 0.5) * math.sqrt(12 * n * m / (n + m + 1)) >= z)


def test_suggests_min_jobs_windows_and_soaks_from_the_legacy_history(
    history: Path, migrate: Callable[..., Outcome]
) -> None:
    assert (len(IN_WINDOW), len(FAILED)) == (672, 6)
    r = migrate("calibrate", "-o", "json")
    assert r.code == 0, r.text
    data = json.loads(r.out)
    assert data["window"] == "7d" and not data["written"] and data["diff"] is None
    (h,) = data["history"]
    assert (h["source"], h["completed"], h["failed"], h["per_hour"]) == ("legacy", 666, 6, 4.0)
    assert h["p50_seconds"] == statistics.median(RUN_TIMES)
    assert h["p95_seconds"] == pytest.approx(percentile(RUN_TIMES, 0.95))
    n = jobs_to_pass(6 / 672, 0.05, 0.95)
    hours = math.ceil(n / 4)
    got = {(s["stage"], s["check"], s["key"]): s for s in data["suggestions"]}
    # the shipped rate checks have confidence over a 30d window: no min_jobs and no window to suggest; the
    # jobs that decide them set the work minimums and soaks of the stages they judge
    assert not [s for s in data["suggestions"] if s["check"] and "error-rate" in s["check"]], got
    said = "legacy jobs (every row: no type column) fail at 0.89% (6 of 672 over 7d)"
    for where in (
        "increment-1 import-error-rate",
        "increment-3 import-error-rate",
        "increment-3 evaluation-error-rate",
        "increment-4 evaluations-healthy",
        "increment-4 import-error-rate",
        "increment-4 evaluation-error-rate",
    ):
        assert (
            f"{where}: {said}; at that rate its 5% limit is decided at 95% confidence after about {n} jobs: "
            "inconclusive (holding advance) until then, no min_jobs needed" in data["notes"]
        )
    work = got[("increment-3", "evaluations-on-pgboss", "min_jobs")]
    assert (work["current"], work["value"]) == ("50", str(n))
    assert work["reason"] == (
        f"the soak's work minimum holds the {n} evaluation jobs that evaluation-error-rate needs to decide"
    )
    assert got[("increment-1", "imports-on-pgboss", "min_jobs")]["value"] == str(n)
    soak = got[("increment-3", None, "soak.duration")]
    assert (soak["current"], soak["value"]) == ("1d", f"{hours}h")
    assert got[("increment-1", None, "soak.duration")]["value"] == f"{hours}h"
    assert got[("increment-4", None, "soak")]["value"] == f"{hours}h"
    # increment-3's preflight judges increment-2 over its whole stage: increment-2's soak must hold the jobs
    before = got[("increment-2", None, "soak")]
    assert (before["current"], before["value"]) == ("1d", f"{hours}h")
    assert before["reason"].startswith(f"{n} import-article jobs (increment-3's preflight import-error-rate)")
    assert ("increment-2", "import-error-rate", "min_jobs") not in got  # max 0
    assert (
        "increment-2 import-error-rate: max 0: nothing to calibrate (every failure counts)" in data["notes"]
    )
    needed = run_times_needed(1.25, 0.01)
    assert (
        f"increment-3 evaluation-p95-vs-legacy: pgboss-evaluation-p95 min_jobs 50 already covers the "
        f"{needed} run times it needs" in data["notes"]
    )
    text = migrate("calibrate")
    assert text.code == 0
    assert f"increment-3 evaluations-on-pgboss  min_jobs: 50 -> {n}" in text.out
    assert "Read-only: `migrate calibrate --write` shows these as a diff" in text.out


def test_write_round_trip_keeps_comments_and_validates(
    history: Path, migrate: Callable[..., Outcome]
) -> None:
    before = (history / "stages.yaml").read_text()
    asked = migrate("calibrate", "--write")  # no terminal, no --yes: shown, not written
    assert asked.code == 1, asked.text
    assert "Not written: run `migrate calibrate --write --yes`" in asked.out
    assert "+          min_jobs: ${MIN_EVALUATION_JOBS:-" in asked.out
    assert (history / "stages.yaml").read_text() == before
    r = migrate("calibrate", "--write", "--yes")
    assert r.code == 0, r.text
    assert "Written to stages.yaml (re-loaded and valid before writing)." in r.out
    after = (history / "stages.yaml").read_text()
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert comments == [line for line in after.splitlines() if line.lstrip().startswith("#")]
    n = jobs_to_pass(6 / 672, 0.05, 0.95)
    rb = load_runbook(history / "stages.yaml", env={"DATABASE_URL": "postgresql://x/y"})
    inc3 = next(s for s in rb.stages if s.id == "increment-3")
    check = next(c for c in inc3.monitor if c.name == "evaluation-error-rate")
    assert (check.params.min_jobs, check.params.window, check.params.confidence) == (1, 30 * 86400, 0.95)
    assert inc3.soak.duration == math.ceil(n / 4) * 3600
    assert inc3.soak.work[0].params.min_jobs == n
    assert (
        "min_jobs: ${MIN_EVALUATION_JOBS:-" + str(n) + "}" in after
    )  # the variable stays, its default changes
    again = migrate("calibrate")
    assert again.code == 0
    assert "No changes suggested: the runbook's numbers already fit the history." in again.out


def test_bad_input_names_the_fix(history: Path, migrate: Callable[..., Outcome], pg_url: str) -> None:
    r = migrate("calibrate", "--window", "soon")
    assert r.code == 2 and "--window" in r.err
    r = migrate("calibrate", env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/app"})
    assert r.code == 5
    assert "could not connect to the legacy table's database" in r.err
    assert "settings.legacy.url or settings.database.url" in r.err
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('ALTER TABLE "Job" RENAME TO "OldJob"')
    r = migrate("calibrate")
    assert r.code == 2
    assert (
        'could not read the history of the legacy table: legacy table "public"."Job" does not exist' in r.err
    )
    assert "fix settings.legacy.schema and settings.legacy.table" in r.err


TIGHT = """\
version: 1
name: tight
settings:
  database: {url: "${DATABASE_URL}"}
flags: {A: false}
stages:
  - id: one
    set: {A: true}
    monitor:
      - name: tight-rate
        kind: legacy
        metric: error_rate
        window: 1d  # a day
        max: 0.005
      - {name: flow-rate, kind: legacy, metric: error_rate, window: 1d, max: 0.05}
"""


def test_a_limit_tighter_than_the_legacy_rate_is_raised_and_flow_style_is_left_to_hand(
    history: Path, migrate: Callable[..., Outcome]
) -> None:
    (history / "stages.yaml").write_text(TIGHT)
    r = migrate("calibrate", "--write", "--yes", "-o", "json")
    assert r.code == 0, r.text
    assert "@@" not in r.err  # the diff is in the JSON only, not printed again on stderr
    data = json.loads(r.out)
    got = {(s["check"], s["key"]): s for s in data["suggestions"]}
    raised = got[("tight-rate", "max")]
    assert (raised["current"], raised["value"]) == ("0.005", "0.02")  # twice 0.89%, rounded up
    assert "at or above max 0.005: a stage as healthy as that would fail" in raised["reason"]
    n = jobs_to_pass(6 / 672, 0.02, 0.95)
    assert got[("tight-rate", "min_jobs")]["value"] == str(n)
    assert got[("flow-rate", "min_jobs")]["value"] == str(jobs_to_pass(6 / 672, 0.05, 0.95))
    assert any(
        note.startswith("one flow-rate min_jobs: not written (") and "flow style" in note
        for note in data["notes"]
    )
    rb = load_runbook(history / "stages.yaml", env={"DATABASE_URL": "postgresql://x/y"})
    tight, flow = rb.stages[0].monitor
    assert (tight.params.max, tight.params.min_jobs) == (0.02, n)
    assert flow.params.min_jobs == 1  # left as it was
    days = math.ceil(n / 4 / 24)  # n jobs at 4 an hour, rounded up to days beyond two days
    assert f"        window: {days}d  # a day\n" in (history / "stages.yaml").read_text()  # its comment kept


def test_write_asks_and_refuses_an_edit_that_does_not_validate(
    history: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    from runbook.commands import calibrate as command
    from runbook.errors import ConfigError
    from runbook.session import Session

    path = history / "stages.yaml"
    before = path.read_text()
    questions: list[str] = []
    shown: list[str] = []

    def answer(question: str) -> bool:
        questions.append(question)
        return True

    with Session.open(path, env={"DATABASE_URL": pg_url}, confirm=answer, progress=shown.append) as session:
        result = command.calibrate(session, path, write=True)
    # the question shows the diff first; nothing else prints it (the result, on stdout, holds it once)
    assert result.written and questions == [f"{result.diff}\nWrite these changes to {path}?"]
    assert result.diff is not None and result.diff.startswith(f"--- {path}") and shown == []
    assert path.read_text() != before
    # an edit the loader refuses is never written (here the editor is made to break the file)
    path.write_text(before)
    monkeypatch.setattr(command, "set_key", lambda text, *a: text + "\nstages: [\n")
    refused = r"the edited runbook does not validate, so .* was not written"
    with (
        Session.open(path, env={"DATABASE_URL": pg_url}, confirm=answer) as session,
        pytest.raises(ConfigError, match=refused),
    ):
        command.calibrate(session, path, write=True, yes=True)
    assert path.read_text() == before
    assert not list(history.glob(".calibrate-*"))  # no trial copy is made (the edit is loaded in memory)


def test_a_large_table_without_an_index_needs_allow_scan(
    history: Path, migrate: Callable[..., Outcome], pg_url: str
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        # the planner's estimate as for a table of 5 million rows (what the guard reads), set as a superuser
        conn.execute('UPDATE pg_class SET reltuples = 5e6 WHERE oid = \'"public"."Job"\'::regclass')
    r = migrate("calibrate")
    assert r.code == 2
    assert (
        'holds about 5,000,000 rows (above scan_limit_rows 1,000,000) and no index starts with "completedAt"'
        in r.err
    )
    assert 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Job_completedAt_idx"' in r.err
    assert "allow_scan: true on this check" not in r.err
    assert "pass --allow-scan to read the whole table this once" in r.err
    assert migrate("calibrate", "--allow-scan").code == 0


MAPPED = """\
version: 1
name: mapped
settings:
  database: {url: "${DATABASE_URL}"}
  legacy: {type_column: kind}
  transfer:
    queues: {render: render.pdf}
flags: {A: false}
stages:
  - id: one
    set: {A: true}
    monitor:
      - name: render-rate
        kind: pgboss
        metric: error_rate
        queue: render.pdf
        window: 1d
        max: 0.05
      - name: render-vs-legacy
        kind: compare
        max: 1.25
        test: mann-whitney
        a: {name: pg, kind: pgboss, metric: run_time, queue: render.pdf, percentile: 95, window: 1d}
        b: {name: legacy, kind: legacy, metric: processing_time, type: render, percentile: 95, window: 7d}
      - name: broken-rate
        kind: legacy
        metric: error_rate
        type: broken
        window: 7d
        max: 0.05
      - name: flaky-rate
        kind: legacy
        metric: error_rate
        type: flaky
        window: 7d
        max: 0.05
"""


def test_a_queue_stands_for_the_legacy_type_the_mapping_sends_there_and_limits_stay_sane(
    history: Path, migrate: Callable[..., Outcome], pg_url: str
) -> None:
    """The queue render.pdf is fed by legacy type `render` (settings.transfer.queues; the compare's own b
    side says so too): its history is that type's, not a type named like the queue (which has none). A type
    failing 100% gets no limit suggested (a limit above it would accept a broken queue); one failing 40%
    gets 50%, said as the cap it is, not as "twice the rate"."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("""ALTER TABLE "Job" ADD COLUMN "kind" text NOT NULL DEFAULT 'render'""")
        conn.execute(
            """INSERT INTO "Job" ("id", "status", "attempts", "startedAt", "completedAt", "createdAt",
                 "updatedAt", "evaluationId", "kind")
               SELECT 'x-' || k || i, (CASE WHEN k = 'broken' OR i % 5 < 2 THEN 'FAILED' ELSE 'COMPLETED' END)
                 ::"JobStatus", 1, t - interval '30 s', t, t - interval '1 hour', t, 'e', k
               FROM unnest(ARRAY['broken', 'flaky']) k, generate_series(1, 10) i,
                 LATERAL (SELECT (now() AT TIME ZONE 'UTC') - i * interval '1 hour' AS t) AS x"""
        )
    (history / "stages.yaml").write_text(MAPPED)
    r = migrate("calibrate", "-o", "json")
    assert r.code == 0, r.text
    data = json.loads(r.out)
    legacy = {h["name"]: h for h in data["history"] if h["source"] == "legacy"}
    assert (legacy["render"]["completed"], legacy["render"]["failed"]) == (666, 6)
    assert "render.pdf" not in legacy
    assert not [n for n in data["notes"] if "no baseline" in n], data["notes"]
    needed = run_times_needed(1.25, 0.01)
    pg = next(s for s in data["suggestions"] if s["check"] == "pg" and s["key"] == "min_jobs")
    assert pg["reason"].startswith("legacy render run times p50 40s, p95 58s (666 latest)")
    assert f"shows after about {needed} run times" in pg["reason"]
    got = {(s["check"], s["key"]): s for s in data["suggestions"]}
    assert ("broken-rate", "max") not in got
    assert any(
        n.startswith("one broken-rate: legacy broken fail at 100% (10 of 10 over 7d)")
        and "look at those failures" in n
        for n in data["notes"]
    ), data["notes"]
    flaky = got[("flaky-rate", "max")]
    assert (flaky["current"], flaky["value"]) == ("0.05", "0.5")
    assert "50%, the highest limit it suggests (twice the rate would be 80%)" in flaky["reason"]


SPARSE = Path(__file__).parents[1] / "data" / "runbooks" / "calibrate-quiet.yaml"


@pytest.fixture
def sparse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str) -> Path:
    """A quiet legacy table: one job an hour for 30 days (row i at now - i h + 30 min), every 60th failed:
    12 failed of 720 (1.67%), run times 20 + (7i mod 41) s."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(DDL)
        finished_jobs(conn, 720, every_minutes=60, offset_minutes=30, fail_every=60)
    shutil.copy(SPARSE, tmp_path / "stages.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    return tmp_path


def test_at_low_volume_no_duration_beyond_the_runbook_limit_is_suggested_and_the_rest_is_written(
    sparse: Path, migrate: Callable[..., Outcome]
) -> None:
    """At 1 job an hour a 2% limit against a 1.67% history takes about 22,000 jobs (some 916 days) to
    decide: more than any window the runbook accepts (365d). Its window (and the min_jobs it could never
    reach) is not suggested, and a note says why; the other check's raised max, its min_jobs and window are
    written, and the file stays valid (no temporary file named, exit 0)."""
    n_close = jobs_to_pass(12 / 720, 0.02, 0.95)
    assert n_close / 24 > 365
    n = jobs_to_pass(12 / 720, 0.05, 0.95)
    r = migrate("calibrate", "--window", "30d", "--write", "--yes")
    assert r.code == 0, r.text
    assert ".calibrate-" not in r.text
    assert "1 job an hour" in r.out and "1 jobs" not in r.out
    assert (
        "one close-rate: legacy jobs (every row: no type column) fail at 1.67% (12 of 720 over 30d); "
        f"deciding its 2% limit at 95% confidence takes about {n_close} jobs, about 915d 19h at 1 job an "
        "hour: it cannot be decided within 365d at this volume. No window, min_jobs or soak is suggested for "
        "it (a runbook accepts at most 365d): keep the current values (its 1d window then judges about 24 "
        "jobs, too few to decide it at 95% confidence), raise max so fewer jobs decide it, or calibrate "
        "again once the volume grows" in " ".join(r.out.split())
    ), r.out
    assert "Written to stages.yaml" in r.out
    md = migrate("calibrate", "--window", "30d", "-o", "markdown")  # after writing: only the note is left
    assert md.code == 0, md.text
    assert "No changes suggested" in md.out and "- one close-rate: " in md.out
    assert "it cannot be decided within 365d at this volume" in md.out
    rb = load_runbook(sparse / "stages.yaml", env={"DATABASE_URL": "postgresql://x/y"})
    (stage,) = rb.stages
    raised, close = stage.monitor
    assert (raised.params.max, raised.params.min_jobs) == (0.05, n)
    assert raised.params.window == math.ceil(n / 24) * 86400
    assert (close.params.max, close.params.min_jobs, close.params.window) == (0.02, 1, 86400)
    assert stage.soak.duration == 3600  # a legacy check on every row names no queue: no soak to suggest
    assert all(s <= 365 * 86400 for s in (stage.soak.duration, *(c.params.window for c in stage.monitor)))


def test_an_edit_that_does_not_validate_names_the_runbook_file_and_writes_nothing(
    sparse: Path, migrate: Callable[..., Outcome], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edited text is validated under the runbook's own name (the -f path), never a temporary file's."""
    from runbook.commands import calibrate as command

    (sparse / "rb").mkdir()
    path = sparse / "rb" / "quiet.yaml"
    (sparse / "stages.yaml").rename(path)
    before = path.read_text()
    monkeypatch.setattr(command, "set_key", lambda text, *a: text.replace("max: 0.01", "max: [0.05"))
    r = migrate("-f", "rb/quiet.yaml", "calibrate", "--window", "30d", "--write", "--yes")
    assert r.code == 2, r.text
    assert (
        "the edited runbook does not validate, so rb/quiet.yaml was not written (line numbers as edited): "
        "rb/quiet.yaml:" in r.err
    ), r.err
    assert ".calibrate-" not in r.text and "tmp" not in r.err
    assert path.read_text() == before
    assert sorted(p.name for p in (sparse / "rb").iterdir()) == ["quiet.yaml"]
