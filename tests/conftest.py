"""Shared fixtures: a real PostgreSQL server (TEST_DATABASE_URL, or an embedded one started once per
session) and a fresh database per test."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runbook.embedded import EmbeddedPostgres
from runbook.embedded import fresh_database as fresh_database  # tests import these two from here
from runbook.embedded import with_dbname as with_dbname

os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="runbook-xdg-"))
# Loaded runbooks are cached (runbook/spec/cache.py): every test and every `migrate` it starts uses one
# folder of this run, so the cache is exercised everywhere and nothing is left in the user's home.
os.environ.setdefault("RUNBOOK_SPEC_CACHE", tempfile.mkdtemp(prefix="runbook-spec-cache-"))
REPO = Path(__file__).resolve().parent.parent
COUNTS: list[str] = []
"""The reliability suites' count lines (tests/reliability/conftest.py `record`), repeated at the end."""


SLOW_FIRST = (
    "tests/reliability/test_concurrency.py",  # 3-6 minutes alone: started first, it ends before the rest
    "tests/e2e/test_migration_demo.py",
    "tests/reliability/",
    "tests/e2e/",
)
"""Folders whose files take longest: collected first, so pytest-xdist hands them out before the short ones
(`make test` passes --no-loadscope-reorder: by default xdist orders files by their number of tests, and the
one-test concurrency file started last, running alone for 6 minutes at the end)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid
        return next((i for i, prefix in enumerate(SLOW_FIRST) if path.startswith(prefix)), len(SLOW_FIRST))

    items.sort(key=rank)  # stable: the order inside a file is kept


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On a pytest-xdist worker: hand this worker's count lines to the controller."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["reliability_counts"] = json.dumps(COUNTS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """On the pytest-xdist controller: gather a finished worker's count lines."""
    COUNTS.extend(json.loads(getattr(node, "workeroutput", {}).get("reliability_counts", "[]")))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if COUNTS:
        terminalreporter.section("reliability counts")
        for line in sorted(COUNTS):
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server the tests may create databases on."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    server = EmbeddedPostgres()
    yield server.start()
    server.stop()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty database for this test; dropped afterwards."""
    with fresh_database(pg_server_url, "t") as url:
        yield url
