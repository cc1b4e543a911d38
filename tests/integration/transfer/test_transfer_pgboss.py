"""`migrate transfer legacy` into real pg-boss 10.x and 12.x: real workers fetch and complete every moved job
with its data intact, a moved job is exactly what `boss.send` would have written, the legacy rows are marked,
a rerun moves nothing twice, and the transfer is in `migrate history` with its counts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.transfer.conftest import (
    MAJORS,
    QUEUE_OPTIONS,
    RUNBOOK,
    Boss,
    migrate,
    pending_rows,
    sql_rows,
    write_runbook,
)

COMPARED = ("priority", "retry_limit", "retry_delay", "retry_backoff", "policy", "dead_letter", "state")
"""Columns a moved job must share with a job `boss.send` wrote to a queue of the same options."""


@pytest.mark.parametrize("major", MAJORS)
def test_moved_jobs_are_worked_by_real_pgboss(
    major: str, bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database(major)
    boss = bosses[major]
    ids = pending_rows(url, 25)
    runbook = write_runbook(tmp_path)

    dry = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--dry-run")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["counts"] == {"*": 25} and planned["totals"] == {"claimable": 25}
    assert planned["sample"][0]["legacy_id"] == ids[0]
    assert planned["sample"][0]["data"] == {"evaluationId": "eval-1", "legacyJobId": ids[0]}  # an object
    text = migrate(runbook, url, "transfer", "legacy", "--queue", "evals", "--dry-run").stdout
    assert f'data {{"legacyJobId": "{ids[0]}", "evaluationId": "eval-1"}}' in text  # jsonb's key order
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'PENDING'""") == [(25,)]

    res = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--batch", "10")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [b["claimed"] for b in out["batches"]] == [10, 10, 5]
    assert out["totals"]["moved"] == 25 and out["totals"]["inserted"] == 25
    assert out["pgboss_layout"] == ("v10" if major == "10" else "v12")

    legacy = dict(sql_rows(url, 'SELECT "id", "status"::text FROM "Job"'))
    assert set(legacy.values()) == {"CANCELLED"}
    touched = "\"updatedAt\" > (now() AT TIME ZONE 'UTC') - interval '1 minute'"
    assert sql_rows(url, f'SELECT count(*) FROM "Job" WHERE {touched}') == [(25,)]
    markers = dict(sql_rows(url, 'SELECT "id", "cancellationReason" FROM "Job"'))
    jobs = {
        str(r[0]): r
        for r in sql_rows(url, "SELECT id, data, state::text FROM pgboss.job WHERE name = 'evals'")
    }
    assert len(jobs) == 25 and set(markers.values()) == set(jobs)
    for legacy_id, job_id in markers.items():
        assert jobs[job_id][1] == {
            "evaluationId": f"eval-{ids.index(legacy_id) + 1}",
            "legacyJobId": legacy_id,
        }

    # the same job, sent by pg-boss itself to a queue of the same options, has the same settings
    boss.run(url, "send", "ref", "1")
    cols = ", ".join(COMPARED)
    sent = sql_rows(url, f"SELECT {cols} FROM pgboss.job WHERE name = 'ref'")
    moved = set(sql_rows(url, f"SELECT {cols} FROM pgboss.job WHERE name = 'evals'"))
    assert moved == set(sent), (moved, sent)
    assert sent[0][1:3] == (QUEUE_OPTIONS["retryLimit"], QUEUE_OPTIONS["retryDelay"])
    expiry = "expire_in" if major == "10" else "expire_seconds * interval '1s'"
    assert sql_rows(url, f"SELECT DISTINCT {expiry}, keep_until - start_after FROM pgboss.job") == sql_rows(
        url, f"SELECT DISTINCT {expiry}, keep_until - start_after FROM pgboss.job WHERE name = 'ref'"
    )

    worked = boss.run(url, "work", "evals", "25")
    assert sorted(j["id"] for j in worked) == sorted(jobs)
    assert {j["id"]: j["data"] for j in worked} == {k: v[1] for k, v in jobs.items()}
    assert sql_rows(url, "SELECT state::text, count(*) FROM pgboss.job WHERE name = 'evals' GROUP BY 1") == [
        ("completed", 25)
    ]

    again = migrate(runbook, url, "transfer", "legacy", "--queue", "evals")
    assert again.exit_code == 0 and "Moved 0 legacy rows" in again.stdout
    history = migrate(runbook, url, "history", "--operation", "transfer")
    assert history.exit_code == 0
    assert "moved 25 rows in 3 batches (inserted 25, already present 0)" in history.stdout
    assert "moved 0 rows in 0 batches" in history.stdout
    events = json.loads(migrate(runbook, url, "-o", "json", "history", "--operation", "transfer").stdout)
    data = [e["data"] for e in events["events"] if e["data"]["moved"] == 25]
    assert [(d["batch"], d["workers"], "limit" in d) for d in data] == [(10, 1, False)]


