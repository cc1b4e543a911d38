"""The memory kind: RSS of real child processes, a JSON field over HTTP, Prometheus, and growth."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from runbook.checkrun import run_check
from runbook.checks.base import Measurement, Sample, Verdict
from runbook.checks.memory import MemoryParams

from .conftest import HOLD, LEAK, App, ContextFactory, spec

MB = 1_000_000
T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def test_rss_of_a_pid(spawn: Callable[..., Any], make_ctx: ContextFactory) -> None:
    child = spawn(HOLD, 80 * MB)
    m = run_check(spec("memory", pid=child.pid, max="200MB"), make_ctx())
    assert m.verdict is Verdict.PASS
    assert 80 * MB <= m.value < 200 * MB
    assert m.unit == "bytes"
    assert m.explanation.startswith(f"RSS of process (pid {child.pid}): ")
    assert m.explanation.endswith("within max 200.0MB")
    m = run_check(spec("memory", pid=child.pid, max="50MB"), make_ctx())
    assert m.verdict is Verdict.FAIL
    assert m.explanation.endswith("above the max 50.0MB")
    assert m.inputs == {"pid": child.pid, "max": 50 * MB}


def test_pid_file(spawn: Callable[..., Any], make_ctx: ContextFactory, tmp_path: Path) -> None:
    child = spawn(HOLD, 10 * MB)
    pid_file = tmp_path / "worker.pid"
    pid_file.write_text(f"{child.pid}\n")
    m = run_check(spec("memory", pid_file=str(pid_file)), make_ctx())
    assert (m.verdict, m.value >= 10 * MB) == (Verdict.PASS, True)
    pid_file.write_text("garbage")
    m = run_check(spec("memory", pid_file=str(pid_file)), make_ctx())
    assert m.verdict is Verdict.ERROR
    assert "does not hold a pid" in m.explanation


def test_cmdline_sum_and_max(spawn: Callable[..., Any], make_ctx: ContextFactory) -> None:
    tag = f"worker-{uuid.uuid4().hex[:8]}"
    small, big = spawn(HOLD, 20 * MB, tag), spawn(HOLD, 60 * MB, tag)
    total = run_check(spec("memory", cmdline=tag), make_ctx())
    largest = run_check(spec("memory", cmdline=tag, aggregate="max"), make_ctx())
    assert total.verdict is largest.verdict is Verdict.PASS
    assert total.value >= 80 * MB
    assert 60 * MB <= largest.value < total.value
    assert total.explanation.startswith("RSS of sum of 2 processes (pid ")
    assert {str(small.pid), str(big.pid)} <= set(
        total.explanation.replace(",", " ").replace(")", " ").split()
    )


def test_no_matching_process_is_an_error(make_ctx: ContextFactory) -> None:
    m = run_check(spec("memory", cmdline=f"no-such-{uuid.uuid4().hex}"), make_ctx())
    assert m.verdict is Verdict.ERROR
    assert m.explanation.startswith("no running process matches /no-such-")


def test_http_field(app: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("memory", url="/api/health", max="100MB"), make_ctx(app.url))
    assert (m.verdict, m.value) == (Verdict.PASS, 52 * MB)
    assert m.explanation == f"memory.rss from {app.url}/api/health: 52.0MB, within max 100.0MB"
    app.state.health = {"memory": {"rss_mib": 120}}
    m = run_check(
        spec("memory", url="/api/health", field="memory.rss_mib", field_unit="1MiB", max="100MB"),
        make_ctx(app.url),
    )
    assert (m.verdict, m.value) == (Verdict.FAIL, 120 * 1024 * 1024)
    m = run_check(spec("memory", url="/api/health", max="100MB"), make_ctx(app.url))
    assert m.verdict is Verdict.ERROR
    assert 'no field "rss"' in m.explanation


def test_prometheus_source(app: App, make_ctx: ContextFactory) -> None:
    app.state.prometheus = {
        "rss": {"resultType": "vector", "result": [{"metric": {}, "value": [0, "7.5e7"]}]},
        "none": {"resultType": "vector", "result": []},
    }
    m = run_check(spec("memory", prometheus=app.url, query="rss", max="100MB"), make_ctx())
    assert (m.verdict, m.value) == (Verdict.PASS, 75 * MB)
    m = run_check(spec("memory", prometheus=app.url, query="none", max="100MB"), make_ctx())
    assert (m.verdict, m.explanation) == (Verdict.ERROR, "the Prometheus query returned no data")


def samples_every(minutes: int, values_mb: Sequence[float]) -> list[Sample]:
    n = len(values_mb)
    return [
        Sample(at=T0 - dt.timedelta(minutes=minutes * (n - i)), value=v * MB, verdict=Verdict.PASS)
        for i, v in enumerate(values_mb)
    ]


def growth_check(app: App, make_ctx: ContextFactory, history: list[Sample], **params: Any) -> Measurement:
    seen: list[str] = []

    def provider(check: str) -> Sequence[Sample]:
        seen.append(check)
        return history

    ctx = make_ctx(app.url, samples=provider, clock=lambda: T0)
    m = run_check(spec("memory", name="worker memory", url="/api/health", **params), ctx)
    assert seen == ["worker memory"]
    return m


def test_growth_is_inconclusive_until_enough_samples(app: App, make_ctx: ContextFactory) -> None:
    m = growth_check(app, make_ctx, samples_every(10, [50, 51]), growth_per_hour="5MB", min_samples=5)
    assert m.verdict is Verdict.INCONCLUSIVE
    assert m.explanation.endswith("growth not judged yet: 3 of 5 samples over 20m of 10m")
    m = growth_check(app, make_ctx, samples_every(1, [52] * 6), growth_per_hour="5MB", min_span="1h")
    assert m.verdict is Verdict.INCONCLUSIVE
    assert "7 of 5 samples over 6m of 1h" in m.explanation


def test_growth_fails_on_a_leak_and_passes_when_flat(app: App, make_ctx: ContextFactory) -> None:
    # 40 -> 52 MB over 2 hours: 6 MB/h
    leak = samples_every(20, [40, 42, 44, 46, 48, 50])
    m = growth_check(app, make_ctx, leak, growth_per_hour="5MB", max="100MB")
    assert m.verdict is Verdict.FAIL
    assert m.inputs["growth_per_hour_measured"] == 6 * MB
    assert m.explanation.endswith("growth +6.0MB/h over 7 samples in 2h, above the limit 5.0MB/h")
    flat = samples_every(20, [52, 51, 53, 52, 52, 52])
    m = growth_check(app, make_ctx, flat, growth_per_hour="5MB")
    assert m.verdict is Verdict.PASS
    assert abs(m.inputs["growth_per_hour_measured"]) < 1 * MB


def test_error_samples_are_ignored_and_max_still_fails(app: App, make_ctx: ContextFactory) -> None:
    history = [
        *samples_every(20, [52] * 5),
        Sample(at=T0 - dt.timedelta(minutes=1), value=None, verdict=Verdict.ERROR),
    ]
    app.state.health = {"memory": {"rss": 150 * MB}}
    m = growth_check(app, make_ctx, history[:2] + history[-1:], growth_per_hour="5MB", max="100MB")
    assert m.verdict is Verdict.FAIL  # above max, even though growth cannot be judged yet
    assert m.inputs["samples"] == 4


def test_leak_with_ten_concurrent_workers(spawn: Callable[..., Any], make_ctx: ContextFactory) -> None:
    """Ten real workers, each growing ~200 kB per 50 ms, sampled for real: the leak is found; ten steady
    workers are not flagged."""
    leaking_tag, steady_tag = f"leaky-{uuid.uuid4().hex[:8]}", f"steady-{uuid.uuid4().hex[:8]}"
    for _ in range(10):
        spawn(LEAK, 200_000, leaking_tag)
        spawn(HOLD, 5 * MB, steady_tag)
    for tag, expected in ((leaking_tag, Verdict.FAIL), (steady_tag, Verdict.PASS)):
        stored: list[Sample] = []
        ctx = make_ctx(samples=lambda _check, stored=stored: list(stored))
        # a runbook "hour" of 3.6 s (time scale 0.001), so growth is judged within seconds
        ctx.runbook = dataclasses.replace(ctx.runbook, time_scale=0.001)
        verdicts = []
        for _ in range(6):
            m = run_check(
                spec("memory", cmdline=tag, growth_per_hour="20MB", min_samples=4, min_span=0.5), ctx
            )
            stored.append(Sample(at=m.measured_at, value=m.value, verdict=m.verdict))
            verdicts.append(m.verdict)
            time.sleep(0.2)
        assert verdicts[0] is Verdict.INCONCLUSIVE
        assert verdicts[-1] is expected, (tag, m.explanation)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give exactly one source"),
        ({"pid": 1, "url": "/x"}, "give exactly one source"),
        ({"pid": 1, "cmdline": "x"}, "only one of pid, pid_file and cmdline"),
        ({"cmdline": "("}, "not a valid regular expression"),
        ({"query": "rss"}, "query and prometheus go together"),
        ({"pid": 1, "min_samples": 1}, "at least 2 samples"),
    ],
)
def test_params_are_validated(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        MemoryParams(**params)
    assert message in str(info.value)
