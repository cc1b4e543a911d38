"""The watcher's HTTP endpoints, next to its metrics: `/metrics` (the Prometheus exposition, by the official
client's WSGI app), `/healthz` (liveness: the watch loop reported within about three intervals) and
`/readyz` (readiness: the state database answered and the watcher holds its lease). A small threaded WSGI
server (its loop in a daemon thread, a thread per request); nothing here touches the database: the probes
read what the watch loop last reported."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from runbook.errors import ConfigError
from runbook.metrics import WatchMetrics, fanout

if TYPE_CHECKING:
    from runbook.commands.watch import WatchView
    from runbook.session import Session

StartResponse = Callable[..., Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = False
    block_on_close = True  # close() waits for the requests in flight: the last scrape is sent in full
    allow_reuse_address = True


class _Quiet(WSGIRequestHandler):
    timeout = 10.0
    """Seconds a connection may stay silent (a stuck client cannot hold close() for longer)."""

    def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
        pass


class MetricsServer:
    """Serves `metrics` on `address`:`port` (port 0: a free one, see `port`) until `close`."""

    def __init__(self, address: str, port: int, metrics: WatchMetrics | None = None) -> None:
        self.metrics = metrics or WatchMetrics()
        self.ended: float | None = None
        self.scraped_after_end = threading.Event()
        self.scraped_updates = 0
        """`metrics.updates` as the last scrape began: equal to it now when the last figures were read."""
        self._exposition = make_wsgi_app(self.metrics.registry)
        self._server = _bind(address, port, self.app)
        self.address = address
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)
        self._thread.start()

    def feed(self, session: Session, *also: Callable[[WatchView], None]) -> Callable[[WatchView], None]:
        """The `on_round` of a watch over `session`: feeds its runbook's figures, then calls `also`."""
        return fanout(self.metrics.feed(session), *also)

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"

    def app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return self._scrape(environ, start_response)
        if path == "/healthz":
            live = self.metrics.live()
            return _text(start_response, live, "ok" if live else "the watch loop has not reported in time")
        if path == "/readyz":
            ready = self.metrics.ready()
            why = "ok" if ready else "not ready: the state database is unreachable or the lease is not held"
            return _text(start_response, ready, why)
        if path == "/":
            return _text(start_response, True, "migrate watch: /metrics /healthz /readyz")
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: try /metrics, /healthz or /readyz\n"]

    def _scrape(self, environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        """The exposition; once written out, this scrape counts as having read the figures it began at."""
        began, seen = time.monotonic(), self.metrics.updates
        yield from self._exposition(environ, start_response)
        self.scraped_updates = seen
        if self.ended is not None and began >= self.ended:
            self.scraped_after_end.set()

    def linger(self, stop: threading.Event, seconds: float) -> bool:
        """After the watch ended by itself: keep serving until one scrape has read the final figures, at most
        `seconds` or until `stop`. True when such a scrape came."""
        self.metrics.ended()
        self.ended = time.monotonic()
        deadline = self.ended + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            if self.scraped_after_end.wait(0.1):
                return True
        return self.scraped_after_end.is_set()

    def finish(self, stop: threading.Event, linger: float, say: Callable[[str], None]) -> None:
        """Close; unless stopped by a signal, first keep figures no scrape has read yet up until one does
        (at most `linger`). Nothing to wait for when the last scrape read them, or nothing was fed."""
        if linger > 0 and not stop.is_set() and self.scraped_updates != self.metrics.updates:
            say(f"keeping {self.url}/metrics up until it is scraped once more (at most {linger:g}s)")
            self.linger(stop, linger)
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _text(start_response: StartResponse, ok: bool, text: str) -> list[bytes]:
    status = "200 OK" if ok else "503 Service Unavailable"
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")])
    return [(text + "\n").encode()]


def _bind(address: str, port: int, app: Callable[..., Iterable[bytes]]) -> _Server:
    """The server bound to `address`:`port`, or a `ConfigError` naming the option to change."""
    try:
        family = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(
            f"--metrics-address {address!r} is not an address of this host ({exc})",
            hint="pass an IP address such as 127.0.0.1, 0.0.0.0 (every interface) or ::1",
        ) from None
    server_class = type("MetricsHTTPServer", (_Server,), {"address_family": family})
    try:
        return make_server(address, port, app, server_class=server_class, handler_class=_Quiet)
    except OSError as exc:
        where = f"{address}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"--metrics-port {port}: {where} is already in use",
                hint="pick another --metrics-port (0 picks a free one), or stop what listens there",
            ) from None
        if exc.errno == errno.EACCES:
            raise ConfigError(
                f"--metrics-port {port}: not allowed to listen on {where}",
                hint="use a port above 1023 with --metrics-port, or run with the right privilege",
            ) from None
        raise ConfigError(
            f"--metrics-address {address}: cannot listen on {where}: {exc.strerror or exc}",
            hint="pass an address of this host with --metrics-address (127.0.0.1, 0.0.0.0, ::1)",
        ) from None
