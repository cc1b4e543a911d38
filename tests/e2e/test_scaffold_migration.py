"""A scaffolded app migrated by the real `migrate`, as a new user would: `migrate init` writes the runbook,
`migrate scaffold` (express; TypeScript run by Node's type stripping on pg-boss 12, ESM JavaScript on 10; the
pg-boss major read from the app's package.json) the app half; a tiny node:http server (scaffolded_server.mjs)
mounts the generated routes, sends jobs through the generated queue manager and runs a minimal legacy worker
on the Prisma "Job" table. Then `plan --check`, `advance` through increments 1-4 under load (the shipped
runbook, durations compressed x0.001) and `rollback`, on real pg-boss 12 and 10 and a real PostgreSQL.
Measured: the flags the app reports after each step, where each job type went, how long after the flag row's
write the app saw each flip, health (rss, startedAt, uptime) and the job counts of the generated endpoints,
every advance decided on checks that all passed; after a restart pg-boss starts at boot to drain (its schema
exists) while every job goes to the legacy table."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from runbook.contract import problems
from runbook.demo import ExampleApp
from runbook.demo.story import SCALE, compress_runbook, shipped_runbook, story_env
from runbook.toolchain import installed_pgboss_version
from tests.e2e.conftest import eventually
from tests.e2e.migration_support import Migration, events, load, rows
from tests.integration.checks_pg.legacy_app import DDL as LEGACY_DDL

pytestmark = pytest.mark.e2e

SERVER = Path(__file__).with_name("scaffolded_server.mjs")
FLAGS = ("PGBOSS_ENABLED", "PGBOSS_FOR_NEW_EVALS", "PGBOSS_FOR_ALL_JOBS")
TYPES = ("import-article", "evaluation", "report")
# stage -> the flag it turns on, the flags the app must report, where import / evaluation / report jobs go
# (report, a type of no increment, is only sent where no monitor counts new legacy rows)
STEPS = {
    "increment-1": ("PGBOSS_ENABLED", (True, False, False), ("pgboss", "legacy")),
    "increment-2": (None, (True, False, False), ("pgboss", "legacy")),
    "increment-3": ("PGBOSS_FOR_NEW_EVALS", (True, True, False), ("pgboss", "pgboss")),
    "increment-4": ("PGBOSS_FOR_ALL_JOBS", (True, True, True), ("pgboss", "pgboss", "pgboss")),
}
OFF = dict.fromkeys(FLAGS, False)


def scaffold_app(m: Migration, app: Path, version: str, lang: str, modules: Path) -> dict[str, Any]:
    """`migrate init` + `migrate scaffold` into `app` (a package.json naming pg-boss `version`); return the
    scaffold's JSON answer."""
    m("init", "--dir", str(app))
    assert (app / "stages.yaml").read_text() == shipped_runbook()
    assert "PGBOSS_ENABLED=false" in (app / ".env.flags").read_text()
    compress_runbook(app)  # the same runbook, verify polled every 0.25 s
    (app / "package.json").write_text(
        f'{{"type": "module", "private": true, "dependencies": {{"pg-boss": "{version}", "pg": "^8"}}}}'
    )
    out = json.loads(m("-o", "json", "scaffold", "--framework", "express", "--lang", lang,
                       "--app", str(app), "--out", str(app / "runbook-app")).stdout)  # fmt: skip
    (app / "node_modules").symlink_to(modules)
    shutil.copy(SERVER, app / "server.mjs")
    return dict(out)


def post(app: ExampleApp, job_type: str) -> str:
    """Create one job through the app; return where the generated queue manager routed it."""
    path = {"import-article": "/api/import", "evaluation": "/api/evaluations"}.get(job_type)
    body = app.call("POST", path or f"/api/jobs/{job_type}", {"evaluationId": f"e2e-{job_type}"})
    return str(body["routedTo"])


def flag_written_at(url: str, name: str) -> datetime:
    """When `migrate` last changed the flag's row (updated_at moves only when the value changes)."""
    (at,) = rows(url, "SELECT updated_at FROM runbook.flags WHERE name = %s", (name,))[0]
    assert isinstance(at, datetime)
    return at


def seen_after(app: ExampleApp, written: datetime, flag: str, value: bool) -> float:
    """Seconds from the flag row's write to the app's first change event with `flag` == `value` after it."""
    changes = app.call("GET", "/test/flag-changes")
    for change in changes:
        at = datetime.fromisoformat(change["at"])
        if at >= written and change["flags"][flag] is value:
            return (at - written).total_seconds()
    raise AssertionError(f"the app saw no {flag}={value} after {written}: {changes}")


@contextmanager
def log_on_failure(app: ExampleApp) -> Iterator[ExampleApp]:
    try:
        with app:
            yield app
    except BaseException:
        print(f"--- app log ---\n{app.log_tail(6000)}")
        raise


