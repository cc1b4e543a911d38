"""What `migrate scaffold` writes runs: on real Node with real pg-boss (10 as ESM JavaScript, with the
Next.js routes called as plain Request -> Response functions; 12 as TypeScript through Node's type
stripping) against a fresh PostgreSQL database. A harness flips the flags the way the postgres backend does
(rows + NOTIFY, and once without NOTIFY to exercise the poll), and checks routing per increment, jobs reaching
the handlers, the plan's send options on the evaluation jobs, createQueue for a new job type, a rollback,
and the graceful stop. The endpoint payloads validate against the app contract's JSON Schemas."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest

from runbook.errors import ConfigError
from runbook.toolchain import ensure_typecheck, find_node
from tests.cli.conftest import Outcome
from tests.cli.conftest import migrate as migrate  # the CliRunner fixture
from tests.conftest import REPO

Migrate = Callable[..., Outcome]

HARNESS = """\
import pg from 'pg'
const [lib, nextDir] = process.argv.slice(2)
const ext = lib.endsWith('ts') ? 'ts' : 'js'
const { configureRuntime, stopRuntime } = await import(`./${lib}/runbook/runtime.${ext}`)
const { ROUTES } = await import(`./${lib}/runbook/express.${ext}`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const out = { seen: [], sends: {} }
const rt = configureRuntime({
  legacy: async (type) => `legacy-${type}`,
  handlers: {
    'import-article': async (data, job) => { out.seen.push(['import-article', data.n, typeof job.id]) },
    evaluation: async (data) => { out.seen.push(['evaluation', data.n]) },
    'new-type': async (data) => { out.seen.push(['new-type', data.n]) }
  },
  flagsPollMs: 300,
  pollingIntervalSeconds: 0.5,
  log: () => {}
})
await rt.ready
const express = async (path) => {
  let status = 0; let body = null
  await ROUTES[path]({}, { status (code) { status = code; return this }, json (b) { body = b } })
  return { status, body }
}
const next = async (path) => {
  const { GET } = await import(`./${nextDir}/app${path}/route.js`)
  const res = await GET(new Request(`http://localhost${path}`))
  return { status: res.status, body: await res.json() }
}
const call = nextDir ? next : express
const db = new pg.Client({ connectionString: process.env.DATABASE_URL })
await db.connect()
await db.query('CREATE SCHEMA IF NOT EXISTS runbook')
await db.query('CREATE TABLE IF NOT EXISTS runbook.flags (name text PRIMARY KEY, value text)')
const setFlag = async (name, value, notify = true) => {
  const t0 = Date.now()
  await db.query('BEGIN')
  await db.query(`INSERT INTO runbook.flags VALUES ($1, $2)
    ON CONFLICT (name) DO UPDATE SET value = excluded.value`, [name, value])
  const payload = JSON.stringify({ flags: { [name]: value }, by: 'test' })
  if (notify) await db.query('SELECT pg_notify($1, $2)', ['runbook_flags', payload])
  await db.query('COMMIT')
  while (rt.flags.value(name) !== value) {
    if (Date.now() - t0 > 5000) throw new Error(`${name}=${value} not seen`)
    await sleep(5)
  }
  return Date.now() - t0
}
const waitSeen = async (n) => { for (let i = 0; i < 200 && out.seen.length < n; i++) await sleep(50) }
const routes = () => ['import-article', 'evaluation', 'new-type'].map((t) => rt.queue.route(t))

out.health = await call('/api/health')
out.statusOff = await call('/api/admin/pgboss-status')
out.routes0 = routes()
out.sends.off = (await rt.queue.send('import-article', { n: 0 })).routedTo
out.flip1 = await setFlag('PGBOSS_ENABLED', 'true')
out.routes1 = routes()
out.sends.on = (await rt.queue.send('import-article', { n: 1 })).routedTo
await waitSeen(1)
out.flip3 = await setFlag('PGBOSS_FOR_NEW_EVALS', 'true', false)
out.routes3 = routes()
out.sends.eval = (await rt.queue.send('evaluation', { n: 3 })).routedTo
await waitSeen(2)
const { rows } = await db.query(`SELECT priority, retry_limit, retry_delay, retry_backoff
  FROM pgboss.job WHERE name = 'evaluation'`)
out.evalOptions = rows
out.flip4 = await setFlag('PGBOSS_FOR_ALL_JOBS', 'yes')
out.routes4 = routes()
out.sends.all = (await rt.queue.send('new-type', { n: 4 })).routedTo
out.status = await call('/api/admin/pgboss-status')
out.healthOn = await call('/api/health')
out.rollback = await setFlag('PGBOSS_ENABLED', 'false')
out.routesBack = routes()
out.sends.back = (await rt.queue.send('evaluation', { n: 5 })).routedTo
out.created = rt.queue.created
await db.end()
const t0 = Date.now()
await stopRuntime()
out.stopMs = Date.now() - t0
out.seen.sort()
console.log(JSON.stringify(out))
"""


def schema(name: str) -> dict[str, object]:
    text = resources.files("runbook.data").joinpath("contract", f"{name}.schema.json").read_text()
    return dict(json.loads(text))


@pytest.mark.parametrize(("major", "lang"), [("10", "js"), ("12", "ts")])
def test_the_scaffold_runs_on_node_with_real_pgboss(
    major: str, lang: str, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrate: Migrate
) -> None:
    monkeypatch.setenv("RUNBOOK_CACHE", os.environ.get("RUNBOOK_CACHE") or str(REPO / ".cache" / "runbook"))
    try:
        node = find_node()
        modules = ensure_typecheck(major, node) / "node_modules"
    except ConfigError as exc:
        pytest.fail(f"running scaffold's output needs Node.js and pg-boss {major}: {exc}")
    monkeypatch.chdir(tmp_path)
    shipped = str(REPO / "stages.yaml")
    outs = [("express", lang)] + ([("next", "js")] if lang == "js" else [])
    for framework, language in outs:
        r = migrate("-f", shipped, "scaffold", "--pgboss", major, "--framework", framework,
                    "--lang", language, "--out", f"{framework}-{language}")  # fmt: skip
        assert r.code == 0, r.text
    (tmp_path / "package.json").write_text(json.dumps({"type": "module", "private": True}))
    (tmp_path / "node_modules").symlink_to(modules)
    (tmp_path / "harness.mjs").write_text(HARNESS)
    args = [str(node.node), "harness.mjs", f"express-{lang}"] + (["next-js"] if lang == "js" else [])
    env = {**node.env(), "DATABASE_URL": pg_url}
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["routes0"] == ["legacy", "legacy", "legacy"]
    assert out["routes1"] == ["pgboss", "legacy", "legacy"]  # increment 1: import jobs only
    assert out["routes3"] == ["pgboss", "pgboss", "legacy"]  # increment 3: new evaluations too
    assert out["routes4"] == ["pgboss", "pgboss", "pgboss"]  # increment 4: every job
    assert out["routesBack"] == ["legacy", "legacy", "legacy"]  # rollback: PGBOSS_ENABLED=false
    assert out["sends"] == {
        "off": "legacy",
        "on": "pgboss",
        "eval": "pgboss",
        "all": "pgboss",
        "back": "legacy",
    }
    assert out["created"] == {"pgboss": 3, "legacy": 2}
    assert out["flip1"] < 1000 and out["flip4"] < 1000 and out["rollback"] < 1000  # NOTIFY
    assert out["flip3"] < 2000  # no NOTIFY: the 300 ms poll
    assert out["seen"][:2] == [["evaluation", 3], ["import-article", 1, "string"]]
    assert out["evalOptions"] == [{"priority": 5, "retry_limit": 3, "retry_delay": 30, "retry_backoff": True}]
    assert out["stopMs"] < 30000

    health, status = schema("health"), schema("pgboss-status")
    for key in ("health", "healthOn"):
        assert out[key]["status"] == 200
        jsonschema.validate(out[key]["body"], health)
    for key in ("statusOff", "status"):
        assert out[key]["status"] == 200
        jsonschema.validate(out[key]["body"], status)
    assert out["statusOff"]["body"]["enabled"] is False
    body = out["status"]["body"]
    assert body["enabled"] is True
    assert body["flags"] == {
        "PGBOSS_ENABLED": True,
        "PGBOSS_FOR_NEW_EVALS": True,
        "PGBOSS_FOR_ALL_JOBS": True,
    }
    assert body["import_jobs"] == {"pending": 0, "completed": 1, "failed": 0}
    assert body["evaluation_jobs"] == {"pending": 0, "completed": 1, "failed": 0}
    assert body["pgboss"]["installed"] is True and body["pgboss"]["major"] == int(major)
    assert body["pgboss"]["schemaVersion"] == (24 if major == "10" else body["pgboss"]["schemaVersion"])
    assert out["healthOn"]["body"]["pgboss"]["workers"] == 5 + 10 + 1  # CONCURRENCY, and 1 for new-type


def run_scaffolded(
    migrate: Migrate,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    script: str,
    env: dict[str, str],
    runbook: str | None = None,
) -> dict[str, object]:
    """Scaffold Express JS for pg-boss 12 from `runbook` (default: the shipped one) into tmp_path/express-js,
    run `script` on Node there with `env` over Node's, and return its last line, parsed."""
    monkeypatch.setenv("RUNBOOK_CACHE", os.environ.get("RUNBOOK_CACHE") or str(REPO / ".cache" / "runbook"))
    try:
        node = find_node()
        modules = ensure_typecheck("12", node) / "node_modules"
    except ConfigError as exc:
        pytest.fail(f"running scaffold's output needs Node.js and pg-boss 12: {exc}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNBOOK_FILE", raising=False)
    (tmp_path / "stages.yaml").write_text(runbook or (REPO / "stages.yaml").read_text())
    r = migrate("scaffold", "--pgboss", "12", "--framework", "express", "--lang", "js", "--out", "express-js")
    assert r.code == 0, r.text
    (tmp_path / "package.json").write_text(json.dumps({"type": "module", "private": True}))
    (tmp_path / "node_modules").symlink_to(modules)
    (tmp_path / "script.mjs").write_text(script)
    full = {**node.env(), **env}
    for name in ("PGBOSS_ENABLED", "PGBOSS_SCHEMA"):
        full.pop(name, None)
    proc = subprocess.run(
        [str(node.node), "script.mjs"], cwd=tmp_path, env=full, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


FALLBACK = """\
const { configureRuntime, stopRuntime } = await import('./express-js/runbook/runtime.js')
const rt = configureRuntime({ legacy: async (type) => `legacy-${type}`, log: () => {} })
await rt.ready
process.env.PGBOSS_ENABLED = 'true' // no flag row: the environment decides
const route = rt.queue.route('import-article')
const sent = await rt.queue.send('import-article', { n: 1 })
console.log(JSON.stringify({ route, sent, error: rt.queue.lastError, started: rt.queue.started }))
await stopRuntime()
"""


def test_jobs_go_to_the_legacy_path_when_pgboss_cannot_start(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrate: Migrate
) -> None:
    """The plan's fallback: pg-boss 12 refuses the runbook's schema name, so the import job routed to it is
    created on the legacy path and lastError says why."""
    text = (
        (REPO / "stages.yaml").read_text().replace("schema: ${PGBOSS_SCHEMA:-pgboss}", "schema: Bad-Schema")
    )
    out: Any = run_scaffolded(migrate, monkeypatch, tmp_path, FALLBACK, {"DATABASE_URL": pg_url}, text)
    assert out["route"] == "pgboss"
    assert out["sent"] == {"id": "legacy-import-article", "type": "import-article", "routedTo": "legacy"}
    assert out["started"] is False
    assert 'Schema name "Bad-Schema"' in out["error"]


LEAK = """\
import pg from 'pg'
const { configureRuntime, stopRuntime } = await import('./express-js/runbook/runtime.js')
const rt = configureRuntime({ legacy: async (type) => `legacy-${type}`, log: () => {} })
await rt.ready
process.env.PGBOSS_ENABLED = 'true'
const probe = new pg.Client({ connectionString: process.env.DATABASE_URL })
await probe.connect()
const others = async () => Number((await probe.query(
  'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()'
)).rows[0].n)
const before = await others()
const sent = [await rt.queue.send('import-article', { n: 0 })]
await new Promise((resolve) => setTimeout(resolve, 300))
const afterFirst = await others()
for (let i = 1; i < 11; i++) sent.push(await rt.queue.send('import-article', { n: i }))
const afterMore = await others()
const routes = sent.map((s) => s.routedTo)
console.log(JSON.stringify({ before, afterFirst, afterMore, routes, error: rt.queue.lastError }))
await probe.end()
await stopRuntime()
"""


def test_a_pgboss_that_fails_to_start_leaves_no_connection_behind(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrate: Migrate
) -> None:
    """pg-boss 12 against a schema it cannot migrate (version 1): start() fails after connecting. The failed
    instance is stopped (it kept its pool, and every send made another: 30 sends, 30 connections, in a
    new-user trial), and sends for the next START_RETRY_MS go to legacy without another attempt."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA pgboss; CREATE TABLE pgboss.version (version int)")
        conn.execute("INSERT INTO pgboss.version VALUES (1)")
    out: Any = run_scaffolded(migrate, monkeypatch, tmp_path, LEAK, {"DATABASE_URL": pg_url})
    assert out["routes"] == ["legacy"] * 11 and out["error"], out
    assert out["afterFirst"] == out["before"], out  # the failed instance's pool is closed
    assert out["afterMore"] == out["before"], out  # no new attempt, no new pool


HANGUP = """\
import { writeFileSync } from 'node:fs'
const { configureRuntime, stopRuntime } = await import('./express-js/runbook/runtime.js')
writeFileSync(process.env.RUNBOOK_FLAGS_FILE, 'PGBOSS_ENABLED=false\\n')
const rt = configureRuntime({ legacy: async (type) => `legacy-${type}`, log: () => {}, flagSource: 'dotenv',
  flagsPollMs: 600000 })
await rt.ready
const before = rt.flags.isOn('PGBOSS_ENABLED')
writeFileSync(process.env.RUNBOOK_FLAGS_FILE, 'PGBOSS_ENABLED=true\\n')
process.kill(process.pid, 'SIGHUP')
await new Promise((resolve) => setTimeout(resolve, 300))
console.log(JSON.stringify({ before, after: rt.flags.isOn('PGBOSS_ENABLED') }))
await stopRuntime()
"""


def test_a_dotenv_app_rereads_its_flags_file_on_sighup_wherever_it_runs(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrate: Migrate
) -> None:
    """The contract's reload (`kill -HUP`) re-reads the dotenv file at once and does not end the process
    (Node's default for SIGHUP, which a new-user trial hit: the reload killed the app); RUNBOOK_FLAGS_FILE
    names the file when the app does not run from the runbook's folder. Polling is off here (10 minutes)."""
    elsewhere = tmp_path / "ops" / "flags.env"
    elsewhere.parent.mkdir()
    env = {"DATABASE_URL": pg_url, "RUNBOOK_FLAGS_FILE": str(elsewhere)}
    assert run_scaffolded(migrate, monkeypatch, tmp_path, HANGUP, env) == {"before": False, "after": True}
