"""Real PostgreSQL, real pg-boss 10.x and 12.x and the real Prisma "Job" table for `migrate transfer legacy`.

Per major, one template database is made once per session (the legacy table, pg-boss installed by its own
`start()`, queues made by its own `createQueue`); each test gets a copy (`CREATE DATABASE ... TEMPLATE`)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from bench.scaledata import transfer_runbook
from runbook.cli import main
from runbook.toolchain import Node, ensure_pgboss, find_node, installed_pgboss_version, run_script
from tests.conftest import with_dbname
from tests.integration.checks_pg.legacy_app import DDL

JS = Path(__file__).parent / "js"
MAJORS = ("10", "12")
QUEUES = ("evals", "imports", "ref")
QUEUE_OPTIONS = {"retryLimit": 4, "retryDelay": 3, "expireInSeconds": 120}
"""Options of the template's queues (pg-boss's createQueue): moved jobs take their defaults from them."""
RUNBOOK = transfer_runbook("transfer-test")


@dataclass(frozen=True)
class Boss:
    """A folder holding boss.mjs beside one major's real pg-boss."""

    major: str
    version: str
    folder: Path
    node: Node

    def run(self, url: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Any:
        """Run boss.mjs; its last stdout line, parsed (raises with stderr on failure)."""
        full = {**self.node.env(), "DATABASE_URL": url, "PGBOSS_SCHEMA": "pgboss", **(env or {})}
        out = run_script(self.node.node, self.folder, "boss.mjs", *args, env=full, timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def bosses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Boss]:
    node = find_node()
    out = {}
    for major in MAJORS:
        installed = ensure_pgboss(major, node)
        folder = tmp_path_factory.mktemp(f"transfer-pgboss{major}")
        shutil.copy(JS / "boss.mjs", folder / "boss.mjs")
        (folder / "node_modules").symlink_to(installed / "node_modules")
        out[major] = Boss(major, installed_pgboss_version(installed), folder, node)
    return out


@pytest.fixture(scope="session")
def templates(pg_server_url: str, bosses: dict[str, Boss]) -> Iterator[dict[str, str]]:
    """Per major, a template database: the legacy "Job" table, pg-boss installed, QUEUES created."""
    names: dict[str, str] = {}
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for major, boss in bosses.items():
            name = f"tmpl_transfer{major}_{uuid.uuid4().hex[:8]}"
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            names[major] = name
            url = with_dbname(pg_server_url, name)
            with psycopg.connect(url, autocommit=True) as db:
                db.execute(DDL)
            boss.run(url, "setup", *QUEUES, env={"QUEUE_OPTIONS": json.dumps(QUEUE_OPTIONS)})
    yield names
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in names.values():
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def database(pg_server_url: str, templates: dict[str, str]) -> Iterator[Callable[[str], str]]:
    """Make a fresh copy of a major's template; returns its URL; dropped after the test."""
    made: list[str] = []

    def make(major: str) -> str:
        name = f"t_transfer{major}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(templates[major])
                )
            )
        made.append(name)
        return with_dbname(pg_server_url, name)

    yield make
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def write_runbook(folder: Path, text: str = RUNBOOK) -> Path:
    path = folder / "stages.yaml"
    path.write_text(text)
    return path


def migrate(runbook: Path, url: str, *args: str) -> Result:
    """Run `migrate -f RUNBOOK ARGS` in this process (CliRunner, exceptions not caught)."""
    env = {**os.environ, "DATABASE_URL": url}
    return CliRunner().invoke(main, ["-f", str(runbook), *args], env=env, catch_exceptions=False)


def sql_rows(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def pending_rows(url: str, n: int, *, evaluation: str = "eval") -> list[str]:
    """Insert n PENDING rows (oldest first), as the legacy app creates them; their ids."""
    ids = [f"job-{i:05d}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    sql_rows(
        url,
        'INSERT INTO "Job" ("id", "evaluationId", "createdAt", "updatedAt")'
        " SELECT id, %s || '-' || ord,"
        " (now() AT TIME ZONE 'UTC') - interval '1 hour' + ord * interval '1 ms',"
        " (now() AT TIME ZONE 'UTC') - interval '1 hour'"
        " FROM unnest(%s::text[]) WITH ORDINALITY AS u(id, ord)",
        (evaluation, ids),
    )
    return ids
