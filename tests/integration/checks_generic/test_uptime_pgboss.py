"""The uptime kind on pg-boss 12's instance registry, with a real pg-boss worker process (Node)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from runbook.checkrun import run_check
from runbook.checks.base import Verdict
from runbook.toolchain import ensure_pgboss, find_node

from .conftest import ContextFactory, spec

pytestmark = pytest.mark.pgboss
JS = Path(__file__).parent / "js" / "worker.mjs"


@pytest.fixture(scope="module")
def worker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pgboss12-uptime")
    shutil.copy(JS, folder / "worker.mjs")
    (folder / "node_modules").symlink_to(ensure_pgboss("12") / "node_modules")
    return folder


@pytest.fixture
def start_worker(worker_dir: Path, pg_url: str) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    """Start a pg-boss 12 worker on the test database; returns its Popen once it printed READY."""
    node = find_node()
    procs: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        env = {**node.env(), "DATABASE_URL": pg_url}
        proc = subprocess.Popen(
            [str(node.node), "worker.mjs"],
            cwd=worker_dir,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # node may be a wrapper's child: signal the whole group
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        return proc

    yield start
    for proc in procs:
        kill_group(proc)


def kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def registry_started_on(url: str) -> list[dt.datetime]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT started_on FROM pgboss.instance ORDER BY started_on")]


def test_registry_restart_and_crash(
    start_worker: Callable[[], subprocess.Popen[str]], pg_url: str, make_ctx: ContextFactory
) -> None:
    first = start_worker()
    (started_on,) = registry_started_on(pg_url)
    check = spec("uptime", name="worker uptime", pgboss=True)

    # entered before the worker started: that start counts as a restart within the stage
    m = run_check(check, make_ctx(db_url=pg_url, stage_entered_at=started_on - dt.timedelta(minutes=1)))
    assert m.verdict is Verdict.FAIL, m.explanation
    assert m.explanation.startswith("pg-boss instance pid ") and "restarted" in m.explanation

    # entered after it started: up, no restart
    m = run_check(check, make_ctx(db_url=pg_url, stage_entered_at=started_on + dt.timedelta(seconds=1)))
    assert m.verdict is Verdict.PASS, m.explanation
    assert m.inputs["source"] == "pg-boss instance registry"
    assert m.value >= 0

    # the worker crashes (SIGKILL: no stop()); once its heartbeat is stale the check says so
    kill_group(first)
    entered = started_on + dt.timedelta(seconds=1)
    deadline = time.monotonic() + 60
    while True:
        m = run_check(check, make_ctx(db_url=pg_url, stage_entered_at=entered))
        if m.verdict is not Verdict.PASS or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert m.verdict is Verdict.FAIL
    assert "went quiet without stop() (a crash)" in m.explanation


def test_registry_missing_is_an_error(pg_url: str, make_ctx: ContextFactory) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA pgboss")
    m = run_check(spec("uptime", pgboss=True), make_ctx(db_url=pg_url))
    assert m.verdict is Verdict.ERROR
    assert "no instance registry" in m.explanation
