"""`migrate transfer legacy --filter SQL`: an extra condition ANDed into the claim, on real PostgreSQL and
pg-boss 12. Only matching rows move, the dry run counts with it, the event records it; a filter that could
escape its parentheses or that PostgreSQL cannot plan is exit 2 naming --filter, with nothing moved."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runbook.exitcodes import ExitCode
from tests.integration.transfer.conftest import migrate, pending_rows, sql_rows, write_runbook

FILTER = """"evaluationId" LIKE 'keep-%'"""


def test_only_rows_matching_the_filter_move_and_the_event_records_it(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database("12")
    keep = pending_rows(url, 7, evaluation="keep")
    pending_rows(url, 5, evaluation="other")
    runbook = write_runbook(tmp_path)
    dry = migrate(
        runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--filter", FILTER, "--dry-run"
    )
    assert dry.exit_code == ExitCode.OK, dry.output
    assert json.loads(dry.stdout)["counts"] == {"*": 7}
    assert json.loads(dry.stdout)["filter"] == FILTER
    text = migrate(runbook, url, "transfer", "legacy", "--queue", "evals", "--filter", FILTER, "--dry-run")
    assert f"filter: {FILTER}" in text.stdout and "Would move 7 rows." in text.stdout

    res = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--filter", FILTER)
    assert res.exit_code == ExitCode.OK, res.output
    assert json.loads(res.stdout)["totals"]["moved"] == 7
    moved = sql_rows(url, """SELECT "id" FROM "Job" WHERE status = 'CANCELLED' ORDER BY "id\"""")
    assert [r[0] for r in moved] == sorted(keep)
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'PENDING'""") == [(5,)]
    data = sql_rows(url, "SELECT data FROM runbook.events WHERE operation = 'transfer'")
    assert [(d[0]["filter"], d[0]["moved"]) for d in data] == [(FILTER, 7)]


BAD = [
    ("statement", 'true; DELETE FROM "Job"', "holds a `;`"),
    ("line-comment", "true -- and the rest", "holds a comment"),
    ("block-comment", "true /* x */", "holds a comment"),
    ("escapes-parentheses", "false) OR (true", "closes a parenthesis it did not open"),
    ("open-parenthesis", "(true", "leaves a parenthesis open"),
    ("unterminated-quote", '"evaluationId" = \'x', "has an unterminated quote"),
    ("empty", "  ", "is empty"),
    ("unknown-column", "\"evaluationID\" = 'x'", 'column "evaluationID" does not exist'),
    ("not-boolean", '"attempts" + 1', "must be type boolean"),
    ("syntax", '"attempts" >', "syntax error"),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_filter_is_exit_2_naming_the_option_and_moves_nothing(
    case: str, text: str, message: str, database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database("12")
    pending_rows(url, 3)
    runbook = write_runbook(tmp_path)
    res = migrate(runbook, url, "transfer", "legacy", "--queue", "evals", "--filter", text)
    assert res.exit_code == ExitCode.USAGE, (case, res.output)
    assert "--filter" in res.stderr and message in res.stderr, res.stderr
    if case == "unknown-column":  # the hint shows how this table's columns are written
        assert 'its columns: id, status, attempts, error, "startedAt"' in res.stderr, res.stderr
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'PENDING'""") == [(3,)]
    assert sql_rows(url, "SELECT count(*) FROM pgboss.job WHERE name = 'evals'") == [(0,)]


def test_quotes_and_dollar_quotes_may_hold_what_is_refused_outside_them(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database("12")
    pending_rows(url, 2, evaluation="a;b)--")
    pending_rows(url, 1)
    runbook = write_runbook(tmp_path)
    text = """"evaluationId" LIKE 'a;b)--%' OR "evaluationId" = $q$;/*$q$"""
    res = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--filter", text)
    assert res.exit_code == ExitCode.OK, res.output
    assert json.loads(res.stdout)["totals"]["moved"] == 2
