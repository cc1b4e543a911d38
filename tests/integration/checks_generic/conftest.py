"""Real servers for the generic check kinds: a small threading HTTP app on 127.0.0.1 (JSON, 5xx, slow and
broken answers, a header-protected route, and the Prometheus HTTP API shape), plus helpers that build a
runbook, an engine context and check specs."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runbook.checkrun import CheckRunContext
from runbook.checks import get_kind
from runbook.model import AppSettings, CheckSpec, DatabaseSettings, Limits, Runbook, Settings

TOKEN = "s3cret-token-value"


@dataclass
class AppState:
    """What the fake app answers; tests change it between measurements."""

    status: dict[str, Any] = field(
        default_factory=lambda: {"enabled": True, "import_jobs": {"queued": 2, "completed": 10, "failed": 0}}
    )
    health: dict[str, Any] = field(default_factory=lambda: {"ok": True, "memory": {"rss": 52_000_000}})
    flaky_failures: int = 0
    """How many more times /flaky answers 503 before answering 200."""
    hits: dict[str, int] = field(default_factory=dict)
    prometheus: dict[str, Any] = field(default_factory=dict)
    """query -> the `data` object (or an exception string) the Prometheus API answers."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self._send(201, {"received": body})

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        state = self.server.state
        state.hits[url.path] = state.hits.get(url.path, 0) + 1
        if url.path == "/api/admin/pgboss-status":
            self._send(200, state.status)
        elif url.path == "/api/health":
            self._send(200, state.health)
        elif url.path == "/always500":
            self._send(500, {"error": "boom"})
        elif url.path == "/flaky":
            if state.flaky_failures > 0:
                state.flaky_failures -= 1
                self._send(503, {"error": "starting"})
            else:
                self._send(200, {"ok": True})
        elif url.path == "/slow":
            time.sleep(float(urllib.parse.parse_qs(url.query).get("s", ["3"])[0]))
            self._send(200, {"ok": True})
        elif url.path == "/badjson":
            self._send(200, b"{not json", "application/json")
        elif url.path == "/text":
            self._send(200, b"hello", "text/plain")
        elif url.path == "/private":
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                self._send(200, {"secret_ok": True})
            else:
                self._send(401, {"error": "unauthorized"})
        elif url.path == "/api/v1/query":
            query = urllib.parse.parse_qs(url.query).get("query", [""])[0]
            data = state.prometheus.get(query)
            if data is None:
                self._send(400, {"status": "error", "errorType": "bad_data", "error": f"unknown {query}"})
            else:
                self._send(200, {"status": "success", "data": data})
        else:
            self._send(404, {"error": "not found"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: AppState

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that timed out and hung up is expected here


@dataclass
class App:
    url: str
    state: AppState


@pytest.fixture
def app() -> Iterator[App]:
    """The fake app on an ephemeral port of 127.0.0.1."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = AppState()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield App(url=f"http://127.0.0.1:{server.server_address[1]}", state=server.state)
    server.shutdown()
    server.server_close()


@pytest.fixture
def refused_url() -> str:
    """An http URL on a port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_runbook(
    app_url: str | None = None, db_url: str | None = None, headers: dict[str, str] | None = None
) -> Runbook:
    settings = Settings(
        app=AppSettings(url=app_url, headers=headers or {}), database=DatabaseSettings(url=db_url)
    )
    return Runbook(version=1, name="t", settings=settings, flags=(), stages=())


def spec(kind: str, name: str = "check", timeout: float = 5.0, **params: Any) -> CheckSpec:
    """A CheckSpec of `kind` with its params dataclass built from keyword arguments."""
    return CheckSpec(
        name=name, kind=kind, params=get_kind(kind).params(**params), limits=Limits(), timeout=timeout
    )


ContextFactory = Callable[..., CheckRunContext]


@pytest.fixture
def make_ctx() -> Iterator[ContextFactory]:
    """Build engine contexts (closed after the test)."""
    made: list[CheckRunContext] = []

    def factory(
        app_url: str | None = None,
        db_url: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> CheckRunContext:
        ctx = CheckRunContext(make_runbook(app_url, db_url, headers), **kwargs)
        made.append(ctx)
        return ctx

    yield factory
    for ctx in made:
        ctx.close()


HOLD = """
import sys, time
data = b"x" * int(sys.argv[1])
print("ready", flush=True)
time.sleep(600)
"""
LEAK = """
import sys, time
chunks = []
print("ready", flush=True)
while True:
    chunks.append(b"x" * int(sys.argv[1]))
    time.sleep(0.05)
"""


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start real `python -c` children (HOLD: keeps N bytes; LEAK: adds N bytes every 50 ms), each once it
    printed "ready"; all are killed afterwards. Extra argv words tag a child for `cmdline` patterns."""
    children: list[subprocess.Popen[str]] = []

    def start(code: str, size: int, *tags: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(size), *tags], stdout=subprocess.PIPE, text=True
        )
        children.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in children:
        proc.kill()
        proc.wait()
