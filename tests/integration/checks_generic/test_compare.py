"""The compare kind: the ratio of two inline checks, here p95 run times from a real database."""

from __future__ import annotations

import psycopg
import pytest

from runbook.checkrun import run_check
from runbook.checks.base import Verdict
from runbook.checks.compare import CompareParams
from runbook.model import CheckSpec

from .conftest import ContextFactory, spec


@pytest.fixture
def runs_url(pg_url: str) -> str:
    """Run times (seconds) per system: legacy 1..10, pgboss 1..10 scaled by 1.1, slow 1..10 scaled by 2."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE runs (system text, seconds float8)")
        conn.execute(
            """INSERT INTO runs SELECT s, i * f FROM generate_series(1, 10) i,
               (VALUES ('legacy', 1.0), ('pgboss', 1.1), ('slow', 2.0), ('zero', 0.0)) v(s, f)"""
        )
    return pg_url


def p95(system: str) -> CheckSpec:
    query = (
        f"SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) FROM runs WHERE system = '{system}'"
    )
    return spec("sql", name=f"{system} p95", query=query)


def test_comparable_processing_time_passes(runs_url: str, make_ctx: ContextFactory) -> None:
    m = run_check(
        spec("compare", name="p95 vs legacy", a=p95("pgboss"), b=p95("legacy")), make_ctx(db_url=runs_url)
    )
    assert (m.verdict, m.value, m.unit) == (Verdict.PASS, 1.1, "ratio")
    assert m.explanation == "pgboss p95 / legacy p95 = 10.5 / 9.55 = 1.10, <= 1.2"
    assert m.inputs["a"] == {
        "check": "pgboss p95",
        "kind": "sql",
        "value": pytest.approx(10.505),
        "verdict": "pass",
    }
    assert m.check == "p95 vs legacy"


def test_slower_fails(runs_url: str, make_ctx: ContextFactory) -> None:
    m = run_check(spec("compare", a=p95("slow"), b=p95("legacy")), make_ctx(db_url=runs_url))
    assert (m.verdict, m.value) == (Verdict.FAIL, 2.0)
    assert m.explanation.endswith("= 2.00, above the max 1.2")
    m = run_check(
        spec("compare", a=p95("legacy"), b=p95("slow"), max=None, min=0.8), make_ctx(db_url=runs_url)
    )
    assert (m.verdict, m.value) == (Verdict.FAIL, 0.5)
    assert m.explanation.endswith("below the min 0.8")


def test_a_ratio_just_above_its_limit_never_reads_as_equal_to_it(
    runs_url: str, make_ctx: ContextFactory
) -> None:
    """Two decimals, more where they would hide the verdict: 1.004 above max 1.0 used to read '= 1.00, above
    the max 1.0', and 0.004 read '0.00'."""
    a = spec("sql", name="a", query="SELECT 1.004::float8")
    b = spec("sql", name="b", query="SELECT 1.0::float8")
    m = run_check(spec("compare", a=a, b=b, max=1.0), make_ctx(db_url=runs_url))
    assert (m.verdict, m.value) == (Verdict.FAIL, 1.004)
    assert m.explanation == "a / b = 1.004 / 1 = 1.004, above the max 1.0"
    tiny = spec("sql", name="tiny", query="SELECT 0.004::float8")
    m = run_check(spec("compare", a=tiny, b=b, max=1.0), make_ctx(db_url=runs_url))
    assert m.explanation == "tiny / b = 0.004 / 1 = 0.004, <= 1.0"


def test_inconclusive_and_error_propagate(runs_url: str, make_ctx: ContextFactory) -> None:
    ctx = make_ctx(db_url=runs_url)
    m = run_check(spec("compare", a=p95("pgboss"), b=p95("nothing-yet")), ctx)
    assert (m.verdict, m.value) == (Verdict.INCONCLUSIVE, None)  # percentile of no rows is NULL
    assert m.explanation == "nothing-yet p95 has no value yet (null): nothing to compare"
    empty = spec("sql", name="no row", query="SELECT seconds FROM runs WHERE false")
    m = run_check(spec("compare", a=empty, b=p95("legacy")), ctx)
    assert m.verdict is Verdict.INCONCLUSIVE
    assert m.explanation == "no row is inconclusive: the query returned no row"
    broken = spec("sql", name="broken", query="SELECT p95 FROM nowhere")
    m = run_check(spec("compare", a=p95("pgboss"), b=broken), ctx)
    assert m.verdict is Verdict.ERROR
    assert m.explanation == 'broken is error: query failed: relation "nowhere" does not exist'


def test_zero_baseline_is_inconclusive(runs_url: str, make_ctx: ContextFactory) -> None:
    m = run_check(spec("compare", a=p95("pgboss"), b=p95("zero")), make_ctx(db_url=runs_url))
    assert (m.verdict, m.explanation) == (Verdict.INCONCLUSIVE, "zero p95 is 0: nothing to compare with yet")


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="a and b: both required"):
        CompareParams(a=p95("x"))
    with pytest.raises(ValueError, match="above max"):
        CompareParams(a=p95("x"), b=p95("y"), min=2.0, max=1.0)
