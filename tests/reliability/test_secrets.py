"""Secrets: every command run with credentials in every URL (application, state and flags databases, the app
URL, a check's own URL, a token in a check's query string, a webhook with a token, the CI job URL), passwords
holding `%`, `/`, `@`, spaces and quotes, a header from the environment, and environment values in a size and
a duration field that do not parse; then every output, every row the tool wrote, the journal, the report, the
JUnit and markdown files, the runbook cache and the webhook bodies are searched for them, in every form they
can be written in (as is, percent-encoded, JSON- and HTML-escaped). None may appear. Random passwords over
the whole printable range go through the connection-error path and the CLI (hypothesis)."""

from __future__ import annotations

import base64
import html
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import quote, quote_plus

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from tests.reliability.conftest import Home, Ran, record

SECRETS = {
    "database": "Db-P@55 s3cret/71%",
    "state": "St4te-Pa55:s3cret@72",
    "flags": "Fl4gs Pa55 s3cret 73",
    "pgboss": "Bo55/Pa55%s3cret#74",
    "app": "App-P@55 s3cret-75",
    "header": "tok-HEADER-s3cret-76",
    "hook token": "hook-T0ken-s3cret-77",
    "hook password": "Hook-Pa55-s3cret-78",
    "ci": "Ci-Pa55-s3cret-79",
    "state down": "St4te-D0wn s3cret/80@x",
    "check password": "Ch3ck-P@55 s3cret/81",
    "query token": "qu3ry-T0ken-s3cret-82",
    "size value": "S1ze-Val-s3cret-83",
    "duration value": "Dur4tion-s3cret-84",
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
    verify_deadline: ${VERIFY_DEADLINE:-1s}
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
        url: /api/health?token=${QUERY_TOKEN}&x=1
        expect: ['status == "ok"']
      - name: own-url
        kind: http
        url: http://checker:${CHECK_PW}@127.0.0.1:${APP_PORT}/api/health
        expect: ['status == "ok"']
      - name: db-monitor
        kind: sql
        query: SELECT 0
        expect: ["value == 0"]
  - id: two
  - id: three
    monitor:
      - name: memory
        kind: memory
        url: /api/health
        field: rss
        max: ${MAX_RSS:-100MB}
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


BASIC = (("appuser", "app"), ("hookuser", "hook password"), ("checker", "check password"))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def with_password(url: str, password: str, *, encode: bool = True) -> str:
    """The URL of the test database with a password, percent-encoded unless `encode` is False (the test
    server trusts local connections)."""
    assert url.startswith("postgresql://postgres")
    rest = url.split("@", 1)[1] if "@" in url else url[len("postgresql://postgres") :]
    return f"postgresql://postgres:{quote(password, safe='') if encode else password}@{rest}"


def written(secret: str) -> set[str]:
    """The forms a secret can take in an output: as is, percent-encoded, JSON- and HTML-escaped."""
    out = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    out |= {json.dumps(v)[1:-1] for v in list(out)} | {html.escape(v) for v in list(out)}
    return out


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
        APP_URL=f"http://appuser:{quote(s['app'], safe='')}@127.0.0.1:{app}",
        APP_PORT=str(app),
        APP_TOKEN=s["header"],
        HOOK_URL=f"http://hookuser:{s['hook password']}@127.0.0.1:{app}/hook?token={s['hook token']}",
        RUNBOOK_CI_URL=f"https://ci:{s['ci']}@ci.example.com/jobs/42",
        CHECK_PW=quote(s["check password"], safe=""),
        QUERY_TOKEN=s["query token"],
    )
    out = home.dir / "out"
    home.env["RUNBOOK_SPEC_CACHE"] = str(home.dir / "spec-cache")  # the cached runbooks are searched too
    runs: list[tuple[str, Ran]] = []

    def run(*args: str, codes: set[int], extra: dict[str, str] | None = None) -> None:
        markdown = args[0] in ("plan", "status", "gate", "history")
        for fmt in ("text", "json", "markdown") if markdown else ("text", "json"):
            r = home.run("-o", fmt, *args, extra=extra)
            assert r.code in codes, (args, fmt, r.text)
            if fmt == "json" and r.out.strip():  # watch: a JSON object per line (rounds, then its result)
                docs = r.out.splitlines() if args[0] == "watch" else [r.out]
                assert all(json.loads(d) is not None for d in docs if d.strip())
            runs.append((" ".join(args), r))

    run("init", "--dir", str(home.dir / "init"), "--ci", "github", codes={0})
    run("validate", codes={0})
    bad = {"MAX_RSS": s["size value"], "VERIFY_DEADLINE": s["duration value"]}
    run("validate", codes={2}, extra=bad)  # environment values that do not parse are not echoed
    run("status", codes={2}, extra=bad)
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
    down = f"postgresql://runbook:{quote(s['state down'], safe='')}@127.0.0.1:1/nowhere"
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
    assert "token=***" in haystacks["state schema rows"]  # the check with a token in its query string ran
    assert any("Basic " + b64(f"checker:{s['check password']}") == a for a in App.auth)  # the own-url check
    forms = {f"{n} as {v!r}": v for n, secret in s.items() for v in written(secret)}
    forms |= {f"{n} (base64 of user:password)": b64(f"{u}:{s[n]}") for u, n in BASIC}
    found = [(where, name) for where, text in haystacks.items() for name, v in forms.items() if v in text]
    assert found == []
    rows = haystacks["state schema rows"].count("\n") + 1
    record(
        f"RELIABILITY secrets: {len(s)} secrets in {len(forms)} written forms, {len(runs)} command runs "
        f"(text, json, markdown), {rows} state rows, {len(files)} files, {len(App.bodies)} webhook bodies "
        "searched: 0 found"
    )


