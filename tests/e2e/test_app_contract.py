"""The example app keeps the app contract (docs/app-contract.md): its /api/health and /api/admin/pgboss-status
answers validate against the shipped JSON Schemas (the jsonschema library and runbook's own walker) before
pg-boss starts and after it processed a job, on pg-boss 10 and 12, and a flip written as the postgres flag
backend writes it is seen by the status endpoint within the contract's 1 s."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import jsonschema
import pytest

from runbook import contract
from runbook.flags.postgres import PostgresFlagBackend
from tests.e2e.conftest import MAJORS, AppFactory, eventually

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    return (
        not isinstance(value, str)
        or dt.datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
    )


def conforms(name: str, document: Any) -> None:
    validator = jsonschema.Draft202012Validator(contract.schema(name), format_checker=FORMATS)
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    assert (errors, contract.problems(name, document)) == ([], []), document


@pytest.mark.parametrize("major", MAJORS)
def test_example_app_payloads_keep_the_contract(major: str, make_app: AppFactory, pg_url: str) -> None:
    app = make_app(major)
    status = app.status()
    assert (status["enabled"], status["import_jobs"]) == (False, None)  # before pg-boss: null counts
    conforms("health", app.health())
    conforms("pgboss-status", status)

    backend = PostgresFlagBackend(pg_url)  # the table and NOTIFY exactly as `migrate advance` writes them
    started = time.monotonic()
    backend.write({"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false", "PGBOSS_FOR_ALL_JOBS": "false"})
    eventually(app.status, lambda s: s["enabled"] is True, timeout=5)
    seen = time.monotonic() - started
    assert seen < 1.0, f"the flip took {seen:.2f} s to reach /api/admin/pgboss-status"

    assert app.import_article("https://example.com/contract")["routedTo"] == "pgboss"
    status = eventually(app.status, lambda s: (s["import_jobs"] or {}).get("completed") == 1)
    assert status["flags"] == {
        "PGBOSS_ENABLED": True,
        "PGBOSS_FOR_NEW_EVALS": False,
        "PGBOSS_FOR_ALL_JOBS": False,
    }
    assert status["pgboss"]["started"] is True and status["pgboss"]["error"] is None
    conforms("pgboss-status", status)
    health = app.health()
    conforms("health", health)
    assert health["memory"]["rss"] > 0
