"""Real pg-boss 10, 11 and 12 (installed once per session from npm), databases holding known outcomes, a
real legacy "Job" table, and an engine context to measure them with.

pg-boss state is produced by `js/scenario.mjs outcomes` once per version into a template database; every
test gets its own copy (`CREATE DATABASE ... TEMPLATE`), so tests may UPDATE rows (age jobs, move them to
the archive) without affecting each other."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from runbook.checkrun import CheckRunContext
from runbook.checks.base import Measurement
from runbook.model import DatabaseSettings, LegacySettings, PgBossSettings, Runbook, Settings, Stage
from runbook.toolchain import Node, ensure_pgboss, find_node, installed_pgboss_version, run_script
from tests.conftest import with_dbname

JS = Path(__file__).parent / "js"
VERSIONS = ("10", "11", "12")


@pytest.fixture(scope="session")
def node() -> Node:
    return find_node()


@pytest.fixture(scope="session")
def pgboss_dirs(node: Node, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per major: a folder holding a copy of the scenario script beside real pg-boss's node_modules."""
    out = {}
    for major in VERSIONS:
        installed = ensure_pgboss(major, node)
        folder = tmp_path_factory.mktemp(f"pgboss{major}")
        shutil.copy(JS / "scenario.mjs", folder / "scenario.mjs")
        (folder / "node_modules").symlink_to(installed / "node_modules")
        (folder / "VERSION").write_text(installed_pgboss_version(installed))
        out[major] = folder
    return out


def run_node(
    node: Node, folder: Path, url: str, *args: str, timeout: float = 120, schema: str = "pgboss"
) -> str:
    """Run the scenario script; its stdout (raises with stderr on failure)."""
    env = {**node.env(), "DATABASE_URL": url, "PGBOSS_SCHEMA": schema}
    return run_script(node.node, folder, "scenario.mjs", *args, env=env, timeout=timeout)


@dataclass(frozen=True)
class Template:
    major: str
    name: str
    outcome: dict[str, Any]
    started_at: dt.datetime
    """Just before the scenario ran (a stage entered then sees all of its jobs)."""


@pytest.fixture(scope="session")
def templates(pg_server_url: str, node: Node, pgboss_dirs: dict[str, Path]) -> Iterator[dict[str, Template]]:
    """One template database per major, holding the outcomes of `scenario.mjs outcomes`."""
    out = {}
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for major in VERSIONS:
            name = f"tmpl_pgboss{major}_{uuid.uuid4().hex[:8]}"
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            started = dt.datetime.now(dt.UTC)
            stdout = run_node(node, pgboss_dirs[major], with_dbname(pg_server_url, name), "outcomes")
            out[major] = Template(major, name, json.loads(stdout.strip().splitlines()[-1]), started)
    yield out
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for t in out.values():
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(t.name)))


@pytest.fixture
def copy_db(pg_server_url: str) -> Iterator[Callable[[Template], str]]:
    """Make a fresh database from a template; returns its URL. Dropped after the test."""
    made: list[str] = []

    def make(template: Template) -> str:
        name = f"t_{template.major}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template.name)
                )
            )
        made.append(name)
        return with_dbname(pg_server_url, name)

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def runbook_for(
    url: str,
    *,
    statement_timeout: float = 5.0,
    legacy: LegacySettings | None = None,
    pgboss_schema: str = "pgboss",
) -> Runbook:
    settings = Settings(
        database=DatabaseSettings(url=url, statement_timeout=statement_timeout, connect_timeout=2.0),
        pgboss=PgBossSettings(schema=pgboss_schema),
        legacy=legacy or LegacySettings(),
    )
    return Runbook(version=1, name="test", settings=settings, flags=(), stages=(Stage(id="s1"),))


def measure(
    kind: str, params: Any, url: str, *, entered: dt.datetime | None = None, **rb: Any
) -> Measurement:
    """Measure once through the real engine context (read-only connection with statement_timeout)."""
    from runbook.checks import get_kind

    with CheckRunContext(runbook_for(url, **rb), stage_id="s1", stage_entered_at=entered) as ctx:
        return get_kind(kind).measure(params, ctx)


def pb(url: str, **params: Any) -> Measurement:
    """Measure the `pgboss` kind with these params (`entered` and `statement_timeout` go to the context)."""
    from runbook.checks.pgboss import PgBossParams

    entered = params.pop("entered", None)
    timeout = params.pop("statement_timeout", 5.0)
    return measure("pgboss", PgBossParams(**params), url, entered=entered, statement_timeout=timeout)


def execute(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement as the test (not read-only) and return its rows, if any."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def closed_port_url() -> str:
    """A PostgreSQL URL on a local port nobody listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://postgres:secret-pw@127.0.0.1:{port}/app"


class NodeWorker:
    """A node process with `work()` running; killed with SIGKILL (a crash) or at the end of the test."""

    def __init__(
        self,
        node: Node,
        folder: Path,
        url: str,
        queue: str,
        *,
        fast_monitor: bool = False,
        registry: bool = True,
    ) -> None:
        env = {**node.env(), "DATABASE_URL": url, "PGBOSS_SCHEMA": "pgboss"}
        if fast_monitor:
            env["FAST_MONITOR"] = "1"
        if not registry:
            env["NO_REGISTRY"] = "1"
        self.proc = subprocess.Popen(
            [str(node.node), "scenario.mjs", "worker", queue],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()
        self.lines: list[str] = []
        self.pid = 0
        """The node process itself (the `node` on PATH may be a wrapper that spawns it)."""

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                if line.startswith("READY"):
                    self.pid = int(line.split()[1])
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            self.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"worker did not start: {err[-2000:]}")

    def kill(self) -> None:
        """kill -9 of the node process: no stop(), no cleanup, exactly like a crash."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


def poll(
    fn: Callable[[], Measurement], until: Callable[[Measurement], bool], timeout: float = 30.0
) -> Measurement:
    """Measure repeatedly until `until` holds or `timeout` passes; the last measurement either way."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        m = fn()
        if until(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.3)
