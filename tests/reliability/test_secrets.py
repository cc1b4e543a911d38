"""Secrets: every command run with credentials in every URL (application, state and flags databases, the app
URL, a webhook with a token, the CI job URL) and a header from the environment; then every output, every
row the tool wrote, the journal, the report, the JUnit and markdown files and the webhook bodies are
searched for them. None may appear."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import psycopg
import pytest
from psycopg import sql

from tests.reliability.conftest import Home, Ran, record

SECRETS = {
    "database": "Db-Pa55-s3cret-71",
    "state": "St4te-Pa55-s3cret-72",
    "flags": "Fl4gs-Pa55-s3cret-73",
    "pgboss": "Bo55-Pa55-s3cret-74",
    "app": "App-Pa55-s3cret-75",
    "header": "tok-HEADER-s3cret-76",
    "hook token": "hook-T0ken-s3cret-77",
    "hook password": "Hook-Pa55-s3cret-78",
    "ci": "Ci-Pa55-s3cret-79",
    "state down": "St4te-D0wn-s3cret-80",
}
RUNBOOK = """\
version: 1
name: reliability
settings:
  database:
    url: ${DATABASE_URL}
  state:
    url: ${STATE_URL}
  flags:
    type: postgres
    url: ${FLAGS_URL}
  app:
    url: ${APP_URL}
    headers:
      X-Api-Key: ${APP_TOKEN}
  pgboss:
    url: ${PGBOSS_URL}
  notifications:
    - url: ${HOOK_URL}
      format: ${HOOK_FORMAT:-json}
  defaults:
    verify_deadline: 1s
    verify_interval: 0.2s
flags:
  PGBOSS_ENABLED: false
stages:
  - id: legacy
  - id: one
    set: {PGBOSS_ENABLED: true}
    preflight:
      - name: app-up
        kind: http
        url: /api/health
      - name: db-up
        kind: sql
        query: SELECT 1
        expect: ["value == 1"]
    verify:
      - name: app-health
        kind: http
        url: ${VERIFY_PATH:-/api/health}
        expect: ['status == "ok"']
    monitor:
      - name: app-monitor
        kind: http
        url: /api/health
        expect: ['status == "ok"']
      - name: db-monitor
        kind: sql
        query: SELECT 0
        expect: ["value == 0"]
  - id: two