def test_the_search_would_find_a_leak(home: Home) -> None:
    """The haystack is real: the same search finds a secret printed on purpose."""
    r = home.run("-o", "json", "history", extra={"RUNBOOK_ACTOR": SECRETS["ci"]})
    assert r.code == 0 and SECRETS["ci"] not in r.out  # nothing recorded yet: the actor is not shown
    assert home.run("advance", "--yes", extra={"RUNBOOK_ACTOR": SECRETS["ci"]}).code == 0
    assert SECRETS["ci"] in dump_schema(home.env["STATE_URL"], "runbook")


# --- random passwords over the whole printable range (hypothesis) -------------------------------------------

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
PASSWORDS = st.text(PRINTABLE, min_size=8, max_size=32).filter(lambda p: len(set(p)) >= 4)


_SHIFT = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "bcdefghijklmnopqrstuvwxyzaBCDEFGHIJKLMNOPQRSTUVWXYZA1234567890",
)


def twin(password: str) -> str:
    """A password of the same shape (the same punctuation and spaces where they were), other letters."""
    return password.translate(_SHIFT)


def leaked(password: str, text: str, reference: str) -> list[str]:
    """Pieces of the password (6 characters or more, 3 of them different) found in `text` in any written form,
    but not in `reference`, the same output for the password's `twin` (what the message says anyway)."""
    pieces = {password[i:j] for i in range(len(password)) for j in range(i + 6, len(password) + 1)}
    forms = {v for p in pieces if len(set(p)) >= 3 for v in written(p) if len(v) >= 6}
    return sorted(v for v in forms if v in text and v not in reference)


def urls(password: str, server: str) -> list[str]:
    """Connection URLs with `password` as written and percent-encoded: unreachable and a missing database."""
    info = psycopg.conninfo.conninfo_to_dict(server)
    host, port = str(info.get("host") or "127.0.0.1"), str(info.get("port") or "5432")
    missing = (
        f"/no_such_db?host={quote(host, safe='')}&port={port}"
        if host.startswith("/")
        else f"{host}:{port}/no_such_db"
    )
    bases = ["127.0.0.1:1/nowhere", missing]
    return [f"postgresql://postgres:{pw}@{b}" for b in bases for pw in (password, quote(password, safe=""))]


@given(password=PASSWORDS)
@example(password="p%40ss word/s3cret@x")  # libpq quoted it ("unexpected spaces found in ...")
@example(password="x@y@z-s3cret/84")  # libpq took a piece of it for the host
@example(password="s3cret-%82%zz")  # not UTF-8 once decoded: psycopg raised UnicodeDecodeError
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_passwords_never_leak_through_connection_errors(pg_server_url: str, password: str) -> None:
    """runbook.db.connect with the password as written (`@`, `/`, `%`, spaces unencoded) and percent-encoded,
    to an unreachable server and to a missing database: the error names neither; the redactor masks the URL in
    free text too."""
    from runbook.db import connect
    from runbook.errors import RunbookError
    from runbook.redact import Redactor

    def said(pw: str) -> list[str]:
        out = []
        for url in urls(pw, pg_server_url):
            with pytest.raises(RunbookError) as caught:
                connect(url, connect_timeout=2).close()
            out.append(f"{caught.value.message}\n{caught.value.hint}")
            out.append(Redactor()(f"connecting to {url} failed; lock held by ops@host"))
            out.append(Redactor([pw])(f"{pw}, {json.dumps(pw)}, {html.escape(pw)}, {quote(pw, safe='')}"))
        return out

    for text, reference in zip(said(password), said(twin(password)), strict=True):
        assert leaked(password, text, reference) == [], text
    TRIED.append(password)


