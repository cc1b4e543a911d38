"""The least-privilege role of `migrate init --role NAME`: created on real PostgreSQL by the script it writes
(run with psql as a superuser, as the operator would), then the shipped runbook (compressed x0.001) runs
its whole gate, an advance and a rollback as that role against the example app with real pg-boss 12, without
one permission error; and the role cannot do what a superuser's `sql` check could (files, programs, other
sessions)."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.e2e.conftest import AppFactory, make_app, pgboss_dirs  # noqa: F401 (fixtures)
from tests.e2e.migration_support import APP_ENV, Migration, make_migration
from tests.reliability.conftest import Home, record, runbook_yaml
from tests.reliability.test_sql_statements import psql

pytestmark = pytest.mark.e2e
SAFE = {"PGBOSS_ENABLED": False, "PGBOSS_FOR_NEW_EVALS": False, "PGBOSS_FOR_ALL_JOBS": False}
DENIED = ("permission denied", "insufficient privilege", "must be owner", "InsufficientPrivilege")


def as_role(url: str, role: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    netloc = f"{role}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def role(pg_url: str) -> Iterator[str]:
    """A role name of this test; everything it owns or was granted is dropped afterwards."""
    name = f"rb_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        if exists:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def run_gate(m: Migration) -> dict[str, object]:
    result = m("-o", "json", "gate", expect=(0, 1))
    return dict(json.loads(result.stdout))


def test_shipped_runbook_runs_under_the_least_privilege_role(
    make_app: AppFactory,  # noqa: F811
    pg_url: str,
    role: str,
    tmp_path: Path,
) -> None:
    app = make_app("12", **APP_ENV)
    password = uuid.uuid4().hex
    url = as_role(pg_url, role, password)
    m = make_migration(tmp_path, url, app)

    # the operator: init --role in the runbook's folder, then the script through psql as a superuser
    init = m("init", "--dir", str(m.runbook.parent), "--role", role)
    script = m.runbook.parent / "runbook-role.sql"
    assert str(script) in init.stdout
    for attempt in (1, 2):  # idempotent: a second run changes nothing and fails on nothing
        ran = subprocess.run(
            [psql(), pg_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, f"run {attempt}: {ran.stderr}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        flags = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = %s",
            (role,),
        ).fetchone()
    assert flags == (False, False, False, False)

    # the whole gate (current monitors and next preflight), an advance, the gate of the new stage, a rollback
    gates = [run_gate(m)]
    m.advance()
    assert m.stage() == "increment-1"
    assert app.wait_for_flags({**SAFE, "PGBOSS_ENABLED": True}, timeout=15.0)["flags"]["PGBOSS_ENABLED"]
    gates.append(run_gate(m))
    m("rollback", "--yes", "--reason", "least-privilege test", expect=4)
    assert m.stage() == "legacy"
    assert app.wait_for_flags(SAFE, timeout=15.0)["flags"] == SAFE
    assert "superuser" not in m("status", expect=(0, 1)).stdout
    m("history")

    measured = [c for g in gates for part in ("monitors", "preflight") for c in g[part]]  # type: ignore[attr-defined]
    errors = [(c["check"], c.get("explanation")) for c in measured if c["verdict"] == "error"]
    assert errors == []
    assert [g["warnings"] for g in gates] == [[], []]  # not a superuser: no warning
    log = "\n".join(m.log)
    denied = [line for line in log.splitlines() if any(word.lower() in line.lower() for word in DENIED)]
    assert denied == [], log
    checks = len(measured)
    assert {c["kind"] for c in measured} >= {"legacy", "pgboss", "http"}, measured

    # what a superuser's `sql` check could do, the role cannot (one statement each, read-only transaction)
    refused = 0
    attacks = (
        "SELECT pg_read_file('/etc/hostname')",
        "COPY (SELECT 1) TO PROGRAM 'true'",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename <> current_user",
        'CREATE TABLE public."rb_probe" (id int)',
    )
    with psycopg.connect(url, autocommit=True) as conn:
        for attack in attacks:
            try:
                cur = conn.execute(attack.encode())
                rows = cur.fetchall() if cur.description else []
                assert not any(r[0] for r in rows), (attack, rows)  # terminated nobody
            except psycopg.errors.InsufficientPrivilege:
                pass
            refused += 1
    assert refused == len(attacks)
    record(
        f"RELIABILITY least-privilege role: full gate + advance + rollback ({checks} checks in 2 gates), "
        f"0 permission errors; {refused} superuser-only attacks refused"
    )


def test_status_and_gate_warn_when_connected_as_a_superuser(home: Home, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT rolsuper, current_user FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row is not None
    superuser, user = row
    warned = 0
    for args in (
        ("status",),
        ("gate",),
        ("-o", "json", "status"),
        ("-o", "json", "gate"),
        ("-o", "markdown", "gate"),
    ):
        ran = home.run(*args)
        assert ran.code in (0, 1), ran.text
        text = "\n".join(json.loads(ran.out)["warnings"]) if args[:2] == ("-o", "json") else ran.out
        shown = f'connected as the superuser "{user}"' in text and "migrate init --role NAME" in text
        assert shown == superuser, ran.text
        warned += shown
        if args[:2] == ("-o", "json"):
            assert len(json.loads(ran.out)["warnings"]) == int(superuser)
    assert warned == (5 if superuser else 0)


def test_role_script_quotes_every_name_of_the_runbook(home: Home, pg_url: str, role: str) -> None:
    """Names from the runbook (legacy table, pg-boss schema, state schema, flag table) that would break out
    of quoting are written so that psql runs the script as meant: nothing dropped, the right objects
    granted."""
    legacy, pgboss, state = 'Job"; DROP TABLE x; --', "pg'boss$runbook$", 'rb"state'
    flags = (
        "  flags:\n    type: postgres\n    url: ${DATABASE_URL}\n"
        "    schema: \"fl'ags\"\n    table: 'f''l\"ags'\n"
    )
    settings = f"  legacy:\n    table: {json.dumps(legacy)}\n  pgboss:\n    schema: {json.dumps(pgboss)}\n"
    home.write(
        runbook_yaml(flags=flags, settings=settings).replace(
            "  state:\n", f"  state:\n    schema: '{state}'\n"
        )
    )
    assert home.run("validate").code == 0
    bad = home.run("init", "--role", 'x"; DROP ROLE postgres; --')
    assert bad.code == 2 and "--role" in bad.err, bad.text
    assert not (home.dir / "runbook-role.sql").exists()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE x (id int)")
        conn.execute(sql.SQL("CREATE TABLE {} (id text, status text)").format(sql.Identifier(legacy)))
    made = home.run("init", "--role", role)
    assert made.code == 0, made.text
    script = home.dir / "runbook-role.sql"
    for _ in (1, 2):
        ran = subprocess.run(
            [psql(), pg_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, ran.stderr + script.read_text()
    with psycopg.connect(pg_url) as conn:
        got = conn.execute(
            "SELECT to_regclass('x') IS NOT NULL,"
            " has_table_privilege(%(r)s, format('%%I', %(legacy)s::text), 'SELECT'),"
            " has_table_privilege(%(r)s, format('%%I', %(legacy)s::text), 'INSERT'),"
            " has_schema_privilege(%(r)s, %(pgboss)s, 'USAGE'),"
            " has_schema_privilege(%(r)s, %(pgboss)s, 'CREATE'),"
            " (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %(state)s) = %(r)s,"
            " has_table_privilege(%(r)s, format('%%I.%%I', 'fl''ags', 'f''l\"ags'), 'UPDATE'),"
            " has_table_privilege(%(r)s, format('%%I.%%I', 'fl''ags', 'f''l\"ags'), 'DELETE'),"
            " has_database_privilege(%(r)s, current_database(), 'CREATE')",
            {"r": role, "legacy": legacy, "pgboss": pgboss, "state": state},
        ).fetchone()
    assert got == (True, True, False, True, False, True, True, False, False)


def test_role_script_takes_over_an_existing_state_schema(home: Home, pg_url: str, role: str) -> None:
    """The state schema already exists, owned by the app's role (it holds the flag table the app reads): the
    toolkit's role owns it afterwards, and the app's role still reads the flags."""
    app_role = f"{role}_app"
    home.write(runbook_yaml(flags="  flags:\n    type: postgres\n    url: ${DATABASE_URL}\n"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(app_role)))
        conn.execute(sql.SQL('CREATE TABLE "Job" (id text, status text)'))
        conn.execute(sql.SQL("CREATE SCHEMA runbook AUTHORIZATION {}").format(sql.Identifier(app_role)))
        conn.execute("CREATE TABLE runbook.flags (name text PRIMARY KEY, value text NOT NULL)")
        conn.execute(sql.SQL("ALTER TABLE runbook.flags OWNER TO {}").format(sql.Identifier(app_role)))
    try:
        assert home.run("init", "--role", role).code == 0
        ran = subprocess.run(
            [psql(), pg_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(home.dir / "runbook-role.sql")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ran.returncode == 0, ran.stderr
        with psycopg.connect(pg_url) as conn:
            got = conn.execute(
                "SELECT (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'runbook'),"
                " has_schema_privilege(%(app)s, 'runbook', 'USAGE'),"
                " has_table_privilege(%(app)s, 'runbook.flags', 'SELECT'),"
                " has_table_privilege(%(r)s, 'runbook.flags', 'UPDATE')",
                {"app": app_role, "r": role},
            ).fetchone()
        assert got == (role, True, True, True)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(app_role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(app_role)))
