"""Bad input to `migrate transfer legacy`: a clear error naming the fix, exit 2 (or 5 for an unreachable
database), and nothing moved: the legacy rows still PENDING, no job in pg-boss, no transfer recorded."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.transfer.conftest import RUNBOOK, migrate, pending_rows, sql_rows, write_runbook

CASES = [
    (
        "missing-data-column",
        RUNBOOK.replace("data: {evaluationId: evaluationId}", "data: {evaluationId: evaluationID}"),
        ["--queue", "evals"],
        2,
        'column "evaluationID" named by settings.transfer.data.evaluationId does not exist in "public"."Job"',
    ),
    (
        "missing-marker-column",
        RUNBOOK.replace("marker_column: cancellationReason", "marker_column: pgBossJobId"),
        ["--queue", "evals"],
        2,
        'column "pgBossJobId" named by settings.transfer.marker_column does not exist',
    ),
    (
        "missing-queue",
        RUNBOOK,
        ["--queue", "nope"],
        2,
        'pg-boss queue "nope" does not exist in schema "pgboss"',
    ),
    (
        "stately-queue",
        RUNBOOK,
        ["--queue", "stately"],
        2,
        'pg-boss queue "stately" has policy "stately"',
    ),
    (
        "pgboss-9",
        RUNBOOK.replace("  flags: {type", "  pgboss: {schema: oldboss}\n  flags: {type"),
        ["--queue", "evals"],
        2,
        'pg-boss schema "oldboss" has version 20, the layout of pg-boss 9 or older',
    ),
    (
        "pgboss-not-installed",
        RUNBOOK.replace("  flags: {type", "  pgboss: {schema: noboss}\n  flags: {type"),
        ["--queue", "evals"],
        2,
        'pg-boss schema "noboss" not installed',
    ),
    (
        "type-without-type-column",
        RUNBOOK,
        ["--queue", "evals", "--type", "import"],
        2,
        "--type and settings.transfer.queues need a type column",
    ),
    (
        "two-databases",
        RUNBOOK.replace(
            "  flags: {type", "  pgboss: {url: 'postgresql://x@127.0.0.1:1/other'}\n  flags: {type"
        ),
        ["--queue", "evals"],
        2,
        "name different databases",
    ),
    (
        "bad-namespace",
        RUNBOOK.replace("  transfer:\n", "  transfer:\n    namespace: not-a-uuid\n"),
        ["--queue", "evals"],
        2,
        "settings.transfer.namespace is not a UUID",
    ),
    (
        "archive-without-table",
        RUNBOOK.replace("  transfer:\n", "  transfer:\n    moved: archive\n"),
        ["--queue", "evals"],
        2,
        "settings.transfer.archive_table is not set",
    ),
]


@pytest.mark.parametrize(("name", "text", "args", "code", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_nothing_moves(
    name: str,
    text: str,
    args: list[str],
    code: int,
    message: str,
    database: Callable[[str], str],
    tmp_path: Path,
) -> None:
    url = database("12")
    pending_rows(url, 5)
    sql_rows(url, "SELECT pgboss.create_queue('stately', '{\"policy\": \"stately\"}'::jsonb)")
    sql_rows(
        url,
        "CREATE SCHEMA oldboss; CREATE TABLE oldboss.version (version int);"
        " INSERT INTO oldboss.version VALUES (20);"
        " CREATE TABLE oldboss.job (id uuid, name text, createdon timestamptz)",
    )
    runbook = write_runbook(tmp_path, text)
    res = migrate(runbook, url, "-o", "json", "transfer", "legacy", *args)
    assert res.exit_code == code, res.output
    error = json.loads(res.stdout)["error"]
    assert message in error["message"], error
    assert error["hint"]
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'PENDING'""") == [(5,)]
    assert sql_rows(url, "SELECT count(*) FROM pgboss.job") == [(0,)]


def test_unreachable_database_is_exit_5(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runbook = write_runbook(tmp_path)
    res = migrate(
        runbook, f"postgresql://postgres:pw@127.0.0.1:{port}/app", "transfer", "legacy", "--queue", "q"
    )
    assert res.exit_code == 5
    assert "could not connect to the application database" in res.stderr and "pw" not in res.stderr


def test_a_row_postgresql_refuses_rolls_its_batch_back(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    """A text data column holding something that is not JSON: the batch is rolled back (exit 1), the batch
    before it stays moved, and the failed transfer is in the history with its counts."""
    url = database("12")
    ids = pending_rows(url, 6)
    sql_rows(url, """UPDATE "Job" SET "logs" = '{"step": 1}'""")
    sql_rows(url, """UPDATE "Job" SET "logs" = 'not json' WHERE "id" = %s""", (ids[4],))
    runbook = write_runbook(
        tmp_path, RUNBOOK.replace("  transfer:\n", "  transfer:\n    data_column: logs\n")
    )
    res = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--batch", "3")
    assert res.exit_code == 1, res.output
    assert (
        "PostgreSQL refused a batch: invalid input syntax for type json"
        in json.loads(res.stdout)["error"]["message"]
    )
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'PENDING'""") == [(3,)]
    assert sql_rows(url, "SELECT data->>'step', count(*) FROM pgboss.job GROUP BY 1") == [("1", 3)]
    history = json.loads(migrate(runbook, url, "-o", "json", "history", "--operation", "transfer").stdout)
    [event] = history["events"]
    assert event["outcome"] == "failed" and event["data"]["moved"] == 3
