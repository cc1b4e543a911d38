"""Bad input to `migrate transfer legacy`: a clear error naming the fix, exit 2 (or 5 for an unreachable
database), and nothing moved: the legacy rows still PENDING, no job in pg-boss, no transfer recorded."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import with_dbname
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
        RUNBOOK.replace("  flags: {type", "  pgboss: {url: 'OTHER_DATABASE'}\n  flags: {type"),
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
    (
        "archive-table-missing",
        RUNBOOK.replace("  transfer:\n", "  transfer:\n    moved: archive\n    archive_table: JobGone\n"),
        ["--queue", "evals"],
        2,
        'archive table "public"."JobGone" (settings.transfer.archive_table) does not exist',
    ),
    (
        "archive-table-of-other-columns",
        RUNBOOK.replace("  transfer:\n", "  transfer:\n    moved: archive\n    archive_table: JobOther\n"),
        ["--queue", "evals"],
        2,
        'column 2 should be "status" "JobStatus", it is "state" text',
    ),
    (
        "marker-column-not-text",
        RUNBOOK.replace("marker_column: cancellationReason", "marker_column: attempts"),
        ["--queue", "evals"],
        2,
        'column "attempts" named by settings.transfer.marker_column is integer; it must hold a job id',
    ),
    (
        "marker-column-too-short",
        RUNBOOK.replace("marker_column: cancellationReason", "marker_column: shortRef"),
        ["--queue", "evals"],
        2,
        "named by settings.transfer.marker_column is character varying(12)",
    ),
    (
        "marker-column-generated",
        RUNBOOK.replace("marker_column: cancellationReason", "marker_column: tag"),
        ["--queue", "evals"],
        2,
        'column "tag" of "public"."Job", which the transfer writes to mark a moved row, is generated',
    ),
    (
        "updated-column-not-a-time",
        RUNBOOK.replace("updated_column: updatedAt", "updated_column: attempts"),
        ["--queue", "evals"],
        2,
        "named by settings.transfer.updated_column is integer; it must hold a time",
    ),
    (
        "start-after-column-not-a-time",
        RUNBOOK.replace("  transfer:\n", "  transfer:\n    start_after_column: error\n"),
        ["--queue", "evals", "--dry-run"],
        2,
        'column "error" named by settings.transfer.start_after_column is text; it must hold a time',
    ),
    (
        "data-column-not-json",
        RUNBOOK.replace("  transfer:\n", "  transfer:\n    data_column: attempts\n"),
        ["--queue", "evals", "--dry-run"],
        2,
        "named by settings.transfer.data_column is integer; it must hold JSON",
    ),
]
SETUP = """
CREATE TABLE "JobOther" (id text, state text);
ALTER TABLE "Job" ADD COLUMN "shortRef" varchar(12), ADD COLUMN tag text GENERATED ALWAYS AS ('x') STORED;
"""
"""What the cases name: an archive table of other columns, a marker column too short for a job id, and a
generated one."""


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
    sql_rows(url, SETUP)
    runbook = write_runbook(tmp_path, text.replace("OTHER_DATABASE", with_dbname(url, "postgres")))
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
    """A text data column holding something that is not JSON: the batch is rolled back (exit 1) and its
    first such row named, the batch before it stays moved, and the failed transfer is in the history with
    its counts."""
    url = database("12")
    ids = pending_rows(url, 6)
    sql_rows(url, """UPDATE "Job" SET "logs" = '{"step": 1}'""")
    sql_rows(url, """UPDATE "Job" SET "logs" = 'not json' WHERE "id" = %s""", (ids[4],))
    runbook = write_runbook(
        tmp_path, RUNBOOK.replace("  transfer:\n", "  transfer:\n    data_column: logs\n")
    )
    res = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--batch", "3")
    assert res.exit_code == 1, res.output
    message = json.loads(res.stdout)["error"]["message"]
    assert (
        f'PostgreSQL refused a batch: legacy row {ids[4]} has text in settings.transfer.data_column "logs"'
        ' that is not JSON (invalid input syntax for type json: Token "not" is invalid)' in message
    )  # the row is named (PostgreSQL's cast error names none); the first bad one of its batch
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'PENDING'""") == [(3,)]
    assert sql_rows(url, "SELECT data->>'step', count(*) FROM pgboss.job GROUP BY 1") == [("1", 3)]
    history = json.loads(migrate(runbook, url, "-o", "json", "history", "--operation", "transfer").stdout)
    [event] = history["events"]
    assert event["outcome"] == "failed" and event["data"]["moved"] == 3


