"""The app contract through the CLI: against a real HTTP server that breaks the contract (no `memory.rss`,
an `enabled` of "yes", a missing status endpoint), `plan --check`, `gate` and `advance` name the contract
field and `migrate scaffold`, with the exit codes they have today; an endpoint the contract does not name
keeps its message, and an app that keeps the contract gets no contract text."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Outcome

Migrate = Callable[..., Outcome]

RUNBOOK = """\
version: 1
name: contract-test
settings:
  database:
    url: ${DATABASE_URL}
  flags:
    type: dotenv
    path: app.env
  app:
    url: ${APP_URL}
  defaults:
    verify_deadline: 1s
    verify_interval: 0.2s
flags:
  PGBOSS_ENABLED: false
stages:
  - id: legacy
    monitor:
      - {name: app-health, kind: http, url: /api/health}
      - {name: worker-memory, kind: memory, url: /api/health, field: memory.rss, max: 100MB}
      - {name: worker-uptime, kind: uptime, url: /api/health, field: startedAt, field_is: started_at}
  - id: one
    set: {PGBOSS_ENABLED: true}
    preflight:
      - {name: status-up, kind: http, url: /api/admin/pgboss-status, expect: ["enabled == false"]}
      - {name: other-endpoint, kind: http, url: /api/other}
