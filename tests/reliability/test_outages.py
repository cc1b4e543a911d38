"""Outages: the state database down before and in the middle of a rollback (flags flipped anyway, journal
synced later), the database restarting under `migrate watch` (no decision caused by the outage), and the
app down during verify (automatic rollback, exit 4)."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse

import psycopg
from psycopg import sql

from runbook.state import TRANSITIONS
from tests.reliability.conftest import (
    NAME,
    POSTGRES_FLAGS,
    UNREACHABLE,
    Home,
    RestartablePostgres,
    record,
    runbook_yaml,
    table_flags,
    wait_for_file,
)

SAFE = {"PGBOSS_ENABLED": "false", "PGBOSS_FOR_NEW_EVALS": "false"}
ONE = {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"}


def journal_lines(home: Home) -> list[str]:
    path = home.dir / ".runbook-journal.jsonl"
    return [line for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_rollback_with_the_state_database_down_flips_postgres_flags_and_journals(
    home: Home, second_db: str
) -> None:
    home.write(runbook_yaml(flags=POSTGRES_FLAGS))
    home.env["FLAGS_URL"] = second_db
    assert home.run("advance", "--yes").code == 0
    assert table_flags(second_db) == ONE
    good = home.env["STATE_URL"]

    home.env["STATE_URL"] = UNREACHABLE
    r = home.run("rollback", "--reason", "state db down, app failing")
    assert r.code == 4, r.text
    assert "hunter2-unreachable" not in r.text
    assert "the state database was unreachable: the event is in the local journal" in r.out
    assert table_flags(second_db) == SAFE
    assert len(journal_lines(home)) == 1

    home.env["STATE_URL"] = good
    status = home.run("-o", "json", "status")
    data = json.loads(status.out)
    assert status.code == 0, status.text
    assert (data["stage"], data["drift"], data["pending_intent"]) == ("legacy", [], None)
    assert data["flags"]["actual"] == SAFE
    assert journal_lines(home) == []
    rollbacks = [e for e in home.events() if e.operation == "rollback"]
    assert [e.reason for e in rollbacks] == ["state db down, app failing"]
    assert rollbacks[0].data["journal"]["applied"] is True
    record(
        "RELIABILITY outage: state DB down during rollback (postgres flags on another database): "
        "flags flipped 1/1, journaled 1, synced 1, drift 0"
    )


def test_state_database_lost_in_the_middle_of_a_rollback(
    home: Home, second_db: str, pg_server_url: str
) -> None:
    home.write(runbook_yaml(flags=POSTGRES_FLAGS))
    home.env["FLAGS_URL"] = second_db
    assert home.run("advance", "--yes").code == 0
    dbname = urllib.parse.urlsplit(home.env["STATE_URL"]).path.lstrip("/")
    marker = home.dir / "paused"
    proc = home.popen(
        "rollback",
        "--reason",
        "lost the state db mid-way",
        extra={
            "RUNBOOK_PAUSE_AT": "rollback:flipped",
            "RUNBOOK_PAUSE_FILE": str(marker),
            "RUNBOOK_PAUSE_SECONDS": "8",
        },
    )
    wait_for_file(marker, proc)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(dbname)))
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
        out, err = proc.communicate(timeout=120)
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(dbname)))
    assert "Traceback" not in out + err, err
    assert proc.returncode == 4, out + err
    assert "the event is in the local journal" in out
    assert table_flags(second_db) == SAFE
    assert len(journal_lines(home)) == 1

    status = home.run("-o", "json", "status")
    data = json.loads(status.out)
    assert status.code == 0, status.text
    assert (data["stage"], data["drift"], data["pending_intent"]) == ("legacy", [], None)
    events = home.events()
    intent = [e for e in events if e.operation == "intent"][-1]
    last = events[-1]
    assert (last.operation, last.intent_id, last.data["journal"]["applied"]) == ("rollback", intent.id, True)
    record(
        "RELIABILITY outage: state DB lost between flip and commit of a rollback: flags flipped 1/1, "
        "journaled 1, synced and applied 1, intent closed, drift 0"
    )


def test_the_database_restarting_under_watch_makes_no_decision(
    home: Home, own_postgres: RestartablePostgres
) -> None:
    home.env.update(DATABASE_URL=own_postgres.url, STATE_URL=own_postgres.url, SOAK="1h")
    assert home.run("advance", "--yes").code == 0
    with home.store() as store:
        before = store.require(NAME)
    rounds = 12
    proc = home.popen(
        "-o", "json", "watch", "--interval", "0.5s", "--max-samples", str(rounds), "--auto-advance"
    )

    def samples() -> int:
        try:
            with psycopg.connect(own_postgres.url, connect_timeout=2) as conn:
                return int(conn.execute("SELECT count(*) FROM runbook.samples").fetchone()[0])  # type: ignore[index]
        except psycopg.Error:
            return 0

    deadline = time.monotonic() + 90
    while samples() < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()
    own_postgres.stop()
    time.sleep(2)
    own_postgres.start()
    out, err = proc.communicate(timeout=180)
    assert "Traceback" not in out + err, err
    assert proc.returncode == 0, out + err
    *views, result = [json.loads(line) for line in out.splitlines()]  # a line per round, then the result
    assert (result["outcome"], result["rounds"], result["stage"], result["transitions"]) == (
        "limit",
        rounds,
        "one",
        [],
    )
    outage = [
        v for v in views if "state database" in v["note"] or any(c["verdict"] == "error" for c in v["checks"])
    ]
    assert outage, err  # the watcher did see the restart
    with home.store() as store:
        after = store.require(NAME)
        events = store.events(NAME, limit=None)
    assert (after.stage, after.version, after.pending_intent) == ("one", before.version, None)
    assert [
        e for e in events if e.operation in TRANSITIONS and e.version and e.version > before.version
    ] == []
    assert {k: home.flags()[k] for k in ONE} == ONE
    record(
        f"RELIABILITY outage: database restarted under watch: {rounds} rounds, {len(outage)} saw the outage, "
        "0 advances, 0 rollbacks"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_app_down_during_verify_rolls_back_with_exit_4(home: Home) -> None:
    port = free_port()
    app = f"  app:\n    url: http://127.0.0.1:{port}\n"
    health = "      - name: app-health\n        kind: http\n        url: /api/health\n"
    home.write(runbook_yaml(settings=app, verify_extra=health))
    r = home.run("advance", "--yes")
    assert r.code == 4, r.text
    assert {k: home.flags()[k] for k in SAFE} == SAFE
    events = home.events()
    ops = [e.operation for e in events]
    assert ops == ["init", "intent", "intent", "auto-rollback"], ops
    back = events[-1]
    assert (back.from_stage, back.to_stage) == ("one", "legacy")
    assert back.reason is not None and back.reason.startswith("verify failed: app-health:")
    verdict = {v["check"]: v["verdict"] for v in back.verdicts}
    assert verdict["app-health"] == "error" and verdict["flag-written"] == "pass"
    assert "connection refused" in back.reason
    status = json.loads(home.run("-o", "json", "status").out)
    assert (status["stage"], status["drift"], status["pending_intent"]) == ("legacy", [], None)
    record("RELIABILITY outage: app down during verify: 1 automatic rollback (exit 4), flags safe, drift 0")