TRIED: list[str] = []


@given(password=PASSWORDS)
@example(password="s3cret-%82%A9")  # not UTF-8 once decoded: a traceback
@example(password='?/"00001')  # a ? ends the authority: libpq quoted the rest, quotes and all
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_passwords_never_leak_through_the_cli(home: Home, password: str) -> None:
    """`migrate status` and `rollback` (text and JSON) with the state and application databases at URLs
    holding a random password, as written and percent-encoded: exit 2 (a URL libpq would misread), 5
    (unreachable) or 4 (a blind rollback), and the password in none of the output."""

    def urls_of(pw: str) -> list[str]:
        return [f"postgresql://postgres:{pw}@127.0.0.1:1/nowhere", with_password(UNREACHABLE_PG, pw)]

    for url, twin_url in zip(urls_of(password), urls_of(twin(password)), strict=True):
        for args in (("status",), ("-o", "json", "status"), ("rollback", "--reason", "x")):
            r = home.run(*args, extra={"STATE_URL": url, "DATABASE_URL": url})
            reference = home.run(*args, extra={"STATE_URL": twin_url, "DATABASE_URL": twin_url}).text
            assert r.code in (1, 2, 4, 5), (url, r.text)
            assert leaked(password, r.text, reference) == [], (url, r.text)
            CLI_RUNS.append(r.code)


CLI_RUNS: list[int] = []
UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/nowhere"


@pytest.fixture(scope="module", autouse=True)
def _random_password_counts() -> Iterator[None]:
    """The count line of the two property tests above, printed when the module's tests are done."""
    yield
    if TRIED or CLI_RUNS:
        record(
            f"RELIABILITY secrets (hypothesis): {len(TRIED)} random printable passwords x 4 connection URLs, "
            f"{len(CLI_RUNS)} CLI runs: 0 leaked"
        )


CHECK_RUNBOOK = """\
version: 1
name: reliability
settings:
  database:
    url: ${DATABASE_URL}
  state:
    url: ${STATE_URL}
  flags:
    type: dotenv
    path: app.env
flags:
  PGBOSS_ENABLED: false
stages:
  - id: legacy
    monitor:
      - name: own-url
        kind: http
        url: ${CHECK_URL}
  - id: one
    set: {PGBOSS_ENABLED: true}
"""
RAW_PASSWORDS = ["Ch3ck P@55 s3cret/81", "a b#c?d=e-s3cret-82", "pct%zz-s3cret@83", "x@y@z/s3cret 84"]


def test_check_url_passwords_never_leak_whatever_their_shape(home: Home) -> None:
    """An http check whose URL holds a password as written (`@`, `/`, `%`, `#`, `?`, spaces not encoded):
    `plan --check`, `gate` and `watch` (its samples stored) in text and JSON; the output and every state row
    hold no piece of it (compared with the same runs for a password of the same shape)."""
    home.write(CHECK_RUNBOOK)
    runs = 0
    for password in RAW_PASSWORDS:

        def outputs(pw: str) -> list[str]:
            url = f"http://checker:{pw}@127.0.0.1:1/api/health"
            texts = []
            watch = ("watch", "--max-samples", "1", "--interval", "1s")
            for args in (("plan", "--check"), ("-o", "json", "gate"), watch, ("-o", "json", *watch)):
                r = home.run(*args, extra={"CHECK_URL": url})
                assert r.code in (0, 1, 4), (args, r.text)
                texts.append(r.text)
            return [*texts, dump_schema(home.env["STATE_URL"], "runbook")]

        for text, reference in zip(outputs(password), outputs(twin(password)), strict=True):
            assert leaked(password, text, reference) == [], text
            runs += 1
    assert "own-url" in dump_schema(home.env["STATE_URL"], "runbook")  # its measurements were recorded
    record(
        f"RELIABILITY secrets: {len(RAW_PASSWORDS)} unencoded check-URL passwords, {runs} outputs and state "
        "dumps searched: 0 pieces found"
    )
