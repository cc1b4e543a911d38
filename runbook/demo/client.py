"""Talk to a running example app over HTTP: health, status, job creation, waiting for flags."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from runbook.errors import NotReadyError, UnreachableError


class AppClient:
    """HTTP calls to the example app at `url` (see examples/pgboss-app/README.md for the JSON shapes)."""

    log_path: Path | None = None

    def __init__(self, url: str) -> None:
        self._client_url = url.rstrip("/")

    @property
    def url(self) -> str:
        """Base URL of the app."""
        return self._client_url

    def request(self, method: str, path: str, json: Any = None, timeout: float = 10.0) -> httpx.Response:
        """Send one HTTP request to the app; raise UnreachableError when it does not answer."""
        try:
            return httpx.request(method, self.url + path, json=json, timeout=timeout)
        except httpx.TransportError as exc:
            raise UnreachableError(
                f"the example app at {self.url} did not answer {method} {path}: {type(exc).__name__}",
                hint=f"is it running? its log: {self.log_path or 'unknown'}",
            ) from None

    def call(self, method: str, path: str, json: Any = None, timeout: float = 10.0) -> Any:
        """Send a request and return its JSON body; raise httpx.HTTPStatusError on a non-2xx answer."""
        response = self.request(method, path, json, timeout)
        response.raise_for_status()
        return response.json()

    def health(self, timeout: float = 5.0) -> dict[str, Any]:
        """Return GET /api/health."""
        return dict(self.call("GET", "/api/health", timeout=timeout))

    def status(self) -> dict[str, Any]:
        """Return GET /api/admin/pgboss-status."""
        return dict(self.call("GET", "/api/admin/pgboss-status"))

    def import_article(self, url: str, key: str | None = None) -> dict[str, Any]:
        """POST /api/import; return {jobId, key, type, routedTo, duplicate}."""
        body = {"url": url, **({"key": key} if key else {})}
        return dict(self.call("POST", "/api/import", body))

    def create_evaluation(self, evaluation_id: str, agent_id: str, key: str | None = None) -> dict[str, Any]:
        """POST /api/evaluations; return {jobId, key, type, routedTo, duplicate}."""
        body = {"evaluationId": evaluation_id, "agentId": agent_id, **({"key": key} if key else {})}
        return dict(self.call("POST", "/api/evaluations", body))

    def wait_for_flags(self, expected: Mapping[str, bool], timeout: float = 10.0) -> dict[str, Any]:
        """Poll /api/health until the flags in use match `expected`; return that health answer."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            flags = health["flags"]
            if all(flags.get(name) == value for name, value in expected.items()):
                return health
            if time.monotonic() > deadline:
                raise NotReadyError(
                    f"the example app still uses flags {flags} after {timeout:.0f} s, "
                    f"expected {dict(expected)}",
                    hint="check that the flags table was written and NOTIFY sent, "
                    "or restart the app (FLAG_SOURCE=env)",
                )
            time.sleep(0.05)
