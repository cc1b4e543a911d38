"""The http kind against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runbook.checkrun import run_check
from runbook.checks.base import Verdict
from runbook.checks.http import HttpParams

from .conftest import TOKEN, App, ContextFactory, spec


def test_status_and_json_assertions_pass(app: App, make_ctx: ContextFactory) -> None:
    ctx = make_ctx(app.url)
    check = spec(
        "http",
        name="status endpoint",
        url="/api/admin/pgboss-status",
        expect=("enabled == true", "import_jobs.failed <= 0"),
        value="import_jobs.completed",
    )
    m = run_check(check, ctx)
    assert m.verdict is Verdict.PASS
    assert m.value == 10
    assert (m.check, m.kind) == ("status endpoint", "http")
    assert m.explanation == (
        f"GET {app.url}/api/admin/pgboss-status -> 200; enabled = true, == true; import_jobs.failed = 0, <= 0"
    )
    assert m.inputs["url"] == f"{app.url}/api/admin/pgboss-status"
    assert m.inputs["expect"] == ["enabled == true", "import_jobs.failed <= 0"]
    assert m.duration_ms > 0


def test_assertion_that_does_not_hold_fails(app: App, make_ctx: ContextFactory) -> None:
    app.state.status["import_jobs"]["failed"] = 3
    m = run_check(
        spec("http", url="/api/admin/pgboss-status", expect=("import_jobs.failed <= 0",)), make_ctx(app.url)
    )
    assert m.verdict is Verdict.FAIL
    assert m.explanation.endswith("-> 200; import_jobs.failed = 3, expected <= 0")


def test_missing_field_fails_naming_it(app: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("http", url="/api/health", expect=("memory.heap < 1MB",)), make_ctx(app.url))
    assert m.verdict is Verdict.FAIL
    assert 'no field "heap"' in m.explanation


def test_wrong_status_fails(app: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("http", url="/nope"), make_ctx(app.url))
    assert (m.verdict, m.value) == (Verdict.FAIL, 404)
    assert m.explanation == f"GET {app.url}/nope -> 404, expected 200"


def test_accepted_status_list(app: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("http", url="/nope", status=(200, 404)), make_ctx(app.url))
    assert (m.verdict, m.value) == (Verdict.PASS, 404)


def test_5xx_is_retried_then_passes(app: App, make_ctx: ContextFactory) -> None:
    app.state.flaky_failures = 2
    m = run_check(spec("http", url="/flaky", expect=("ok == true",)), make_ctx(app.url))
    assert m.verdict is Verdict.PASS
    assert app.state.hits["/flaky"] == 3


def test_persistent_5xx_fails_after_bounded_retries(app: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("http", url="/always500"), make_ctx(app.url))
    assert (m.verdict, m.value) == (Verdict.FAIL, 500)
    assert app.state.hits["/always500"] == 3


def test_bad_json_is_an_error(app: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("http", url="/badjson", expect=("ok == true",)), make_ctx(app.url))
    assert m.verdict is Verdict.ERROR
    assert m.explanation == f"GET {app.url}/badjson -> 200 but the body is not JSON (application/json)"


def test_text_body_without_assertions_passes(app: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("http", url="/text"), make_ctx(app.url))
    assert (m.verdict, m.value) == (Verdict.PASS, 200)


def test_timeout_is_an_error(app: App, make_ctx: ContextFactory) -> None:
    m = run_check(spec("http", url="/slow?s=3", timeout=1.0), make_ctx(app.url))
    assert m.verdict is Verdict.ERROR
    assert "timed out" in m.explanation


def test_refused_connection_is_an_error(refused_url: str, make_ctx: ContextFactory) -> None:
    m = run_check(spec("http", url=f"{refused_url}/api/health"), make_ctx())
    assert m.verdict is Verdict.ERROR
    assert m.explanation == f"GET {refused_url}/api/health failed: connection refused"


def test_relative_url_without_app_url_is_an_error(make_ctx: ContextFactory) -> None:
    m = run_check(spec("http", url="/api/health"), make_ctx())
    assert m.verdict is Verdict.ERROR
    assert "settings.app.url is not set" in m.explanation


def test_post_with_body(app: App, make_ctx: ContextFactory) -> None:
    check = spec(
        "http", url="/api/import", method="post", body={"url": "x"}, status=(201,), value="received.url"
    )
    m = run_check(check, make_ctx(app.url))
    assert (m.verdict, m.value, m.inputs["method"]) == (Verdict.PASS, "x", "POST")


@pytest.mark.parametrize("where", ["settings", "params"])
def test_header_values_never_leave_the_check(app: App, make_ctx: ContextFactory, where: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    ctx = make_ctx(app.url, headers=auth if where == "settings" else None)
    params: dict[str, Any] = {"headers": auth} if where == "params" else {}
    ok = run_check(spec("http", url=f"/private?token={TOKEN}", expect=("secret_ok == true",), **params), ctx)
    assert ok.verdict is Verdict.PASS
    assert ok.inputs["headers"] == ["Authorization"]
    text = json.dumps(ok.to_json())
    assert TOKEN not in text and "***" in text


def test_app_headers_are_not_sent_to_other_hosts(app: App, make_ctx: ContextFactory) -> None:
    ctx = make_ctx("http://localhost:1", headers={"Authorization": f"Bearer {TOKEN}"})
    m = run_check(spec("http", url=f"{app.url}/private"), ctx)
    assert (m.verdict, m.value) == (Verdict.FAIL, 401)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"url": ""}, "url: required"),
        ({"url": "/x", "expect": ("enabled = true",)}, "expect[0]: no comparison operator"),
        ({"url": "/x", "value": "a..b"}, 'bad path "a..b"'),
    ],
)
def test_params_are_validated_at_load_time(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        HttpParams(**params)  # type: ignore[arg-type]
    assert message in str(info.value)
