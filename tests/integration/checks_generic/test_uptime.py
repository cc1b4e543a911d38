"""The uptime kind: real child processes and an HTTP field (the pg-boss registry: test_uptime_pgboss)."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from runbook.checkrun import run_check
from runbook.checks.base import Verdict
from runbook.checks.uptime import UptimeParams

from .conftest import HOLD, App, ContextFactory, spec


def started_at(pid: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(psutil.Process(pid).create_time(), dt.UTC)


def test_no_restart_since_the_stage_was_entered(spawn: Callable[..., Any], make_ctx: ContextFactory) -> None:
    child = spawn(HOLD, 0)
    entered = started_at(child.pid) + dt.timedelta(seconds=1)
    now = entered + dt.timedelta(minutes=30)
    m = run_check(spec("uptime", pid=child.pid), make_ctx(stage_entered_at=entered, clock=lambda: now))
    assert m.verdict is Verdict.PASS
    assert m.value == pytest.approx(1801, abs=0.2)
    assert m.unit == "s"
    assert m.explanation.startswith(f"pid {child.pid} up 30m 1s (since ")
    assert m.explanation.endswith("no restart in the window (30m)")
    assert m.inputs["window_start"] == entered.isoformat()


def test_restart_within_the_stage_fails_saying_when(
    spawn: Callable[..., Any], make_ctx: ContextFactory
) -> None:
    tag = f"worker-{uuid.uuid4().hex[:8]}"
    child = spawn(HOLD, 0, tag)
    start = started_at(child.pid)
    entered = start - dt.timedelta(hours=2)
    now = start + dt.timedelta(minutes=5)
    m = run_check(spec("uptime", cmdline=tag), make_ctx(stage_entered_at=entered, clock=lambda: now))
    assert m.verdict is Verdict.FAIL
    assert m.value == pytest.approx(300, abs=0.2)
    assert (
        f"pid {child.pid} restarted 5m ago, at {start:%Y-%m-%d %H:%M:%S} UTC, within the window (2h 5m)"
        in (m.explanation)
    )


def test_window_and_youngest_of_several(spawn: Callable[..., Any], make_ctx: ContextFactory) -> None:
    tag = f"worker-{uuid.uuid4().hex[:8]}"
    spawn(HOLD, 0, tag)
    young = spawn(HOLD, 0, tag)
    now = started_at(young.pid) + dt.timedelta(minutes=10)
    ctx = make_ctx(clock=lambda: now)
    assert run_check(spec("uptime", cmdline=tag, window=300.0), ctx).verdict is Verdict.PASS
    m = run_check(spec("uptime", cmdline=tag, window=3600.0), ctx)
    assert m.verdict is Verdict.FAIL
    assert m.explanation.startswith(f"pid {young.pid} (youngest of 2) restarted 10m ago")


def test_without_a_window_a_running_worker_passes(
    spawn: Callable[..., Any], make_ctx: ContextFactory
) -> None:
    child = spawn(HOLD, 0)
    m = run_check(spec("uptime", pid=child.pid), make_ctx())
    assert m.verdict is Verdict.PASS
    assert m.explanation.endswith("no window to check")


def test_a_worker_that_is_gone_fails(make_ctx: ContextFactory) -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    m = run_check(spec("uptime", pid=proc.pid), make_ctx(stage_entered_at=dt.datetime.now(dt.UTC)))
    assert (m.verdict, m.value) == (Verdict.FAIL, 0)
    assert m.explanation == f"worker not running: no process with pid {proc.pid}"
    m = run_check(spec("uptime", cmdline=f"gone-{uuid.uuid4().hex}"), make_ctx())
    assert m.verdict is Verdict.FAIL


@pytest.mark.parametrize(
    ("health", "params", "verdict"),
    [
        ({"uptime": 7200}, {}, Verdict.PASS),
        ({"uptime": 60}, {}, Verdict.FAIL),
        (
            {"process": {"startedAt": "2026-11-29T09:00:00.000Z"}},
            {"field": "process.startedAt"},
            Verdict.PASS,
        ),
        ({"process": {"startedAt": "2026-11-29T12:30:00Z"}}, {"field": "process.startedAt"}, Verdict.FAIL),
        ({"started": 1795946400000}, {"field": "started"}, Verdict.PASS),  # epoch ms: 2026-11-29T10:00Z
        ({"started": 1795955400}, {"field": "started"}, Verdict.FAIL),  # epoch s: 2026-11-29T12:30Z
    ],
)
def test_http_field(
    app: App, make_ctx: ContextFactory, health: dict[str, Any], params: dict[str, Any], verdict: Verdict
) -> None:
    app.state.health = health
    now = dt.datetime(2026, 11, 29, 13, 0, tzinfo=dt.UTC)
    entered = now - dt.timedelta(hours=1)
    if "field" in params:
        params = {**params, "field_is": "started_at"}
    m = run_check(
        spec("uptime", url="/api/health", **params),
        make_ctx(app.url, stage_entered_at=entered, clock=lambda: now),
    )
    assert m.verdict is verdict, m.explanation


def test_http_field_problems_are_errors(app: App, make_ctx: ContextFactory) -> None:
    app.state.health = {"uptime": "a while"}
    m = run_check(spec("uptime", url="/api/health"), make_ctx(app.url))
    assert (m.verdict, m.explanation) == (
        Verdict.ERROR,
        'uptime is "a while", not a number of seconds; GET /api/health has `uptime` = "a while", a string'
        " (the app contract: a number, seconds since the process started; docs/app-contract.md);"
        " `migrate scaffold` writes these endpoints",
    )
    m = run_check(spec("uptime", url="/api/health", field="nope"), make_ctx(app.url))
    assert m.verdict is Verdict.ERROR
    assert 'no field "nope"' in m.explanation


@pytest.mark.parametrize(
    ("params", "message"),
    [({}, "give exactly one source"), ({"pid": 1, "pgboss": True}, "give exactly one source")],
)
def test_params_are_validated(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        UptimeParams(**params)
    assert message in str(info.value)
