"""Every combination `migrate scaffold` writes (next / express x ts / js) type-checks with `tsc --strict`
and every further check @tsconfig/strictest turns on (exactOptionalPropertyTypes, noUncheckedIndexedAccess,
noPropertyAccessFromIndexSignature, noUnused*, noImplicitReturns: a strict app's tsconfig takes the files as
they are)
against the real TypeScript, @types/node, pg, @types/pg, @types/express and pg-boss of each line,
installed from the npm registry into the ignored cache folder (runbook.toolchain.ensure_typecheck, under a
file lock). One tsc run per pg-boss line checks the four outputs (JavaScript through allowJs/checkJs, with
its JSDoc types) and a consumer that uses them the way an app does; its `@ts-expect-error` lines fail the
run if the types went loose (any). Any tsc diagnostic fails the test."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from runbook.errors import ConfigError
from runbook.toolchain import ensure_typecheck, find_node
from tests.cli.conftest import Outcome
from tests.conftest import REPO

Migrate = Callable[..., Outcome]

TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "allowJs": True,
        "checkJs": True,
        "target": "es2022",
        "lib": ["es2023"],
        "module": "preserve",
        "moduleResolution": "bundler",
        "allowImportingTsExtensions": True,
        "esModuleInterop": True,
        "noUncheckedIndexedAccess": True,
        "exactOptionalPropertyTypes": True,
        "noImplicitReturns": True,
        "noFallthroughCasesInSwitch": True,
        "noUnusedLocals": True,
        "noUnusedParameters": True,
        "noPropertyAccessFromIndexSignature": True,
        "allowUnusedLabels": False,
        "allowUnreachableCode": False,
        "noImplicitOverride": True,
        "types": ["node"],
        "skipLibCheck": True,
    },
    "include": ["**/*.ts", "**/*.js"],
}

CONSUMER_TS = """\
import express from 'express'
import { configureRuntime, stopRuntime } from './next-ts/runbook/runtime'
import { QUEUES } from './next-ts/runbook/queue-manager'
import { GET as health } from './next-ts/app/api/health/route'
import { GET as status } from './next-ts/app/api/admin/pgboss-status/route'
import { healthHandler, mountRunbookRoutes } from './express-ts/runbook/express.ts'

const rt = configureRuntime({
  legacy: async (type: string, data: object) => `${type}:${JSON.stringify(data)}`,
  handlers: {
    evaluation: async (data, job) => {
      const last: boolean = job.retryCount >= job.retryLimit
      console.log(job.id, job.data === data, last)
    }
  },
  beforeSend: async (type, data, route) => {
    const r: 'pgboss' | 'legacy' = route
    console.log(type, data, r)
  },
  jobOptions: { evaluation: { retryLimit: 5, priority: 1 } },
  connectionString: process.env['APP_DATABASE_URL'], // string | undefined: allowed
  log: undefined
})
rt.flags.on('change', (snapshot) => { const on: boolean = snapshot.PGBOSS_FOR_NEW_EVALS; console.log(on) })
const enabled: boolean = rt.flags.isOn('PGBOSS_ENABLED')
// @ts-expect-error: not a flag of the runbook
rt.flags.isOn('NOT_A_FLAG')
// @ts-expect-error: teamSize is not a send option of any pg-boss
configureRuntime({ jobOptions: { evaluation: { teamSize: 5 } } })
const sent: Promise<{ id: string, routedTo: 'pgboss' | 'legacy' }> =
  rt.queue.send(QUEUES[0], { url: 'https://example.com' })
const responses: Array<Promise<Response>> =
  [health(new Request('http://x/api/health')), status(new Request('http://x/'))]
const app = express()
mountRunbookRoutes(app)
app.get('/api/health', healthHandler)
// @ts-expect-error: a response needs status() and json()
void healthHandler({}, {})
console.log(enabled, sent, responses)
await stopRuntime()
"""

CONSUMER_JS = """\
import { configureRuntime } from './next-js/runbook/runtime.js'
import { mountRunbookRoutes } from './express-js/runbook/express.js'

const rt = configureRuntime({
  legacy: async (type, data) => `${type}:${JSON.stringify(data)}`,
  handlers: { evaluation: async (data, job) => { console.log(data, job.retryCount >= job.retryLimit) } },
  // @ts-expect-error: a route is 'pgboss' or 'legacy'
  beforeSend: async (type, data, route) => { if (route === 'elsewhere') console.log(type, data) }
})
/** @type {boolean} */
const on = rt.flags.isOn('PGBOSS_FOR_ALL_JOBS')
// @ts-expect-error: not a flag of the runbook
rt.flags.isOn('NOT_A_FLAG')
// @ts-expect-error: an app without get()
mountRunbookRoutes({})
console.log(on, rt.queue.route('evaluation'))
"""


@pytest.fixture(scope="module")
def node_bin() -> Path:
    try:
        return find_node().node
    except ConfigError as exc:
        pytest.fail(f"type-checking scaffold's output needs Node.js: {exc}")


@pytest.mark.parametrize("major", ["10", "11", "12"])
def test_every_combination_type_checks_strict(
    major: str, node_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrate: Migrate
) -> None:
    monkeypatch.setenv("RUNBOOK_CACHE", os.environ.get("RUNBOOK_CACHE") or str(REPO / ".cache" / "runbook"))
    try:
        modules = ensure_typecheck(major) / "node_modules"
    except ConfigError as exc:
        pytest.fail(f"could not install TypeScript and pg-boss {major} from the npm registry: {exc}")
    monkeypatch.chdir(tmp_path)
    for framework in ("next", "express"):
        for lang in ("ts", "js"):
            r = migrate(
                "-f", str(REPO / "stages.yaml"), "scaffold", "--pgboss", major,
                "--framework", framework, "--lang", lang, "--out", f"{framework}-{lang}",
            )  # fmt: skip
            assert r.code == 0, r.text
    (tmp_path / "consumer.ts").write_text(CONSUMER_TS)
    (tmp_path / "consumer-js.js").write_text(CONSUMER_JS)
    (tmp_path / "package.json").write_text(json.dumps({"type": "module", "private": True}))
    (tmp_path / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    (tmp_path / "node_modules").symlink_to(modules)
    tsc = modules / "typescript" / "bin" / "tsc"
    proc = subprocess.run(
        [str(node_bin), str(tsc), "-p", "tsconfig.json", "--pretty", "false"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0 and not proc.stdout.strip(), (
        f"tsc (pg-boss {major}):\n{proc.stdout}{proc.stderr}"
    )
    version = json.loads((modules / "pg-boss" / "package.json").read_text())["version"]
    assert version.split(".")[0] == major
