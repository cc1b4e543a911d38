"""Webhooks through the real CLI: every notification a `migrate` process sends is delivered before the process
exits, against a real HTTP server that fails first (503, then 200); a webhook that never answers costs a
bounded wait and leaves the notification in the outbox, which the next command (even one that ends in an
error) delivers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import DOTENV, Home, record, runbook_yaml

NOTIFY = "  notifications:\n    - url: ${HOOK_URL}\n"
OUTBOX = ".runbook-outbox.jsonl"
SAFE = {"PGBOSS_ENABLED": "false", "PGBOSS_FOR_NEW_EVALS": "false"}


class Receiver:
    """A webhook on 127.0.0.1: the first POST of every body gets 503, the next 200 (or, while `hang` is set,
    no answer at all); records each body it answered 200, before answering."""

    def __init__(self) -> None:
        self.delivered: list[dict[str, Any]] = []
        self.failed_once: set[bytes] = set()
        self.posts = 0
        self.hang = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        rcv = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with rcv.lock:
                    rcv.posts += 1
                    first = body not in rcv.failed_once
                    rcv.failed_once.add(body)
                if rcv.hang.is_set():
                    rcv.stop.wait(60)  # never answers while the test runs
                    return
                if not first:
                    with rcv.lock:
                        rcv.delivered.append(json.loads(body))
                self.send_response(503 if first else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/s3cr3t-t0ken"

    def types(self) -> list[str]:
        with self.lock:
            return [b["type"] for b in self.delivered]

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rcv = Receiver()
    threading.Thread(target=rcv.server.serve_forever, daemon=True).start()
    try:
        yield rcv
    finally:
        rcv.close()


def with_hook(home: Home, receiver: Receiver, flags: str | None = None) -> None:
    home.write(runbook_yaml(settings=NOTIFY) if flags is None else runbook_yaml(flags=flags, settings=NOTIFY))
    home.env["HOOK_URL"] = receiver.url


def outbox(home: Home) -> list[dict[str, Any]]:
    path: Path = home.dir / OUTBOX
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_cli_notification_is_delivered_before_the_process_exits(home: Home, receiver: Receiver) -> None:
    """Advances, rollbacks, an automatic rollback and a rollback that ends in an error (its reload fails):
    each notification had a 503 first, and the server has its 200 delivery when the process has exited."""
    with_hook(home, receiver)
    runs = delivered = 0
    missed: list[str] = []

    def run(*args: str, code: int, sends: list[str], **kw: Any) -> None:
        nonlocal runs, delivered
        before = len(receiver.types())
        r = home.run(*args, **kw)
        assert r.code == code, r.text
        assert receiver.url not in r.text and "s3cr3t-t0ken" not in r.text
        got = receiver.types()[before:]  # read right after the exit: no waiting here
        runs += 1
        delivered += sorted(got) == sorted(sends)
        if sorted(got) != sorted(sends):
            missed.append(f"{' '.join(args)}: got {got}, expected {sends}")

    for _ in range(4):
        run("advance", "--yes", code=0, sends=["advance"])
        run("rollback", "--reason", "drill", code=4, sends=["rollback"])
    run(
        "advance",
        "--yes",
        code=4,
        extra={"VERIFY_VALUE": "0"},
        sends=["verify-failed", "auto-rollback"],
    )
    assert home.flags()["PGBOSS_ENABLED"] == "false"

    # A rollback whose flag write fails (the reload command fails) ends in an error after its notification.
    reload = '    reload: [sh, -c, "exit ${RELOAD_EXIT:-0}"]\n'
    with_hook(home, receiver, flags=DOTENV + reload)
    run("advance", "--yes", code=0, sends=["advance"])
    run(
        "rollback",
        "--reason",
        "reload broken",
        code=5,
        sends=["rollback"],
        extra={"RELOAD_EXIT": "3"},
    )
    record(f"RELIABILITY webhooks: {runs} CLI runs, {delivered} delivered (each after a 503)")
    assert missed == []
    assert delivered == runs
    assert outbox(home) == []


def test_a_webhook_that_never_answers_costs_a_bounded_wait_and_the_next_command_delivers(
    home: Home, receiver: Receiver
) -> None:
    with_hook(home, receiver)
    assert home.run("advance", "--yes").code == 0
    receiver.hang.set()
    started = time.monotonic()
    r = home.run("rollback", "--reason", "app failing")
    took = time.monotonic() - started
    assert r.code == 4, r.text
    assert home.flags()["PGBOSS_ENABLED"] == "false"
    assert took < 15, f"rollback took {took:.1f}s with a hanging webhook"
    assert "1 notification not delivered" in r.err, r.text
    assert "s3cr3t-t0ken" not in r.text + (home.dir / OUTBOX).read_text()
    (entry,) = outbox(home)
    assert json.loads(entry["body"])["type"] == "rollback"

    receiver.hang.clear()
    # The next command, even one that ends in an error (an unknown stage), delivers the outbox.
    bad = home.run("rollback", "--to", "nowhere")
    assert bad.code == 2, bad.text
    assert receiver.types() == ["advance", "rollback"]
    assert outbox(home) == []
    record(
        f"RELIABILITY webhooks: a webhook that hangs: rollback in {took:.1f}s, 1 kept, 1 sent by the next run"
    )
