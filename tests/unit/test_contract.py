"""The app contract's schemas and explanations: the shipped schemas are valid draft 2020-12, the runtime
walker (`contract.problems`) agrees with the jsonschema library, and `contract.note` names the contract field
only for the contract's endpoints and fields."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import jsonschema
import pytest

from runbook import contract

HEALTH: dict[str, Any] = {  # GET /api/health of the example app (pg-boss 12, PGBOSS_ENABLED=true)
    "ok": True,
    "pid": 10312,
    "startedAt": "2026-12-03T12:39:30.543Z",
    "uptime": 2.603,
    "memory": {"rss": 93020160, "heapUsed": 14473528, "heapTotal": 33144832, "external": 4234648},
    "flags": {"PGBOSS_ENABLED": True, "PGBOSS_FOR_NEW_EVALS": False, "PGBOSS_FOR_ALL_JOBS": False},
    "flagSource": "postgres",
    "pgboss": {"version": "12.38.0", "major": 12, "started": True, "workers": 15},
}
COUNTS = {"pending": 0, "active": 0, "completed": 1, "failed": 0, "cancelled": 0, "retry": 0, "total": 1}
STATUS: dict[str, Any] = {  # GET /api/admin/pgboss-status of the same app
    "enabled": True,
    "flags": {"PGBOSS_ENABLED": True, "PGBOSS_FOR_NEW_EVALS": False, "PGBOSS_FOR_ALL_JOBS": False},
    "pgboss": {
        "installed": True,
        "schemaVersion": 46,
        "packageVersion": "12.38.0",
        "started": True,
        "workers": 15,
        "error": None,
    },
    "queues": {"import-article": COUNTS, "evaluation": {**COUNTS, "completed": 0, "total": 0}},
    "import_jobs": {"pending": 0, "completed": 1, "failed": 0},
    "evaluation_jobs": None,
    "legacy": {"PENDING": 0, "RUNNING": 0, "COMPLETED": 0, "FAILED": 0, "CANCELLED": 0},
}
PAYLOADS = {"health": HEALTH, "pgboss-status": STATUS}


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def date_time(value: object) -> bool:
    """RFC 3339 date-time (the library checks it only with an optional package installed)."""
    if not isinstance(value, str):
        return True
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


def library_errors(name: str, document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(contract.schema(name), format_checker=FORMATS)
    return sorted(".".join(str(p) for p in e.absolute_path) for e in validator.iter_errors(document))


def changed(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `document` with `path` set to `value` (deleted when value is the DELETE marker)."""
    out = copy.deepcopy(document)
    *parents, last = path.split(".")
    target = out
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return out


DELETE = object()