@pytest.mark.parametrize(("major", "lang", "start"), [("12", "ts", "on-enable"), ("10", "js", "always")])
def test_a_scaffolded_app_through_increments_1_to_4_and_a_rollback(
    major: str, lang: str, start: str, pgboss_dirs: dict[str, Path], pg_url: str, tmp_path: Path
) -> None:
    app_dir = tmp_path / "app"
    version = installed_pgboss_version(pgboss_dirs[major])
    env = story_env(pg_url, "http://127.0.0.1:1", scale=SCALE)
    m = Migration(app_dir / "stages.yaml", env, pg_url)
    made = scaffold_app(m, app_dir, version, lang, pgboss_dirs[major] / "node_modules")
    assert (made["pgboss"], made["pgboss_source"]) == (major, f"{app_dir}/package.json: {version}")
    assert {f["action"] for f in made["files"]} == {"created"}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(LEGACY_DDL.encode())
    app_env = {
        "JOB_MS": "250",
        "SCAFFOLD_LANG": lang,
        **({"PGBOSS_START": "always"} if start == "always" else {}),
    }
    sent: Counter[str] = Counter()
    with log_on_failure(ExampleApp(pg_url, major, app_env, tmp_path / "run", app_dir=app_dir)) as app:
        m.env["APP_URL"] = app.url
        began, first = time.monotonic(), app.health()
        status = app.status()
        assert problems("health", first) == [] and problems("pgboss-status", status) == []
        assert (status["enabled"], status["flags"]) == (False, OFF)
        assert status["pgboss"]["started"] is status["pgboss"]["installed"] is (start == "always")
        assert m("plan", "--check").exit_code == 0
        routed = [post(app, t) for t in TYPES]
        assert routed == ["legacy"] * 3
        sent.update(routed)

        latency: dict[str, float] = {}
        with load(app) as bg:
            for stage, (flag, flags, where) in STEPS.items():
                if stage != "increment-1":
                    m.watch(8)
                m.advance()
                assert m.stage() == stage
                status = app.status()
                assert status["flags"] == dict(zip(FLAGS, flags, strict=True)), stage
                assert status["enabled"] is True and problems("pgboss-status", status) == []
                routed = [post(app, t) for t in TYPES[: len(where)]]
                assert routed == list(where), stage
                sent.update(routed)
                if flag:
                    latency[flag] = seen_after(app, flag_written_at(pg_url, flag), flag, True)
            load_sent = bg.stop()
        assert load_sent.errors == 0, load_sent.error_samples
        assert all(0 <= s < 1.0 for s in latency.values()), latency  # NOTIFY: each flip seen within 1 s

        m("rollback", "--reason", "scaffolded app: back to the legacy table", expect=4)
        assert m.stage() == "legacy"
        status = app.status()
        assert (status["enabled"], status["flags"]) == (False, OFF)
        back = seen_after(app, flag_written_at(pg_url, "PGBOSS_ENABLED"), "PGBOSS_ENABLED", False)
        assert 0 <= back < 1.0, back
        routed = [post(app, t) for t in TYPES]
        assert routed == ["legacy"] * 3
        sent.update(routed)

        # every job done: the legacy worker drained "Job", pg-boss's workers (still started) their queues
        def idle(s: dict[str, Any]) -> bool:
            queues = s["queues"].values()
            return s["legacy"]["PENDING"] + s["legacy"]["RUNNING"] == 0 and all(
                q["pending"] + q["active"] == 0 for q in queues
            )

        status = eventually(app.status, idle, timeout=60)
        health = app.health()
        assert problems("health", health) == [] and problems("pgboss-status", status) == []
        total = Counter(load_sent.by_route) + sent
        assert health["created"] == {"pgboss": total["pgboss"], "legacy": total["legacy"]}
        # the runbook's queues; the one report job (increment-4) is in a queue of its own
        assert sum(q["completed"] for q in status["queues"].values()) == total["pgboss"] - 1
        assert status["legacy"]["COMPLETED"] == total["legacy"] and status["legacy"]["FAILED"] == 0
        assert status["import_jobs"]["completed"] >= 5 and status["evaluation_jobs"]["completed"] >= 20
        assert status["pgboss"]["packageVersion"] == health["pgboss"]["version"] == version
        assert (status["pgboss"]["started"], health["pgboss"]["workers"]) == (True, 5 + 10 + 1)
        assert health["startedAt"] == first["startedAt"]  # no restart through the whole migration
        assert health["uptime"] >= first["uptime"] + (time.monotonic() - began) - 1.0
        assert 20e6 < health["memory"]["rss"] < 300e6

        app.restart()  # after a rollback, a restarted app starts pg-boss at boot to drain what is left
        again = app.health()
        assert datetime.fromisoformat(again["startedAt"]) > datetime.fromisoformat(first["startedAt"])
        assert (again["flags"], again["pgboss"]["started"]) == (OFF, True)
        assert post(app, "import-article") == "legacy"

    advances = events(pg_url, "advance")
    assert [e["to_stage"] for e in advances] == list(STEPS)
    for e in advances:
        assert e["verdicts"] and {v["verdict"] for v in e["verdicts"]} == {"pass"}, e["to_stage"]
    (rollback,) = events(pg_url, "rollback")
    assert (rollback["from_stage"], rollback["to_stage"]) == ("increment-4", "legacy")
    assert rollback["flags_after"] == dict.fromkeys(FLAGS, "false")
