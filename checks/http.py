"""`http`: call an endpoint and assert its status code and JSON fields (`enabled == true`).

Verdicts: a status outside `status` is FAIL (5xx is retried first); an assertion that does not hold, or a
field missing from the body, is FAIL; a timeout, a refused connection or a body that is not JSON (when
assertions or `value` need one) is ERROR. Header values are secrets: only header names reach the inputs.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any

from runbook import contract, contract_runbook
from runbook.checks import expect as ex
from runbook.checks.base import CheckContext, CheckKind, Measurement, Verdict
from runbook.checks.transient import ServerError, budget, retry
from runbook.model import doc
from runbook.pgurl import ENCODE_HINT
from runbook.redact import redact_url

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class HttpParams:
    url: str = doc("URL to call; a path such as /api/health is joined to settings.app.url", "")
    method: str = doc("HTTP method", "GET")
    headers: Mapping[str, str] = doc("extra headers; values are secrets and never printed", factory=dict)
    status: tuple[int, ...] = doc("accepted status codes", (200,))
    expect: tuple[str, ...] = doc(
        'assertions on the JSON body: "enabled == true", "import_jobs.failed <= 0"', ()
    )
    value: str | None = doc("JSON field reported as the measured value (default: the status code)", None)
    body: Any = field(default=None, metadata={"doc": "JSON body to send"})

    def __post_init__(self) -> None:
        if not self.url:
            raise ValueError("url: required, e.g. /api/health or https://app.example.com/api/health")
        object.__setattr__(self, "method", self.method.upper())
        ex.parse_all(self.expect)
        if self.value is not None:
            ex.parse_path(self.value)


def resolve_url(ctx: CheckContext, url: str) -> tuple[str, bool]:
    """The absolute URL and whether it points at the app (a relative URL joined to settings.app.url).

    Raises ValueError when a relative URL has no settings.app.url to join."""
    base = ctx.runbook.settings.app.url
    if url.startswith(("http://", "https://")):
        return url, base is not None and url.startswith(base.rstrip("/") + "/")
    if not base:
        raise ValueError(f"{url} is relative but settings.app.url is not set; set it or give a full URL")
    return base.rstrip("/") + "/" + url.lstrip("/"), True


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def client() -> httpx.Client:
    """The process's one HTTP client for checks. Building one loads the CA bundle (about 50 ms on a busy
    2-core machine): once per request it was most of an HTTP check's time, every round of a watch. Each
    request still opens its own connection (no keep-alive: a restarted app is never talked to through a dead
    pooled connection) and no cookie is kept between checks."""
    import httpx  # on first use: loading a runbook imports every kind module

    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                follow_redirects=False,
                limits=httpx.Limits(max_keepalive_connections=0),
                cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
            )
        return _client


def request(
    ctx: CheckContext,
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    accept: tuple[int, ...] = (200,),
) -> httpx.Response:
    """Send one request (app headers added for app URLs), retrying connect errors and unexpected 5xx.

    Returns the last response (also a 5xx after the retries); raises httpx errors otherwise."""

    full, is_app = resolve_url(ctx, url)
    merged = {**(ctx.runbook.settings.app.headers if is_app else {}), **(headers or {})}

    def once() -> httpx.Response:
        resp = client().request(method, full, headers=merged, json=body, timeout=budget())
        if resp.status_code >= 500 and resp.status_code not in accept:
            raise ServerError(resp)
        return resp

    try:
        return retry(once)
    except ServerError as exc:
        return exc.response


def failure_reason(exc: httpx.HTTPError) -> str:
    """A short reason for a transport error: `timed out after 2s`, `connection refused`."""
    import httpx  # on first use: loading a runbook imports every kind module

    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {budget():.0f}s" if budget() > 1 else "timed out"
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return redact_url(text.splitlines()[0])


def shown(ctx: CheckContext, url: str) -> str:
    """The URL as shown in inputs and explanations (passwords masked)."""
    try:
        return redact_url(resolve_url(ctx, url)[0])
    except ValueError:
        return redact_url(url)


def measure(params: HttpParams, ctx: CheckContext) -> Measurement:
    """Call the endpoint and judge its status and JSON body."""
    import httpx  # on first use: loading a runbook imports every kind module

    url = shown(ctx, params.url)
    inputs: dict[str, Any] = {"method": params.method, "url": url, "status": list(params.status)}
    if params.expect:
        inputs["expect"] = list(params.expect)
    if params.headers or ctx.runbook.settings.app.headers:
        inputs["headers"] = sorted({*params.headers, *ctx.runbook.settings.app.headers})

    def result(verdict: Verdict, value: Any, text: str, note: str | None = None) -> Measurement:
        return Measurement(
            verdict, value, f"{params.method} {url} {text}" + (f"; {note}" if note else ""), inputs
        )

    try:
        resp = request(
            ctx,
            params.url,
            method=params.method,
            headers=params.headers,
            body=params.body,
            accept=params.status,
        )
    except ValueError as exc:
        return Measurement(Verdict.ERROR, None, str(exc), inputs)
    except httpx.InvalidURL:  # its message quotes the part it could not parse: maybe a piece of a password
        return result(Verdict.ERROR, None, f"failed: not a valid URL; {ENCODE_HINT}")
    except httpx.HTTPError as exc:
        return result(Verdict.ERROR, None, f"failed: {failure_reason(exc)}")
    code = resp.status_code
    if code not in params.status:
        want = " or ".join(str(s) for s in params.status)
        note = contract.note(url, params.method, status=code)
        return result(Verdict.FAIL, code, f"-> {code}, expected {want}", note)
    if not params.expect and params.value is None:
        return result(Verdict.PASS, code, f"-> {code}")
    try:
        document = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        kind = resp.headers.get("content-type", "unknown content type")
        return result(Verdict.ERROR, None, f"-> {code} but the body is not JSON ({kind})")
    own = functools.partial(contract_runbook.schema, ctx.runbook)  # the runbook's names: renamed queues
    value: Any = code
    passed: list[str] = []
    failed: list[str] = []
    read = [ex.parse_path(params.value)] if params.value is not None else []
    wrong: list[tuple[str | int, ...]] = []
    try:
        if params.value is not None:
            value = ex.resolve(document, ex.parse_path(params.value), params.value)
        for assertion in ex.parse_all(params.expect):
            read.append(assertion.parts)
            ok, _, text = assertion.evaluate(document)
            (passed if ok else failed).append(text)
            wrong += [] if ok else [assertion.parts]
    except ex.MissingValue as exc:
        note = contract.note(url, params.method, document=document, paths=read, schemas=own)
        return result(Verdict.FAIL, None, f"-> {code} but the body has {exc}", note)
    notes = failed or passed
    note = contract.note(url, params.method, document=document, paths=wrong, schemas=own)  # of the wrong type
    return result(Verdict.FAIL if failed else Verdict.PASS, value, "; ".join([f"-> {code}", *notes]), note)


KIND = CheckKind(name="http", params=HttpParams, measure=measure, summary="status code and JSON fields")
