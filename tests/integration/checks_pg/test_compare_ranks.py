"""`compare` with `test: mann-whitney`: pg-boss run times (real pg-boss 10 and 12) against legacy processing
times (the real Prisma "Job" table), judged by the ratio of the p95s AND a rank test of the run times.

pg-boss's q-main holds 4 completed jobs run by real pg-boss (scenario.mjs outcomes); to get 30, the test
copies one of them 26 times with SQL (new ids, every column as pg-boss wrote it) and sets exact run times,
and says so below. Legacy rows are written through the legacy app's own statements (LegacyApp)."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from scipy.stats import mannwhitneyu, norm  # type: ignore[import-untyped]

from runbook.checkrun import CheckRunContext, run_check
from runbook.checks.base import Verdict
from runbook.checks.compare import CompareParams
from runbook.model import CheckSpec, Limits
from tests.integration.checks_pg.conftest import Template, execute, runbook_for
from tests.integration.checks_pg.legacy_app import LegacyApp

pytestmark = pytest.mark.pgboss

LEGACY = [10.0 + i for i in range(40)]  # legacy run times: 10 .. 49 s
FAST = [10.0 + 1.3 * i for i in range(30)]  # pg-boss comparable: 10 .. 47.7 s
SLOW = [20.0 + 2.0 * i for i in range(30)]  # pg-boss much slower: 20 .. 78 s


def side(kind: str, name: str, **params: Any) -> CheckSpec:
    from runbook.checks import get_kind

    return CheckSpec(name=name, kind=kind, params=get_kind(kind).params(**params), limits=Limits(), timeout=5)


def pgboss_side(**kw: Any) -> CheckSpec:
    return side("pgboss", "pgboss-p95", **{"metric": "run_time", "queue": "q-main", "window": 7200, **kw})


def legacy_side(**kw: Any) -> CheckSpec:
    return side("legacy", "legacy-p95", **{"metric": "processing_time", "window": 86400, **kw})


@pytest.fixture(params=["10", "12"])
def db(request: pytest.FixtureRequest, templates: dict[str, Template], copy_db: Any) -> tuple[str, Template]:
    template = templates[request.param]
    url = copy_db(template)
    app = LegacyApp(url)
    app.install()
    for i, seconds in enumerate(LEGACY):
        app.run(f"eval-{i}", created=-3600 - i * 60, started=-3000 - i * 60, seconds=seconds)
    app.close()
    return url, template


def set_run_times(url: str, t: Template, times: list[float]) -> None:
    """Simulated: q-main's completed jobs get these run times, ending in the last hour (copies of a real
    completed job make up the number)."""
    completed = [*t.outcome["main"]["ok"], *t.outcome["main"]["flaky"]]
    execute(  # the copies of an earlier call go
        url,
        "DELETE FROM pgboss.job WHERE name = 'q-main' AND state = 'completed' AND NOT id = ANY(%s::uuid[])",
        (completed,),
    )
    cols = [
        r[0]
        for r in execute(
            url,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'pgboss' AND table_name = 'job' ORDER BY ordinal_position",
        )
    ]
    values = ", ".join("gen_random_uuid()" if c == "id" else c for c in cols)
    for _ in range(len(times) - len(completed)):
        row = execute(
            url,
            f"INSERT INTO pgboss.job ({', '.join(cols)}) SELECT {values} FROM pgboss.job WHERE id = %s"
            " RETURNING id",
            (completed[0],),
        )
        completed.append(str(row[0][0]))
    for i, (job, run) in enumerate(zip(completed, times, strict=True)):
        execute(
            url,
            "UPDATE pgboss.job SET started_on = now() - interval '50 minutes' + %s * interval '1 second',"
            " completed_on = now() - interval '50 minutes' + %s * interval '1 second' WHERE id = %s",
            (i, i + run, job),
        )


def compare(url: str, **params: Any) -> Any:
    a = params.pop("a", None) or pgboss_side()
    b = params.pop("b", None) or legacy_side()
    spec = CheckSpec(
        name="p95-vs-legacy",
        kind="compare",
        params=CompareParams(a=a, b=b, **params),
        limits=Limits(),
        timeout=20,
    )
    with CheckRunContext(runbook_for(url), stage_id="s1") as ctx:
        return run_check(spec, ctx)


def p95(values: list[float]) -> float:
    s = sorted(values)
    k = 0.95 * (len(s) - 1)
    return s[math.floor(k)] + (s[math.ceil(k)] - s[math.floor(k)]) * (k - math.floor(k))


def test_a_significant_and_material_regression_fails(db: tuple[str, Template]) -> None:
    url, t = db
    set_run_times(url, t, SLOW)
    m = compare(url, max=1.2, test="mann-whitney", alpha=0.01)
    expected = mannwhitneyu(SLOW, LEGACY, alternative="greater")
    assert m.verdict is Verdict.FAIL
    assert m.value == pytest.approx(round(p95(SLOW) / p95(LEGACY), 4))
    assert m.inputs["p_slower"] == pytest.approx(float(expected.pvalue), rel=1e-6)
    assert m.inputs["effect"] == pytest.approx(float(expected.statistic) / (30 * 40), abs=1e-4)
    assert (m.inputs["samples_a"], m.inputs["samples_b"], m.inputs["exact"]) == (30, 40, False)
    assert m.inputs["median_ratio"] == pytest.approx(49.0 / 29.5, abs=1e-4)
    assert "above the max 1.2 and significant: Mann-Whitney p(slower) = " in m.explanation
    assert "< alpha 0.01 (pgboss-p95 slower in " in m.explanation


def test_comparable_run_times_pass_and_the_old_rule_is_unchanged(db: tuple[str, Template]) -> None:
    url, t = db
    set_run_times(url, t, FAST)
    ratio = round(p95(FAST) / p95(LEGACY), 4)
    m = compare(url, max=1.2, test="mann-whitney")
    assert (m.verdict, m.value) == (Verdict.PASS, ratio)
    assert m.inputs["alpha"] == 0.01  # the default
    assert m.inputs["p_slower"] == pytest.approx(
        float(mannwhitneyu(FAST, LEGACY, alternative="greater").pvalue)
    )
    plain = compare(url, max=0.9)  # without test: the ratio alone, as before
    assert (plain.verdict, plain.value) == (Verdict.FAIL, ratio)
    assert "test" not in plain.inputs and "p_slower" not in plain.inputs


def test_material_but_not_significant_is_inconclusive_and_says_how_many_more(
    db: tuple[str, Template],
) -> None:
    url, t = db
    # 12 pg-boss jobs somewhat slower than legacy and two very slow ones: the p95 ratio is material, the
    # ranks lean slower (2 of 3 pairs) but 12 jobs are not enough at alpha 0.01
    times = [20.0 + 3 * i for i in range(10)] + [80.0, 90.0]
    set_run_times(url, t, times)
    m = compare(url, max=1.2, test="mann-whitney", alpha=0.01)
    expected = mannwhitneyu(times, LEGACY, alternative="greater")
    assert m.verdict is Verdict.INCONCLUSIVE
    assert m.inputs["p_slower"] == pytest.approx(float(expected.pvalue)) and m.inputs["p_slower"] >= 0.01
    # independently: the fewest n_a with (effect - 0.5) * sqrt(12 n_a n_b / (n_a + n_b + 1)) >= z_0.99
    effect, z = float(expected.statistic) / (12 * 40), float(norm.ppf(0.99))
    n_a = next(n for n in range(12, 10_000) if (effect - 0.5) * math.sqrt(12 * n * 40 / (n + 41)) >= z)
    assert m.inputs["samples_to_decide"] == n_a - 12 == 17
    assert "above the max 1.2 but not significant (Mann-Whitney p(slower) = 0.042 >= alpha 0.01): " in (
        m.explanation
    )
    assert "about 17 more run times of pgboss-p95 at this effect would decide it" in m.explanation
    assert "(pgboss-p95 slower in 66.7% of pairs, 12 vs 40 run times, medians x" in m.explanation
    # the same data as fast as legacy in the ranks: no number of jobs would show it slower
    same = [*LEGACY[:10], 80.0, 90.0]
    set_run_times(url, t, same)
    m = compare(url, max=1.2, test="mann-whitney", alpha=0.01)
    assert m.verdict is Verdict.INCONCLUSIVE and m.inputs["samples_to_decide"] is None
    assert m.inputs["samples_a"] == 12
    assert m.explanation.count("the ranks show pgboss-p95 no slower; more run times will tell") == 1


def test_too_few_run_times_to_test(db: tuple[str, Template]) -> None:
    url, t = db
    set_run_times(url, t, SLOW[:4])
    few_legacy = legacy_side(window=3100)  # the 2 latest legacy rows: 4 vs 2 cannot reach p < 0.01
    m = compare(url, b=few_legacy, max=1.2, test="mann-whitney", alpha=0.01)
    n_b = m.inputs["samples_b"]
    assert 1 / math.comb(4 + n_b, 4) >= 0.01
    need = next(k for k in range(1, 100) if 1 / math.comb(k + n_b, k) < 0.01)
    assert m.verdict is Verdict.INCONCLUSIVE
    assert f"too few to test: 4 vs {n_b} run times cannot show a difference at alpha 0.01: " in m.explanation
    assert f"at least {need} run times of pgboss-p95" in m.explanation
    # within the bounds the ratio passes as without the test, saying the run times were too few to rank
    within = compare(url, b=few_legacy, max=100.0, test="mann-whitney", alpha=0.01)
    assert (within.verdict, within.value) == (Verdict.PASS, m.value)
    assert f"; too few to test: 4 vs {n_b} run times" in within.explanation


def test_max_samples_takes_the_latest(db: tuple[str, Template]) -> None:
    url, t = db
    set_run_times(url, t, SLOW)
    m = compare(url, max=1.2, test="mann-whitney", max_samples=10)
    assert (m.inputs["samples_a"], m.inputs["samples_b"]) == (10, 10)
    latest = SLOW[-10:]  # completed last
    newest_legacy = LEGACY[:10]  # legacy row i finished i minutes earlier than row 0
    expected = mannwhitneyu(latest, newest_legacy, alternative="greater")
    assert m.inputs["p_slower"] == pytest.approx(float(expected.pvalue))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"a": side("sql", "s", query="SELECT 1")},
            "a must be a pgboss run_time or a legacy processing_time check, not sql",
        ),
        (
            {"b": side("legacy", "l", metric="error_rate")},
            "b must be a pgboss run_time or a legacy processing_time check, not legacy error_rate",
        ),
        ({"alpha": 0.5}, "alpha must be above 0 and below 0.5 (e.g. 0.01), got 0.5"),
        ({"max_samples": 3}, "max_samples must be at least 10, got 3"),
        ({"max": None}, "needs a max (or a min) to decide against: add max: 1.2, say"),
    ],
)
def test_bad_test_params_name_the_fix(params: dict[str, Any], message: str) -> None:
    full = {"a": pgboss_side(), "b": legacy_side(), "test": "mann-whitney", **params}
    with pytest.raises(ValueError, match=re.escape(message)):
        CompareParams(**full)


def test_alpha_without_test_is_refused() -> None:
    with pytest.raises(ValueError, match="alpha applies with test: mann-whitney only"):
        CompareParams(a=pgboss_side(), b=legacy_side(), alpha=0.01)