"""
HEALTH = {"ok": True, "startedAt": "2026-12-03T12:00:00.000Z", "memory": {"rss": 52_000_000, "heapUsed": 9}}
STATUS = {
    "enabled": False,
    "flags": {"PGBOSS_ENABLED": False, "PGBOSS_FOR_NEW_EVALS": False, "PGBOSS_FOR_ALL_JOBS": False},
    "import_jobs": None,
}
SCAFFOLD = "`migrate scaffold` writes these endpoints"
DOC = "docs/app-contract.md"


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, Any]

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        body = self.routes.get(self.path)
        code, payload = (200, body) if body is not None else (404, {"error": f"no route {self.path}"})
        token = self.routes.get("token")  # set: every route wants `Authorization: Bearer <token>`
        if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
            code, payload = 401, {"error": "unauthorized"}
        raw = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def routes() -> Iterator[dict[str, Any]]:
    """What the app serves (path -> JSON body; a path not in it answers 404), on 127.0.0.1 in a thread."""
    served: dict[str, Any] = {"/api/health": HEALTH, "/api/admin/pgboss-status": STATUS, "/api/other": {}}
    handler = type("Handler", (_Handler,), {"routes": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    served["url"] = f"http://127.0.0.1:{server.server_address[1]}"
    yield served
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def app_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str, routes: dict[str, Any]
) -> Iterator[Path]:
    (tmp_path / "stages.yaml").write_text(RUNBOOK)
    (tmp_path / "app.env").write_text("PGBOSS_ENABLED=false\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("APP_URL", routes["url"])
    yield tmp_path


def line_of(text: str, check: str) -> str:
    (line,) = [
        ln
        for ln in text.splitlines()
        if f" {check} " in ln and ln.lstrip().startswith(("PASS", "FAIL", "ERROR"))
    ]
    return line


def test_an_app_that_keeps_the_contract_gets_no_contract_text(app_dir: Path, migrate: Migrate) -> None:
    r = migrate("plan", "--check")
    assert r.code == 0, r.text
    r = migrate("gate")
    assert r.code == 0, r.text
    assert "scaffold" not in r.text and DOC not in r.text


def test_plan_check_names_a_mistyped_field_and_keeps_other_messages(
    app_dir: Path, migrate: Migrate, routes: dict[str, Any]
) -> None:
    routes["/api/admin/pgboss-status"] = {**STATUS, "enabled": "yes"}
    r = migrate("plan", "--check")
    assert r.code == 1, r.text
    assert line_of(r.out, "status-up").endswith(
        '-> 200; enabled = "yes", expected == false; GET /api/admin/pgboss-status has `enabled` = "yes",'
        " a string (the app contract: a boolean (true or false), PGBOSS_ENABLED as the running app sees it,"
        f" true when on; {DOC}); {SCAFFOLD}"
    )
    routes.pop("/api/other")  # not an endpoint of the contract: today's message, nothing more
    r = migrate("plan", "--check")
    assert line_of(r.out, "other-endpoint").endswith(f"GET {routes['url']}/api/other -> 404, expected 200")


def test_a_missing_status_endpoint_through_plan_check_gate_and_advance(
    app_dir: Path, migrate: Migrate, routes: dict[str, Any]
) -> None:
    routes.pop("/api/admin/pgboss-status")
    note = f"the app does not serve GET /api/admin/pgboss-status (the app contract; {DOC}); {SCAFFOLD}"
    want = f"GET {routes['url']}/api/admin/pgboss-status -> 404, expected 200; {note}"
    r = migrate("plan", "--check")
    assert (r.code, line_of(r.out, "status-up").endswith(want)) == (1, True), r.text
    r = migrate("gate")
    assert (r.code, line_of(r.out, "status-up").endswith(want)) == (1, True), r.text
    r = migrate("advance", "--yes")
    assert r.code == 1, r.text
    assert "Not advanced: legacy -> one is blocked:" in r.out and want in r.out
    assert (app_dir / "app.env").read_text() == "PGBOSS_ENABLED=false\n"


def test_gate_names_a_missing_memory_rss_and_a_bad_start_time(
    app_dir: Path, migrate: Migrate, routes: dict[str, Any]
) -> None:
    routes["/api/health"] = {"ok": True, "startedAt": "this morning", "memory": {"heapUsed": 9}}
    r = migrate("gate")
    assert r.code == 1, r.text
    assert line_of(r.out, "worker-memory").endswith(
        "GET /api/health has no `memory.rss` (the app contract: an integer, bytes of resident memory;"
        f" {DOC}); {SCAFFOLD}"
    )
    assert 'GET /api/health has `startedAt` = "this morning", not an ISO 8601 time with a zone' in line_of(
        r.out, "worker-uptime"
    )
    r = migrate("-o", "json", "gate")
    gate = json.loads(r.out)
    assert (r.code, gate["exit_code"]) == (1, 1)
    explained = {m["check"]: m["explanation"] for m in gate["monitors"]}
    assert "has no `memory.rss`" in explained["worker-memory"] and SCAFFOLD in explained["worker-memory"]


LATER = """\
  - id: two
    set: {PGBOSS_FOR_ALL_JOBS: true}
    verify:
      - name: app-reports-all
        kind: http
        url: /api/admin/pgboss-status
        expect: ["flags.PGBOSS_FOR_ALL_JOBS == true", "flags.PGBOSS_ENABLED == true", "enabled == true"]
