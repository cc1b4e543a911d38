"""The app's HTTP API: health and flags shapes, input validation, flags picked up by polling when no NOTIFY
comes and when the flag table appears only after the app started."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import psycopg

from runbook.db import connect
from runbook.demo import ledger_summary, wait_until_settled
from tests.e2e.conftest import AppFactory, set_flags


def test_health_shape_and_validation(make_app: AppFactory) -> None:
    app = make_app("12")
    health = app.health()
    assert health["ok"] is True and health["pid"] == app.pid
    assert set(health["memory"]) == {"rss", "heapUsed", "heapTotal", "external"}
    assert all(isinstance(v, int) and v > 0 for v in health["memory"].values())
    assert datetime.fromisoformat(health["startedAt"]).tzinfo is not None
    assert 0 <= health["uptime"] < 600
    assert health["pgboss"]["major"] == 12

    cases = [
        ("POST", "/api/import", {}, 400, '"url"'),
        ("POST", "/api/evaluations", {"evaluationId": "e"}, 400, '"agentId"'),
        ("POST", "/api/import", {"url": "u", "key": ""}, 400, '"key"'),
        ("GET", "/api/import", None, 405, "GET not allowed"),
        ("GET", "/api/nothing", None, 404, "no route"),
    ]
    for method, path, body, code, text in cases:
        response = app.request(method, path, body)
        assert (response.status_code, text in response.json()["error"]) == (code, True), (path, response.text)
    raw = app.request("POST", "/api/import")  # no body at all
    assert raw.status_code == 400


def test_flags_by_polling_with_a_table_created_after_start(make_app: AppFactory, pg_url: str) -> None:
    app = make_app("12", FLAGS_POLL_MS="300", PGBOSS_FOR_NEW_EVALS="true")
    flags = app.call("GET", "/api/flags")
    assert flags["tablePresent"] is False and flags["listening"] is True
    assert flags["values"]["PGBOSS_FOR_NEW_EVALS"] == {"value": "true", "origin": "env"}
    assert flags["values"]["PGBOSS_ENABLED"] == {"value": None, "origin": "unset"}

    with psycopg.connect(pg_url, autocommit=True) as conn:  # no NOTIFY: only the poll can see this
        conn.execute("CREATE SCHEMA runbook")
        conn.execute("CREATE TABLE runbook.flags (name text PRIMARY KEY, value text)")
        conn.execute(
            "INSERT INTO runbook.flags VALUES ('PGBOSS_ENABLED', 'true'), ('PGBOSS_FOR_NEW_EVALS', NULL)"
        )
    app.wait_for_flags({"PGBOSS_ENABLED": True, "PGBOSS_FOR_NEW_EVALS": True}, timeout=5)
    flags = app.call("GET", "/api/flags")
    assert flags["tablePresent"] is True
    assert flags["values"]["PGBOSS_ENABLED"] == {"value": "true", "origin": "table"}
    assert flags["values"]["PGBOSS_FOR_NEW_EVALS"]["origin"] == "env"  # a NULL row falls back to the env
    assert app.create_evaluation("e", "a")["routedTo"] == "pgboss"


def test_workers_off_builds_a_backlog_that_drains_after_restart(make_app: AppFactory, pg_url: str) -> None:
    app = make_app("10", WORKERS="0", PGBOSS_ENABLED="true")
    health = app.health()
    assert health["legacyWorker"]["running"] is False and health["pgboss"]["workers"] == 0
    assert app.import_article("https://example.com/q")["routedTo"] == "pgboss"
    assert app.create_evaluation("e", "a")["routedTo"] == "legacy"
    with connect(pg_url) as conn:
        assert ledger_summary(conn)["lost"] == 2  # nothing can process them
    app.restart({"WORKERS": None})
    assert app.health()["pgboss"]["workers"] == 15
    summary = wait_until_settled(pg_url, expect_created=2, timeout=30)
    assert summary["exactly_once"] is True and summary["processed_by"] == {"pgboss": 1, "legacy": 1}


def test_flags_listener_reconnects_after_its_connection_is_killed(make_app: AppFactory, pg_url: str) -> None:
    app = make_app("12", FLAGS_POLL_MS="60000")  # no poll: only LISTEN (and its reconnect) can switch flags
    with psycopg.connect(pg_url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'runbook-flags-listen' AND datname = current_database()"
        ).fetchone()
    assert killed == (1,)
    set_flags(pg_url, {"PGBOSS_ENABLED": "true"})  # may land before the listener is back: it re-reads then
    app.wait_for_flags({"PGBOSS_ENABLED": True}, timeout=10)
    assert "LISTEN connection lost" in app.log_tail()
    assert app.call("GET", "/api/flags")["listening"] is True


def test_concurrent_requests_with_one_key_create_one_job(make_app: AppFactory, pg_url: str) -> None:
    app = make_app("12")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: app.import_article("https://example.com/k", key="k1"), range(8)))
    assert [a["duplicate"] for a in answers].count(False) == 1
    assert len({a["jobId"] for a in answers}) == 1 and {a["routedTo"] for a in answers} == {"legacy"}
    summary = wait_until_settled(pg_url, expect_created=1, timeout=30)
    assert summary["created"] == 1 and summary["exactly_once"] is True