def test_moved_rows_deleted_and_limit(database: Callable[[str], str], tmp_path: Path) -> None:
    """`moved: delete` removes the moved rows; --limit stops after that many rows (in smaller last batch)."""
    url = database("12")
    ids = pending_rows(url, 12)
    runbook = write_runbook(
        tmp_path,
        RUNBOOK.replace(
            "    marker_column: cancellationReason\n", "    moved: delete\n    legacy_id_key: null\n"
        ),
    )
    res = migrate(
        runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals", "--batch", "4", "--limit", "10"
    )
    assert res.exit_code == 0, res.output
    assert [b["claimed"] for b in json.loads(res.stdout)["batches"]] == [4, 4, 2]
    assert sql_rows(url, 'SELECT "id" FROM "Job" ORDER BY "createdAt"') == [(ids[10],), (ids[11],)]
    data = sql_rows(url, "SELECT data FROM pgboss.job WHERE name = 'evals' ORDER BY data->>'evaluationId'")
    assert len(data) == 10 and all(set(d[0]) == {"evaluationId"} for d in data)
    one = migrate(runbook, url, "transfer", "legacy", "--queue", "evals", "--limit", "1", "--workers", "2")
    assert one.exit_code == 0, one.output
    history = migrate(runbook, url, "-o", "json", "history", "--operation", "transfer").stdout
    [older, newer] = json.loads(history)["events"]
    assert (older["data"]["limit"], older["data"]["batch"]) == (10, 4)
    assert (newer["data"]["limit"], newer["data"]["workers"]) == (1, 2)
    assert newer["reason"].endswith("moved 1 row in 1 batch (inserted 1, already present 0)")


def test_a_partitioned_pgboss_12_queue_gets_its_jobs_in_its_own_table(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    """createQueue(name, {partition: true}) in 12.x gives the queue a table of its own (queue.table_name)."""
    url = database("12")
    boss = bosses["12"]
    boss.run(url, "setup", "parted", env={"QUEUE_OPTIONS": json.dumps({"partition": True})})
    [(table,)] = sql_rows(url, "SELECT table_name FROM pgboss.queue WHERE name = 'parted'")
    assert table != "job_common"
    pending_rows(url, 5)
    res = migrate(write_runbook(tmp_path), url, "transfer", "legacy", "--queue", "parted")
    assert res.exit_code == 0, res.output
    assert sql_rows(url, f'SELECT count(*) FROM pgboss."{table}"') == [(5,)]
    assert sql_rows(url, "SELECT count(*) FROM pgboss.job_common WHERE name = 'parted'") == [(0,)]
    worked = boss.run(url, "work", "parted", "5")
    assert len(worked) == 5 and all(set(j["data"]) == {"evaluationId", "legacyJobId"} for j in worked)


def test_a_uuid_marker_column_holds_the_job_id(database: Callable[[str], str], tmp_path: Path) -> None:
    """The real team kept a `"pgBossJobId"` beside each row: a uuid marker column gets the job's id."""
    url = database("10")
    sql_rows(url, 'ALTER TABLE "Job" ADD COLUMN "pgBossJobId" uuid')
    ids = pending_rows(url, 3)
    text = RUNBOOK.replace("marker_column: cancellationReason", "marker_column: pgBossJobId")
    res = migrate(write_runbook(tmp_path, text), url, "transfer", "legacy", "--queue", "evals")
    assert res.exit_code == 0, res.output
    joined = sql_rows(
        url,
        'SELECT j."id", b.data->>\'legacyJobId\' FROM "Job" j JOIN pgboss.job b ON b.id = j."pgBossJobId"'
        " ORDER BY 1",
    )
    assert joined == [(i, i) for i in ids]


def test_history_json_gives_times_in_utc_whatever_the_database_zone(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    """`at` of an event in `history -o json` is UTC (+00:00), as `measured_at` is, in a database whose time
    zone is Asia/Kolkata (+05:30: psycopg hands the timestamp in the session's zone)."""
    url = database("12")
    [(name,)] = sql_rows(url, "SELECT current_database()")
    sql_rows(url, f"ALTER DATABASE \"{name}\" SET timezone = 'Asia/Kolkata'")
    pending_rows(url, 2)
    runbook = write_runbook(tmp_path)
    assert migrate(runbook, url, "transfer", "legacy", "--queue", "evals").exit_code == 0
    [event] = json.loads(migrate(runbook, url, "-o", "json", "history").stdout)["events"]
    assert event["at"].endswith("+00:00"), event["at"]
