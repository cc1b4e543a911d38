"""A legacy table the shipped runbook does not use: another schema, table and column names, a bigint id, a
type column routing rows to two queues, a jsonb data column merged with mapped columns, job options (priority,
retry limit, expiry, start-after from a column, one overdue by 20 days: older than the queue's retention) and
moved rows archived. Real pg-boss 10 and 12 run their maintenance, then work them: the overdue one too."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.transfer.conftest import MAJORS, Boss, migrate, sql_rows, write_runbook

DDL = """
CREATE SCHEMA jobs;
CREATE TABLE jobs.work_items (
  item_id bigint PRIMARY KEY, kind text NOT NULL, state text NOT NULL DEFAULT 'queued',
  payload jsonb, run_at timestamptz, inserted_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE jobs.work_items_moved (LIKE jobs.work_items);
INSERT INTO jobs.work_items (item_id, kind, state, payload, run_at, inserted_at)
SELECT i, CASE WHEN i IN (1, 3, 6) THEN 'eval' ELSE 'import' END,
       CASE WHEN i = 6 THEN 'taken' ELSE 'queued' END,
       jsonb_build_object('doc', i,
                          'nested', jsonb_build_object('tags', jsonb_build_array('a', i), 'price', 1.25)),
       CASE WHEN i = 5 THEN now() + interval '1 hour' WHEN i = 7 THEN now() - interval '20 days' END,
       now() - interval '1 hour' + i * interval '1 s'
FROM generate_series(1, 7) AS i;
"""
RUNBOOK = """\
version: 1
name: other-app
settings:
  database: {url: "${DATABASE_URL}"}
  flags: {type: dotenv, path: app.env}
  legacy:
    schema: jobs
    table: work_items
    id_column: item_id
    status_column: state
    created_column: inserted_at
    started_column: null
    completed_column: null
    type_column: kind
    pending: [queued]
    running: [taken]
    done: [done]
    failed: [failed]
    cancelled: [moved]
  transfer:
    queues: {eval: evals, import: imports}
    data_column: payload
    data: {kind: kind}
    legacy_id_key: itemId
    priority: 5
    retry_limit: 1
    expire_in: 30s
    start_after_column: run_at
    moved: archive
    archive_table: work_items_moved
flags:
  PGBOSS_ENABLED: false
stages:
  - id: legacy
"""


def expected_data(i: int, kind: str) -> dict[str, object]:
    return {"doc": i, "nested": {"tags": ["a", i], "price": 1.25}, "kind": kind, "itemId": i}


@pytest.mark.parametrize("major", MAJORS)
def test_another_table_with_types_json_data_and_archive(
    major: str, bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database(major)
    sql_rows(url, DDL)
    runbook = write_runbook(tmp_path, RUNBOOK)

    dry = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "imports", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["counts"] == {"import": 4}

    res = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "imports")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["totals"]["moved"] == 4
    res = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--type", "eval")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["totals"]["moved"] == 2

    assert sql_rows(url, "SELECT item_id, state FROM jobs.work_items") == [(6, "taken")]
    assert sorted(r[0] for r in sql_rows(url, "SELECT item_id FROM jobs.work_items_moved")) == [
        1,
        2,
        3,
        4,
        5,
        7,
    ]
    expiry = "expire_in" if major == "10" else "expire_seconds * interval '1s'"
    jobs = {
        r[1]["itemId"]: r
        for r in sql_rows(
            url,
            f"SELECT name, data, priority, retry_limit, {expiry}, start_after > now() + interval '50 minutes'"
            " FROM pgboss.job WHERE name IN ('evals', 'imports')",
        )
    }
    assert sorted(jobs) == [1, 2, 3, 4, 5, 7]
    for i, (name, data, priority, retry_limit, expire, deferred) in jobs.items():
        kind = "eval" if i in (1, 3) else "import"
        assert name == {"eval": "evals", "import": "imports"}[kind]
        assert data == expected_data(i, kind)
        assert (priority, retry_limit, expire, deferred) == (5, 1, dt.timedelta(seconds=30), i == 5)

    overdue = sql_rows(
        url,
        "SELECT j.start_after = w.run_at, j.keep_until > now() + interval '13 days' FROM pgboss.job j"
        " JOIN jobs.work_items_moved w ON (j.data->>'itemId')::bigint = w.item_id WHERE w.item_id = 7",
    )
    # startAfter kept; keep_until from now, not from 20 days ago (pg-boss's maintenance would drop it unrun)
    assert overdue == [(True, True)]
    bosses[major].run(url, "maintain", "imports")
    worked = bosses[major].run(url, "work", "imports", "3")  # 5 is deferred by an hour: not fetched
    assert sorted(j["data"]["itemId"] for j in worked) == [2, 4, 7]
    assert all(j["data"] == expected_data(j["data"]["itemId"], "import") for j in worked)


def test_moved_rows_get_the_runbooks_own_cancelled_status(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database("12")
    sql_rows(url, DDL)
    cancel = RUNBOOK.replace("    moved: archive\n    archive_table: work_items_moved\n", "")  # moved: cancel
    res = migrate(
        write_runbook(tmp_path, cancel), url, "-o", "json", "transfer", "legacy", "--queue", "imports"
    )
    assert res.exit_code == 0, res.output
    states = dict(sql_rows(url, "SELECT item_id, state FROM jobs.work_items ORDER BY item_id"))
    assert states == {1: "queued", 2: "moved", 3: "queued", 4: "moved", 5: "moved", 6: "taken", 7: "moved"}
    named = cancel.replace(
        "    data_column: payload\n", "    data_column: payload\n    moved_status: handed_over\n"
    )
    res = migrate(
        write_runbook(tmp_path, named), url, "transfer", "legacy", "--queue", "evals", "--type", "eval"
    )
    assert res.exit_code == 0, res.output
    assert sql_rows(url, "SELECT state FROM jobs.work_items WHERE item_id IN (1, 3) ORDER BY item_id") == [
        ("handed_over",),
        ("handed_over",),
    ]
