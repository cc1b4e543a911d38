"""The runner: ERROR for every kind of check problem, the timeout enforced, one cached read-only connection
per URL with a fresh transaction per check, samples from the provider, secrets masked."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence

import psycopg

from runbook.checkrun import CheckRunContext, run_check, run_checks
from runbook.checks.base import Sample, Verdict
from runbook.model import CheckSpec, Limits

from .conftest import ContextFactory, make_runbook, spec


def test_unknown_kind_is_an_error(make_ctx: ContextFactory) -> None:
    m = run_check(CheckSpec(name="x", kind="nope", params=None), make_ctx())
    assert (m.verdict, m.check, m.kind) == (Verdict.ERROR, "x", "nope")
    assert m.explanation == "unknown check kind 'nope'"


def test_unexpected_exception_becomes_a_one_line_error(make_ctx: ContextFactory) -> None:
    m = run_check(
        CheckSpec(name="bad", kind="sql", params={"query": "SELECT 1", "colour": "red"}), make_ctx()
    )
    assert m.verdict is Verdict.ERROR
    assert m.explanation.startswith("TypeError: ") and "colour" in m.explanation
    assert "\n" not in m.explanation


def test_params_given_as_a_mapping_are_built(pg_url: str, make_ctx: ContextFactory) -> None:
    m = run_check(
        CheckSpec(name="one", kind="sql", params={"query": "SELECT 1", "expect": ("value == 1",)}),
        make_ctx(db_url=pg_url),
    )
    assert (m.verdict, m.value) == (Verdict.PASS, 1)


def test_timeout_is_enforced_and_the_connection_replaced(pg_url: str, make_ctx: ContextFactory) -> None:
    ctx = make_ctx(db_url=pg_url)  # statement_timeout 5 s: the runner gives up first
    started = time.monotonic()
    m = run_check(spec("sql", name="slow", query="SELECT pg_sleep(30)", timeout=0.5), ctx)
    assert m.verdict is Verdict.ERROR
    assert m.explanation == "timed out after 500ms"
    assert time.monotonic() - started < 25
    again = run_check(spec("sql", query="SELECT 2", expect=("value == 2",)), ctx)
    assert again.verdict is Verdict.PASS, again.explanation


def test_one_connection_per_url_and_a_fresh_transaction_per_check(
    pg_url: str, make_ctx: ContextFactory
) -> None:
    ctx = make_ctx(db_url=pg_url)
    pid = "SELECT pg_backend_pid()"
    first, second = run_checks([spec("sql", name="a", query=pid), spec("sql", name="b", query=pid)], ctx)
    assert [first.check, second.check] == ["a", "b"]
    assert first.value == second.value  # the same backend
    began = "SELECT extract(epoch FROM now())::float8"  # now() is the transaction's start
    t1 = run_check(spec("sql", query=began), ctx).value
    time.sleep(0.01)
    t2 = run_check(spec("sql", query=began), ctx).value
    assert t2 > t1  # each check ran in its own transaction
    with ctx.connect() as conn:
        assert conn.info.transaction_status.name == "IDLE"
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("5s",)
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == ("runbook-check",)


def test_context_fields_and_samples(make_ctx: ContextFactory) -> None:
    at = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
    history = [Sample(at=at, value=1, verdict=Verdict.PASS)]

    def provider(check: str) -> Sequence[Sample]:
        return history if check == "mem" else ()

    ctx = CheckRunContext(
        make_runbook(), stage_id="s2", stage_entered_at=at, env={"A": "1"}, samples=provider, clock=lambda: at
    )
    assert (ctx.stage_id, ctx.stage_entered_at, ctx.env, ctx.now()) == ("s2", at, {"A": "1"}, at)
    assert ctx.samples("mem") == history and ctx.samples("other") == ()
    assert CheckRunContext(make_runbook()).samples("mem") == ()
    with CheckRunContext(make_runbook()) as plain:
        assert plain.stage_id is None


def test_measured_at_duration_and_limits_untouched(make_ctx: ContextFactory) -> None:
    at = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
    check = CheckSpec(
        name="ok",
        kind="command",
        params=spec("command", run=("true",)).params,
        limits=Limits(failure_limit=2),
    )
    m = run_check(check, make_ctx(clock=lambda: at))
    assert (m.verdict, m.measured_at, m.kind) == (Verdict.PASS, at, "command")
    assert m.duration_ms > 0
    assert m.to_json()["check"] == "ok"


def test_a_terminated_connection_is_replaced_and_the_check_retried(
    pg_url: str, make_ctx: ContextFactory
) -> None:
    ctx = make_ctx(db_url=pg_url)
    before = run_check(spec("sql", query="SELECT pg_backend_pid()"), ctx).value
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (before,))
    after = run_check(spec("sql", query="SELECT pg_backend_pid()"), ctx)
    assert after.verdict is Verdict.PASS, after.explanation
    assert after.value != before