"""


class App(BaseHTTPRequestHandler):
    """The app (GET /api/health, /api/broken answers 500) and the webhook receiver (POST /hook)."""

    bodies: ClassVar[list[str]] = []
    auth: ClassVar[set[str]] = set()

    def do_GET(self) -> None:
        App.auth.update({self.headers.get("Authorization") or "", self.headers.get("X-Api-Key") or ""})
        ok = self.path.startswith("/api/health")
        body = json.dumps({"status": "ok" if ok else "broken", "echo": self.path}).encode()
        self.send_response(200 if ok else 500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        App.bodies.append(self.rfile.read(size).decode("utf-8", "replace"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def app() -> Iterator[int]:
    App.bodies, App.auth = [], set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), App)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


BASIC = (("appuser", "app"), ("hookuser", "hook password"))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def with_password(url: str, password: str) -> str:
    """The URL of the test database with a password (the test server trusts local connections)."""
    assert url.startswith("postgresql://postgres")
    rest = url.split("@", 1)[1] if "@" in url else url[len("postgresql://postgres") :]
    return f"postgresql://postgres:{password}@{rest}"


def dump_schema(url: str, schema: str) -> str:
    """Every row of every table of `schema`, as JSON text."""
    out = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            q = sql.SQL("SELECT row_to_json(t)::text FROM {} t").format(sql.Identifier(schema, table))
            out += [f"{table}: {row[0]}" for row in conn.execute(q).fetchall()]
    return "\n".join(out)


def test_no_secret_reaches_any_output_row_or_file(home: Home, app: int, second_db: str) -> None:
    s = SECRETS
    state_url = with_password(home.env["STATE_URL"], s["state"])
    home.write(RUNBOOK)
    home.env.update(
        DATABASE_URL=with_password(home.env["DATABASE_URL"], s["database"]),
        STATE_URL=state_url,
        FLAGS_URL=with_password(second_db, s["flags"]),
        PGBOSS_URL=with_password(home.env["DATABASE_URL"], s["pgboss"]),
        APP_URL=f"http://appuser:{s['app']}@127.0.0.1:{app}",
        APP_TOKEN=s["header"],
        HOOK_URL=f"http://hookuser:{s['hook password']}@127.0.0.1:{app}/hook?token={s['hook token']}",
        RUNBOOK_CI_URL=f"https://ci:{s['ci']}@ci.example.com/jobs/42",
    )
    out = home.dir / "out"
    home.env["RUNBOOK_SPEC_CACHE"] = str(home.dir / "spec-cache")  # the cached runbooks are searched too
    runs: list[tuple[str, Ran]] = []

    def run(*args: str, codes: set[int], extra: dict[str, str] | None = None) -> None:
        markdown = args[0] in ("plan", "status", "gate", "history")
        for fmt in ("text", "json", "markdown") if markdown else ("text", "json"):
            r = home.run("-o", fmt, *args, extra=extra)
            assert r.code in codes, (args, fmt, r.text)
            if fmt == "json" and r.out.strip():
                json.loads(r.out)
            runs.append((" ".join(args), r))

    run("init", "--dir", str(home.dir / "init"), "--ci", "github", codes={0})
    run("validate", codes={0})
    run("plan", "--check", codes={0})
    run("advance", "--yes", codes={0, 1})  # the first run advances; the next two find one -> two blocked
    run("status", codes={0})
    run("gate", "--junit", str(out / "junit.xml"), "--summary", str(out / "summary.md"), codes={0, 1})
    run("watch", "--max-samples", "1", "--interval", "1s", codes={0})
    run("history", codes={0})
    run("report", "--out", str(out / "report.html"), codes={0})
    run("unlock", "--reason", "secrets test", codes={0})
    run("rollback", "--reason", "secrets test", codes={4, 1})
    run("advance", "--yes", codes={4, 1}, extra={"VERIFY_PATH": "/api/broken"})  # auto-rollback
    # the state database down: the rollback is journaled locally, then synced
    run("advance", "--yes", codes={0, 1})
    down = f"postgresql://runbook:{s['state down']}@127.0.0.1:1/nowhere"
    run("rollback", "--reason", "state down", codes={4, 1}, extra={"STATE_URL": down})
    journal = home.dir / ".runbook-journal.jsonl"
    journaled = journal.read_text()
    assert journaled.count("\n") >= 1
    run("status", codes={0})
    run("-f", "missing.yaml", "status", codes={2})
    run("status", codes={5}, extra={"STATE_URL": down, "DATABASE_URL": down})
    run("history", "-n", "100", codes={0})
    run("report", "--out", str(out / "report.html"), codes={0})
    assert journal.read_text() == ""

    files = [p for p in [*out.rglob("*"), *(home.dir / "init").rglob("*")] if p.is_file()]
    files += [p for p in home.dir.glob(".runbook-journal.jsonl*") if p.is_file()]
    files += [p for p in (home.dir / "spec-cache").iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"junit.xml", "summary.md", "report.html", "stages.yaml", "salt"}
    assert any(p.suffix == ".pickle" for p in files)
    haystacks = {
        **{f"{cmd} #{i} stdout": r.out for i, (cmd, r) in enumerate(runs)},
        **{f"{cmd} #{i} stderr": r.err for i, (cmd, r) in enumerate(runs)},
        **{str(p): p.read_text(errors="replace") for p in files},
        "journal before sync": journaled,
        "state schema rows": dump_schema(state_url, "runbook"),
        "flags table rows": dump_schema(home.env["FLAGS_URL"], "runbook"),
        **{f"webhook body {i}": b for i, b in enumerate(App.bodies)},
    }
    assert App.bodies, "the webhook received nothing"
    assert "secrets test" in haystacks["state schema rows"]
    assert s["header"] in App.auth and any(a.startswith("Basic ") for a in App.auth)
    forms = {**s, **{f"{n} (base64 of user:password)": b64(f"{u}:{s[n]}") for u, n in BASIC}}
    found = [(where, name) for where, text in haystacks.items() for name, v in forms.items() if v in text]
    assert found == []
    rows = haystacks["state schema rows"].count("\n") + 1
    record(
        f"RELIABILITY secrets: {len(s)} secrets, {len(runs)} command runs (text, json, markdown), "
        f"{rows} state rows, {len(files)} files, {len(App.bodies)} webhook bodies searched: 0 found"
    )


def test_the_search_would_find_a_leak(home: Home) -> None:
    """The haystack is real: the same search finds a secret printed on purpose."""
    r = home.run("-o", "json", "history", extra={"RUNBOOK_ACTOR": SECRETS["ci"]})
    assert r.code == 0 and SECRETS["ci"] not in r.out  # nothing recorded yet: the actor is not shown
    assert home.run("advance", "--yes", extra={"RUNBOOK_ACTOR": SECRETS["ci"]}).code == 0
    assert SECRETS["ci"] in dump_schema(home.env["STATE_URL"], "runbook")