def test_a_dry_run_on_a_row_that_does_not_fit_says_so_without_a_traceback(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    """A text data column whose sample row is not JSON: the dry run says which setting and row kind failed,
    exit 1 as the run itself, no traceback; nothing locked or written."""
    url = database("12")
    ids = pending_rows(url, 2)
    sql_rows(url, """UPDATE "Job" SET "logs" = 'not json' WHERE "id" = %s""", (ids[1],))
    runbook = write_runbook(
        tmp_path, RUNBOOK.replace("  transfer:\n", "  transfer:\n    data_column: logs\n")
    )
    res = migrate(runbook, url, "transfer", "legacy", "--queue", "evals", "--dry-run")
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert (
        f"the dry run's sample could not be built: legacy row {ids[1]} has text in "
        'settings.transfer.data_column "logs" that is not JSON (invalid input syntax for type json: '
        'Token "not" is invalid)' in res.stderr
    )
    assert "settings.transfer" in res.stderr
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'PENDING'""") == [(2,)]


@pytest.mark.parametrize("value", ['"a string"', "[1, 2]", "42"])
def test_a_data_column_that_is_not_an_object_refuses_its_row_by_id(
    database: Callable[[str], str], tmp_path: Path, value: str
) -> None:
    """JSON that is not an object in the data column (a string, an array, a number): the mapped keys cannot
    be merged into it. The row is refused naming its id and the setting (exit 1; the dry run too); it used to
    become a job whose data was an array holding the value and the keys, legacyJobId no longer a key of it.
    SQL NULL and JSON null are the empty object, the mapped keys added."""
    url = database("12")
    ids = pending_rows(url, 4)
    sql_rows(url, """UPDATE "Job" SET "logs" = '{"step": 1}'""")
    sql_rows(url, """UPDATE "Job" SET "logs" = NULL WHERE "id" = %s""", (ids[0],))
    sql_rows(url, """UPDATE "Job" SET "logs" = 'null' WHERE "id" = %s""", (ids[1],))
    sql_rows(url, """UPDATE "Job" SET "logs" = %s WHERE "id" = %s""", (value, ids[2]))
    runbook = write_runbook(
        tmp_path, RUNBOOK.replace("  transfer:\n", "  transfer:\n    data_column: logs\n")
    )
    kind = {'"a string"': "string", "[1, 2]": "array", "42": "number"}[value]
    want = f'legacy row {ids[2]} has a JSON {kind} in settings.transfer.data_column "logs", not an object'
    dry = migrate(runbook, url, "transfer", "legacy", "--queue", "evals", "--dry-run")
    assert dry.exit_code == 1, dry.output
    assert want in dry.stderr and "::int" not in dry.stderr and "integer" not in dry.stderr
    res = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--batch", "1")
    assert res.exit_code == 1, res.output
    assert want in json.loads(res.stdout)["error"]["message"]
    assert sql_rows(url, 'SELECT "id" FROM "Job" WHERE status = %s ORDER BY "id"', ("PENDING",)) == [
        (i,) for i in ids[2:]
    ]
    jobs = sql_rows(url, "SELECT data FROM pgboss.job WHERE name = 'evals' ORDER BY data->>'legacyJobId'")
    assert [j[0]["legacyJobId"] for j in jobs] == ids[:2]
    assert all(isinstance(j[0], dict) and "step" not in j[0] for j in jobs)
    history = json.loads(migrate(runbook, url, "-o", "json", "history", "--operation", "transfer").stdout)
    assert want in history["events"][0]["reason"]


def test_one_database_under_two_urls_is_one_database(database: Callable[[str], str], tmp_path: Path) -> None:
    """settings.pgboss.url spelled otherwise than the legacy one but reaching the same database: moved in one
    transaction a batch, as with one URL (it was refused as two databases)."""
    url = database("12")
    pending_rows(url, 4)
    other = f"{url}{'&' if '?' in url else '?'}application_name=pgboss-side"
    text = RUNBOOK.replace("  flags: {type", f"  pgboss: {{url: '{other}'}}\n  flags: {{type")
    res = migrate(write_runbook(tmp_path, text), url, "-o", "json", "transfer", "legacy", "--queue", "evals")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["totals"]["moved"] == 4
    assert sql_rows(url, "SELECT count(*) FROM pgboss.job WHERE name = 'evals'") == [(4,)]
