"""`http`: call an endpoint and assert its status code and JSON fields (`enabled == true`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runbook.checks.base import CheckContext, CheckKind, Measurement
from runbook.model import doc


@dataclass(frozen=True)
class HttpParams:
    url: str = doc("URL to call; a path such as /api/health is joined to settings.app.url", "")
    method: str = doc("HTTP method", "GET")
    headers: Mapping[str, str] = doc("extra headers; values are secrets and never printed", factory=dict)
    status: tuple[int, ...] = doc("accepted status codes", (200,))
    expect: tuple[str, ...] = doc(
        'assertions on the JSON body: "enabled == true", "import_jobs.failed <= 0"', ()
    )
    value: str | None = doc("JSON field reported as the measured value", None)
    body: Any = field(default=None, metadata={"doc": "JSON body to send"})


def measure(params: HttpParams, ctx: CheckContext) -> Measurement:
    raise NotImplementedError


KIND = CheckKind(name="http", params=HttpParams, measure=measure, summary="status code and JSON fields")
