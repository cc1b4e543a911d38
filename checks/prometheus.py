"""`prometheus`: an instant PromQL query (GET {url}/api/v1/query) and conditions on its value.

Several series are combined by `aggregate` (max by default; `single` insists on exactly one). An empty
result (or only NaN) is INCONCLUSIVE: nothing to judge yet. A query Prometheus rejects, a timeout or a
refused connection is ERROR; a condition that does not hold is FAIL.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from runbook.checks import expect as ex
from runbook.checks.base import CheckContext, CheckKind, Measurement, Verdict
from runbook.checks.http import failure_reason, request
from runbook.model import doc
from runbook.redact import redact_url

Aggregate = Literal["max", "min", "sum", "avg", "single"]


class PrometheusError(Exception):
    """Prometheus answered, but not with a usable result (bad query, wrong result type)."""


@dataclass(frozen=True)
class PrometheusParams:
    url: str = doc("Prometheus base URL, e.g. http://prometheus:9090 (often ${PROMETHEUS_URL})", "")
    query: str = doc('PromQL instant query, e.g. max(process_resident_memory_bytes{job="worker"})', "")
    expect: tuple[str, ...] = doc('conditions on the value: "value < 100MB"', ())
    aggregate: Aggregate = doc(
        "how several series combine: max, min, sum, avg, or single (exactly one)", "max"
    )
    headers: Mapping[str, str] = doc("headers (e.g. Authorization); values are secrets", factory=dict)

    def __post_init__(self) -> None:
        if not self.url:
            raise ValueError("url: required, the Prometheus base URL such as http://prometheus:9090")
        if not self.query.strip():
            raise ValueError('query: required, e.g. max(process_resident_memory_bytes{job="worker"})')
        ex.parse_all(self.expect)


def instant_query(
    ctx: CheckContext, url: str, query: str, headers: Mapping[str, str] | None = None
) -> list[tuple[dict[str, str], float]]:
    """Series (labels, value) of an instant query; NaN samples are dropped. Raises PrometheusError when
    Prometheus rejects the query, httpx errors when it cannot be reached."""
    full = url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    resp = request(ctx, full, headers=headers, accept=(200,))
    try:
        body = resp.json()
    except ValueError:
        raise PrometheusError(f"HTTP {resp.status_code}, and the body is not JSON") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise PrometheusError(f"HTTP {resp.status_code}: {error or 'not a Prometheus API answer'}")
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    series: list[tuple[dict[str, str], Any]]
    if kind == "scalar" and isinstance(result, list):
        series = [({}, result[1])]
    elif kind == "vector" and isinstance(result, list):
        series = [(item.get("metric") or {}, item["value"][1]) for item in result]
    else:
        raise PrometheusError(
            f"unsupported result type {kind!r}: write a query that returns an instant vector"
        )
    out = []
    for labels, raw in series:
        value = float(raw)
        if not math.isnan(value):
            out.append((labels, value))
    return out


def combine(values: list[float], aggregate: Aggregate) -> float:
    """One value from several series. Raises PrometheusError for `single` with more than one."""
    if aggregate == "single" and len(values) > 1:
        raise PrometheusError(f"the query returned {len(values)} series; aggregate it or use aggregate: max")
    if aggregate == "min":
        return min(values)
    if aggregate == "sum":
        return sum(values)
    if aggregate == "avg":
        return sum(values) / len(values)
    return max(values)


def measure(params: PrometheusParams, ctx: CheckContext) -> Measurement:
    """Run the query and judge its value."""
    import httpx  # on first use: loading a runbook imports every kind module

    inputs: dict[str, Any] = {"url": redact_url(params.url), "query": params.query}
    if params.expect:
        inputs["expect"] = list(params.expect)
    try:
        series = instant_query(ctx, params.url, params.query, params.headers)
        if not series:
            return Measurement(Verdict.INCONCLUSIVE, None, "the query returned no data", inputs)
        value = combine([v for _, v in series], params.aggregate)
    except PrometheusError as exc:
        return Measurement(Verdict.ERROR, None, f"Prometheus query failed: {exc}", inputs)
    except httpx.HTTPError as exc:
        return Measurement(Verdict.ERROR, None, f"Prometheus unreachable: {failure_reason(exc)}", inputs)
    inputs["series"] = len(series)
    value = int(value) if value.is_integer() else value
    how = f"{params.aggregate} of {len(series)} series: " if len(series) > 1 else ""
    failed: list[str] = []
    passed: list[str] = []
    for assertion in ex.parse_all(params.expect):
        ok, _, text = assertion.evaluate({"value": value})
        (passed if ok else failed).append(text)
    notes = "; ".join(failed or passed) or f"value = {ex.show(value)}"
    return Measurement(Verdict.FAIL if failed else Verdict.PASS, value, how + notes, inputs)


KIND = CheckKind(
    name="prometheus", params=PrometheusParams, measure=measure, summary="a PromQL query and a condition"
)