@pytest.mark.parametrize("name", ["health", "pgboss-status"])
def test_shipped_schemas_are_valid_and_the_example_payloads_conform(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(contract.schema(name))
    assert contract.schema(name)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (library_errors(name, PAYLOADS[name]), contract.problems(name, PAYLOADS[name])) == ([], [])


BOOL = "a boolean (true or false)"
ENABLED = f"{BOOL}, PGBOSS_ENABLED as the running app sees it, true when on"
STARTED = "when the worker process started (ISO 8601 with a time zone, e.g. 2026-12-03T12:39:30.543Z)"
QUEUE = "counts of the import-article queue"
BROKEN = [
    ("health", "memory.rss", DELETE, ["memory.rss: missing (an integer, bytes of resident memory)"]),
    (
        "health",
        "memory.rss",
        "9MB",
        ['memory.rss: "9MB" is a string, expected an integer, bytes of resident memory'],
    ),
    ("health", "memory", None, ["memory: null is null, expected an object, the process's memory in bytes"]),
    ("health", "startedAt", "yesterday", ['startedAt: "yesterday" is not an ISO 8601 time with a zone']),
    (
        "health",
        "startedAt",
        1733229570,
        [f"startedAt: 1733229570 is an integer, expected a string, {STARTED}"],
    ),
    ("health", "pid", 0, ["pid: 0 is below the minimum 1"]),
    ("pgboss-status", "enabled", "yes", [f'enabled: "yes" is a string, expected {ENABLED}']),
    (
        "pgboss-status",
        "flags.PGBOSS_FOR_ALL_JOBS",
        DELETE,
        [f"flags.PGBOSS_FOR_ALL_JOBS: missing ({BOOL}, the flag is on: every new job goes to pg-boss)"],
    ),
    (
        "pgboss-status",
        "flags.MY_FLAG",
        "on",
        [f'flags.MY_FLAG: "on" is a string, expected {BOOL}, the flag is on'],
    ),
    ("pgboss-status", "import_jobs.failed", -1, ["import_jobs.failed: -1 is below the minimum 0"]),
    (
        "pgboss-status",
        "import_jobs",
        {"pending": 1},
        [
            "import_jobs.completed: missing (an integer, jobs completed (job and archive tables))",
            "import_jobs.failed: missing (an integer, jobs failed after their retries)",
        ],
    ),
    ("pgboss-status", "import_jobs", [], [f"import_jobs: [] is not an object or null, {QUEUE}"]),
    ("pgboss-status", "import_jobs", DELETE, [f"import_jobs: missing (an object or null, {QUEUE})"]),
]


@pytest.mark.parametrize(("name", "path", "value", "expected"), BROKEN)
def test_walker_names_each_problem_where_the_library_finds_one(
    name: str, path: str, value: Any, expected: list[str]
) -> None:
    document = changed(PAYLOADS[name], path, value)
    assert contract.problems(name, document) == expected
    assert library_errors(name, document), "the jsonschema library accepts what the walker refuses"


def test_a_document_that_is_not_an_object() -> None:
    assert contract.problems("health", ["ok"]) == [
        '(the document): ["ok"] is an array, expected an object, the app\'s health endpoint'
    ]
    with pytest.raises(FileNotFoundError):
        contract.schema("no-such-endpoint")


SUFFIX = "; docs/app-contract.md); `migrate scaffold` writes these endpoints"
NOT_SERVED = "the app does not serve GET {} (the app contract" + SUFFIX
RSS = "GET /api/health has no `memory.rss` (the app contract: an integer, bytes of resident memory" + SUFFIX
STATUS_URL = "/api/admin/pgboss-status"
NOTES = [
    ("http://app:3000/api/health", {"status": 404}, NOT_SERVED.format("/api/health")),
    ("https://x/base/api/admin/pgboss-status?x=1", {"status": 405}, NOT_SERVED.format(STATUS_URL)),
    ("/api/health", {"document": {"memory": {}}, "paths": [("memory", "rss")]}, RSS),
    ("/api/health", {"document": {}, "paths": [("memory", "rss")]}, RSS),
    (
        "/api/health",
        {"document": {"memory": 3}, "paths": [("memory", "rss")]},
        "GET /api/health has `memory` = 3, an integer"
        " (the app contract: an object, the process's memory in bytes" + SUFFIX,
    ),
    (
        STATUS_URL,
        {"document": {"enabled": "yes"}, "paths": [("enabled",)]},
        f'GET {STATUS_URL} has `enabled` = "yes", a string (the app contract: {ENABLED}' + SUFFIX,
    ),
    (
        STATUS_URL,
        {"document": {"flags": {}}, "paths": [("enabled",), ("flags", "NEW_FLAG")]},
        f"GET {STATUS_URL} has no `enabled` (the app contract: {ENABLED}" + SUFFIX,
    ),
    (
        STATUS_URL,
        {"document": {"flags": {}}, "paths": [("flags", "NEW_FLAG")]},
        f"GET {STATUS_URL} has no `flags.NEW_FLAG` (the app contract: {BOOL}, the flag is on" + SUFFIX,
    ),
    (
        "/api/health",
        {"document": {"startedAt": "soon"}, "paths": [("startedAt",)]},
        'GET /api/health has `startedAt` = "soon", not an ISO 8601 time with a zone'
        f" (the app contract: a string, {STARTED}" + SUFFIX,
    ),
]


@pytest.mark.parametrize(("url", "given", "expected"), NOTES)
def test_note_names_the_contract_field(url: str, given: dict[str, Any], expected: str) -> None:
    assert contract.note(url, "GET", **given) == expected


QUIET = [
    ("/api/other", {"status": 404}),  # not an endpoint of the contract
    ("/api/healthz", {"document": {}, "paths": [("memory", "rss")]}),
    ("/api/health", {"status": 500}),  # a server error is not a contract problem
    ("/api/health", {"document": {"memory": {}}, "paths": [("memory", "heap")]}),  # a field it does not name
    ("/api/health", {"document": HEALTH, "paths": [("memory", "rss"), ("startedAt",)]}),  # all present
    ("/api/admin/pgboss-status", {"document": {"import_jobs": None}, "paths": [("import_jobs", "failed")]}),
    ("/api/admin/pgboss-status", {"document": {"enabled": False}, "paths": [("enabled",)]}),  # right type
]


@pytest.mark.parametrize(("url", "given"), QUIET)
def test_no_note_outside_the_contract_or_when_it_holds(url: str, given: dict[str, Any]) -> None:
    assert contract.note(url, "GET", **given) is None
