"""The prometheus kind against an HTTP endpoint speaking the Prometheus query API (Prometheus itself is
not installable here; the kind only uses its HTTP API)."""

from __future__ import annotations

import json

import pytest

from runbook.checkrun import run_check
from runbook.checks.base import Verdict
from runbook.checks.prometheus import PrometheusParams

from .conftest import TOKEN, App, ContextFactory, spec


def vector(*values: str) -> dict[str, object]:
    return {
        "resultType": "vector",
        "result": [
            {"metric": {"instance": f"w{i}"}, "value": [1764400000.0, v]} for i, v in enumerate(values)
        ],
    }


@pytest.fixture
def prom(app: App) -> App:
    app.state.prometheus = {
        "worker_rss": vector("52000000"),
        "per_worker_rss": vector("30000000", "45000000", "NaN"),
        "error_ratio": {"resultType": "scalar", "result": [1764400000.0, "0.02"]},
        "nothing": vector(),
        "labels": {"resultType": "string", "result": [1764400000.0, "x"]},
    }
    return app


def test_single_series_condition(prom: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("prometheus", url=prom.url, query="worker_rss", expect=("value < 100MB",)), make_ctx())
    assert (m.verdict, m.value) == (Verdict.PASS, 52_000_000)
    assert m.explanation == "value = 52000000, < 100000000"
    assert m.inputs == {"url": prom.url, "query": "worker_rss", "expect": ["value < 100MB"], "series": 1}


@pytest.mark.parametrize(
    ("aggregate", "value"), [("max", 45e6), ("min", 30e6), ("sum", 75e6), ("avg", 37.5e6)]
)
def test_aggregates_drop_nan(prom: App, make_ctx: ContextFactory, aggregate: str, value: float) -> None:
    m = run_check(spec("prometheus", url=prom.url, query="per_worker_rss", aggregate=aggregate), make_ctx())
    assert (m.verdict, m.value, m.inputs["series"]) == (Verdict.PASS, value, 2)
    assert m.explanation.startswith(f"{aggregate} of 2 series: ")


def test_single_with_several_series_is_an_error(prom: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("prometheus", url=prom.url, query="per_worker_rss", aggregate="single"), make_ctx())
    assert m.verdict is Verdict.ERROR
    assert "returned 2 series" in m.explanation


def test_scalar_failing_condition(prom: App, make_ctx: ContextFactory) -> None:
    m = run_check(
        spec("prometheus", url=prom.url, query="error_ratio", expect=("value <= 0.01",)), make_ctx()
    )
    assert (m.verdict, m.value, m.explanation) == (Verdict.FAIL, 0.02, "value = 0.02, expected <= 0.01")


def test_empty_result_is_inconclusive(prom: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("prometheus", url=prom.url, query="nothing", expect=("value < 1",)), make_ctx())
    assert (m.verdict, m.value, m.explanation) == (Verdict.INCONCLUSIVE, None, "the query returned no data")


def test_rejected_query_is_an_error_with_prometheus_message(prom: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("prometheus", url=prom.url, query="rate(x[5"), make_ctx())
    assert m.verdict is Verdict.ERROR
    assert m.explanation == "Prometheus query failed: HTTP 400: unknown rate(x[5"
    m = run_check(spec("prometheus", url=prom.url, query="labels"), make_ctx())
    assert (m.verdict, "unsupported result type 'string'" in m.explanation) == (Verdict.ERROR, True)


def test_unreachable_is_an_error(refused_url: str, make_ctx: ContextFactory) -> None:
    m = run_check(spec("prometheus", url=refused_url, query="up"), make_ctx())
    assert (m.verdict, m.explanation) == (Verdict.ERROR, "Prometheus unreachable: connection refused")


def test_header_values_stay_secret(prom: App, make_ctx: ContextFactory) -> None:
    check = spec("prometheus", url=prom.url, query="worker_rss", headers={"Authorization": f"Bearer {TOKEN}"})
    m = run_check(check, make_ctx())
    assert m.verdict is Verdict.PASS
    assert TOKEN not in json.dumps(m.to_json())


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="url: required"):
        PrometheusParams(query="up")
    with pytest.raises(ValueError, match="query: required"):
        PrometheusParams(url="http://p:9090")
