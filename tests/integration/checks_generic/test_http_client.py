"""The checks' one HTTP client (checks/http.client): shared by every check of a process (no CA bundle loaded
per request), yet each request is on its own connection (an app restarted between rounds is never reached
through a dead pooled connection) and no cookie an app sets reaches a later check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from runbook.checkrun import run_check
from runbook.checks.base import Verdict
from runbook.checks.http import client

from .conftest import ContextFactory, spec


class Seen(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive offered by the server: the client must not take it
    seen: ClassVar[list[tuple[int, str | None]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        Seen.seen.append((self.client_address[1], self.headers.get("Cookie")))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "session=abc123; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    Seen.seen = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Seen)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_one_client_fresh_connections_no_cookies(server: str, make_ctx: ContextFactory) -> None:
    ctx = make_ctx(server)
    for _ in range(3):
        m = run_check(spec("http", url="/api/health", expect=("ok == true",)), ctx)
        assert m.verdict is Verdict.PASS, m.explanation
    assert client() is client()
    ports = [port for port, _ in Seen.seen]
    assert len(ports) == 3 and len(set(ports)) == 3  # a new connection per request
    assert [cookie for _, cookie in Seen.seen] == [None, None, None]
    assert len(client().cookies) == 0