"""


def test_plan_check_names_fields_a_later_stage_will_read_before_any_flip(
    app_dir: Path, migrate: Migrate, routes: dict[str, Any]
) -> None:
    text = RUNBOOK.replace(
        "  PGBOSS_ENABLED: false\n", "  PGBOSS_ENABLED: false\n  PGBOSS_FOR_ALL_JOBS: false\n"
    )
    (app_dir / "stages.yaml").write_text(text + LATER)
    (app_dir / "app.env").write_text("PGBOSS_ENABLED=false\nPGBOSS_FOR_ALL_JOBS=false\n")
    r = migrate(
        "plan", "--check"
    )  # the app keeps the contract: import_jobs may be null until the queue is made
    assert (r.code, "App contract" in r.out) == (0, False), r.text
    routes["/api/admin/pgboss-status"] = {
        **STATUS,
        "flags": {"PGBOSS_ENABLED": "false"},  # read by stage two only, after its flip: days later
    }
    r = migrate("plan", "--check")
    assert r.code == 0, r.text  # the preflight of one passes: warnings, not blockers
    where = "stages.yaml:31:9: two verify `app-reports-all`"
    lines = r.out.split("App contract (fields checks still to come will read; docs/app-contract.md):\n")[1]
    assert lines.splitlines()[:2] == [
        f"  - {where} will read flags.PGBOSS_FOR_ALL_JOBS: GET /api/admin/pgboss-status has no"
        " `flags.PGBOSS_FOR_ALL_JOBS` (the app contract: a boolean (true or false), the flag is on: every new"
        f" job goes to pg-boss; {DOC}); {SCAFFOLD}",
        f"  - {where} will read flags.PGBOSS_ENABLED: GET /api/admin/pgboss-status has `flags.PGBOSS_ENABLED`"
        ' = "false", a string (the app contract: a boolean (true or false), the flag is on: pg-boss is'
        f" switched on; {DOC}); {SCAFFOLD}",  # this runbook names no queue: its own contract says so
    ]
    assert lines.splitlines()[2:] == ["", "Ready: `migrate advance` would enter one."]
    r = migrate("-o", "json", "plan", "--check")
    got = json.loads(r.out)["contract"]
    assert [c.split(" will read ")[1].split(":")[0] for c in got] == [
        "flags.PGBOSS_FOR_ALL_JOBS",
        "flags.PGBOSS_ENABLED",
    ]
    routes["/api/admin/pgboss-status"] = {**STATUS, "enabled": "yes"}  # read now by one's preflight too
    r = migrate("plan", "--check")
    assert r.code == 1, r.text
    contract = r.out.split("App contract")[1].split("Not ready:")[0]
    assert contract.count("\n  - ") == 1 and "two verify `app-reports-all` will read enabled:" in contract
    assert "status-up" not in contract  # measured now: its own line explains it
    routes.pop("/api/admin/pgboss-status")  # unreachable or not 200: the checks that call it say so
    r = migrate("plan", "--check")
    assert (r.code, "App contract" in r.out) == (1, False), r.text


def test_plan_check_reads_with_the_checks_headers_and_skips_stages_already_past(
    app_dir: Path, migrate: Migrate, routes: dict[str, Any]
) -> None:
    flags = "  PGBOSS_ENABLED: false\n"
    text = RUNBOOK.replace(flags, flags + "  PGBOSS_FOR_ALL_JOBS: false\n") + LATER
    url, auth = "url: /api/admin/pgboss-status", "headers: {Authorization: Bearer s3cret}"
    text = text.replace(url, f"{url}, {auth}")  # the admin endpoint wants a token; the checks send it
    text = text.replace(f"        {url}, {auth}", f"        {url}\n        {auth}")  # block style
    (app_dir / "stages.yaml").write_text(text)
    (app_dir / "app.env").write_text("PGBOSS_ENABLED=false\nPGBOSS_FOR_ALL_JOBS=false\n")
    routes["/api/admin/pgboss-status"] = {**STATUS, "flags": {"PGBOSS_ENABLED": False}}
    r = migrate("plan", "--check")
    assert r.code == 0 and "will read flags.PGBOSS_FOR_ALL_JOBS" in r.out, r.text
    routes["token"] = "s3cret"  # now only a request with the check's header gets an answer
    r = migrate("plan", "--check")
    assert r.code == 1, r.text  # /api/health's checks send no token: 401
    assert "will read flags.PGBOSS_FOR_ALL_JOBS" in r.out  # read with the check's header, as the check will
    assert "s3cret" not in r.text
    routes.pop("token")
    on = {"PGBOSS_ENABLED": True, "PGBOSS_FOR_ALL_JOBS": True}
    routes["/api/admin/pgboss-status"] = {**STATUS, "enabled": False, "flags": on}
    assert migrate("advance", "--yes").code == 0
    routes["/api/admin/pgboss-status"] = {**STATUS, "enabled": True, "flags": on}
    r = migrate("advance", "--yes")
    assert r.code == 0, r.text  # in two, the last stage: its verify is past
    routes["/api/admin/pgboss-status"] = {**STATUS, "enabled": True, "flags": {}}
    r = migrate("plan", "--check")
    assert (r.code, "App contract" in r.out) == (0, False), r.text  # no check will read flags again
