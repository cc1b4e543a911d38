"""`migrate transfer pgboss`: pg-boss 10 -> 12 across two databases (ready, deferred, retrying and singleton
jobs written by real pg-boss 10), then real pg-boss 12 workers fetch and complete every job with its data
intact, the deferred ones only after their startAfter; 10 -> 12 between two schemas of one database; 12 -> 12
with active jobs (--include-active), a group and a job in a flow."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from tests.integration.transfer.conftest import Boss, migrate, sql_rows, write_runbook

DEFER = 4
SINGLETON = {"singletonKey": "nightly", "singletonSeconds": 3600}
COLUMNS = (
    "id::text, name, data, priority, state::text, retry_count, retry_limit, retry_delay, singleton_key,"
    " singleton_on, start_after, created_on, keep_until"
)


def send(boss: Boss, url: str, queue: str, n: int, options: dict[str, object], kind: str) -> list[str]:
    env = {"SEND_OPTIONS": json.dumps(options), "SEND_DATA": json.dumps({"kind": kind})}
    return [str(i) for i in boss.run(url, "send", queue, str(n), env=env)]


def jobs(url: str, names: tuple[str, ...] = ("evals", "imports")) -> dict[str, tuple[object, ...]]:
    rows = sql_rows(url, f"SELECT {COLUMNS} FROM pgboss.job WHERE name = ANY(%s)", (list(names),))
    return {r[0]: r[1:] for r in rows}


def test_10_to_12_across_databases_then_pgboss_12_workers_complete_every_job(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    src, dst = database("10"), database("12")
    ready = send(bosses["10"], src, "evals", 3, {"priority": 5}, "ready")
    deferred = send(bosses["10"], src, "evals", 2, {"startAfter": DEFER}, "deferred")
    retrying = send(bosses["10"], src, "imports", 2, {"retryLimit": 5}, "retrying")
    sql_rows(
        src, "UPDATE pgboss.job SET state = 'retry', retry_count = 2 WHERE id = ANY(%s::uuid[])", (retrying,)
    )
    singleton = send(bosses["10"], src, "imports", 1, SINGLETON, "singleton")
    assert send(bosses["10"], src, "imports", 1, SINGLETON, "singleton") == ["None"]  # pg-boss 10 dedupes
    before = jobs(src)
    expiry = "SELECT id::text, {} FROM pgboss.job WHERE name IN ('evals', 'imports')"
    expire_in = dict(sql_rows(src, expiry.format("extract(epoch FROM expire_in)::int")))
    assert len(before) == 8
    runbook = write_runbook(tmp_path)
    ends = ["--from-schema", "pgboss", "--from-url", src, "--to-schema", "pgboss", "--to-url", dst]

    dry = migrate(runbook, dst, "-o", "json", "transfer", "pgboss", *ends, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["counts"] == {
        "evals": {"created": 5},
        "imports": {"created": 1, "retry": 2},
    }
    oldest = sql_rows(
        src,
        "SELECT id::text, name, state::text FROM pgboss.job WHERE name IN ('evals', 'imports')"
        " ORDER BY created_on, id LIMIT 3",
    )
    sample = json.loads(dry.stdout)["sample"]
    assert [(j["id"], j["queue"], j["state"]) for j in sample] == oldest  # the 3 oldest that would move
    assert all(j["start_after"] and j["data"].startswith("{") for j in sample)
    text = migrate(runbook, dst, "transfer", "pgboss", *ends, "--dry-run").stdout
    assert f"  sample: job {oldest[0][0]} queue {oldest[0][1]} {oldest[0][2]}, start after " in text
    assert jobs(src) == before and jobs(dst) == {}

    moved = migrate(runbook, dst, "-o", "json", "transfer", "pgboss", *ends, "--batch", "3")
    assert moved.exit_code == 0, moved.output
    totals = json.loads(moved.stdout)["totals"]
    assert (totals["moved"], totals["inserted"], totals["already_present"]) == (8, 8, 0)
    assert jobs(src) == {}
    after = jobs(dst)
    assert after == before  # id, name, data, priority, state, retry count/limit/delay, singleton key
    assert {r[3] for k, r in after.items() if k in retrying} == {"retry"}
    assert dict(sql_rows(dst, expiry.format("expire_seconds"))) == expire_in
    assert sql_rows(dst, "SELECT count(*) FROM runbook.transfer_ledger WHERE phase <> 'done'") == [(0,)]
    history = migrate(runbook, dst, "history", "--operation", "transfer")
    assert "(v10) -> " in history.stdout and "(v12): moved 8 jobs in 3 batches (inserted 8" in history.stdout
    # pg-boss 12 keeps the singleton: a second send with the same key in the same window is refused
    assert send(bosses["12"], dst, "imports", 1, SINGLETON, "singleton") == ["None"]

    now = bosses["12"].run(dst, "work", "evals", "3")
    assert sorted(j["id"] for j in now) == sorted(ready)  # the deferred ones are not fetched yet
    assert all(j["data"] == {"ref": j["data"]["ref"], "kind": "ready"} for j in now)
    rest = bosses["12"].run(dst, "work", "imports", "3")
    assert sorted(j["id"] for j in rest) == sorted(retrying + singleton)
    time.sleep(max(0.0, DEFER - 2))
    later = bosses["12"].run(dst, "work", "evals", "2")
    assert sorted(j["id"] for j in later) == sorted(deferred)
    assert {j["data"]["kind"] for j in later} == {"deferred"}
    done = sql_rows(
        dst,
        "SELECT state::text, count(*), bool_and(started_on >= start_after) FROM pgboss.job"
        " WHERE name IN ('evals', 'imports') GROUP BY 1",
    )
    assert done == [("completed", 8, True)]


def test_10_to_12_between_two_schemas_of_one_database(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database("12")
    bosses["10"].run(url, "setup", "evals", env={"PGBOSS_SCHEMA": "boss10"})
    sent = bosses["10"].run(url, "send", "evals", "5", env={"PGBOSS_SCHEMA": "boss10"})
    runbook = write_runbook(tmp_path)
    result = migrate(
        runbook,
        url,
        "transfer",
        "pgboss",
        "--from-schema",
        "boss10",
        "--to-schema",
        "pgboss",
        "--queue",
        "evals",
    )
    assert result.exit_code == 0, result.output
    assert "Moved 5 jobs from pg-boss" in result.stdout
    assert sql_rows(url, "SELECT count(*) FROM boss10.job WHERE name = 'evals'") == [(0,)]
    moved = sql_rows(url, "SELECT id::text, data FROM pgboss.job WHERE name = 'evals' ORDER BY data->>'ref'")
    assert moved == [(i, {"ref": n}) for n, i in enumerate(sent)]
    again = migrate(
        runbook, url, "-o", "json", "transfer", "pgboss", "--from-schema", "boss10", "--to-schema", "pgboss"
    )
    assert again.exit_code == 0 and json.loads(again.stdout)["totals"]["moved"] == 0


def test_one_database_under_two_spellings_is_moved_as_one_database(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    """--from-url and --to-url that differ as text but reach one database: one transaction a batch, as for
    one URL (no ledger, which only two databases need)."""
    url = database("12")
    bosses["10"].run(url, "setup", "evals", env={"PGBOSS_SCHEMA": "boss10"})
    sent = bosses["10"].run(url, "send", "evals", "4", env={"PGBOSS_SCHEMA": "boss10"})
    other = f"{url}{'&' if '?' in url else '?'}application_name=other-spelling"
    ends = ["--from-schema", "boss10", "--from-url", other, "--to-schema", "pgboss", "--to-url", url]
    result = migrate(write_runbook(tmp_path), url, "-o", "json", "transfer", "pgboss", *ends)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["moved"] == 4
    assert sorted(
        r[0] for r in sql_rows(url, "SELECT id::text FROM pgboss.job WHERE name = 'evals'")
    ) == sorted(sent)
    assert sql_rows(url, "SELECT count(*) FROM boss10.job WHERE name = 'evals'") == [(0,)]
    assert sql_rows(url, "SELECT to_regclass('runbook.transfer_ledger') IS NULL") == [(True,)]


def test_12_to_12_active_jobs_only_with_include_active_and_only_once_expired(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    src, dst = database("12"), database("12")
    created, expired, running, flow = (
        send(bosses["12"], src, "evals", 1, {}, k) for k in ("c", "e", "r", "f")
    )
    sql_rows(src, "UPDATE pgboss.job SET group_id = 'tenant-1', group_tier = 'gold' WHERE id = %s", created)
    sql_rows(src, "UPDATE pgboss.job SET blocked = true WHERE id = %s", flow)  # waits on a parent job
    sql_rows(
        src,
        "UPDATE pgboss.job SET state = 'active', retry_count = 1,"
        " started_on = now() - CASE WHEN id = %s::uuid THEN interval '1 hour' ELSE interval '1 second' END"
        " WHERE id = ANY(%s::uuid[])",
        (expired[0], expired + running),
    )
    runbook = write_runbook(tmp_path)
    ends = ["--from-url", src, "--from-schema", "pgboss", "--to-url", dst, "--to-schema", "pgboss"]
    first = migrate(runbook, dst, "-o", "json", "transfer", "pgboss", *ends, "--queue", "evals")
    assert first.exit_code == 0 and json.loads(first.stdout)["totals"]["moved"] == 1
    assert list(jobs(dst)) == created
    group = "SELECT group_id, group_tier FROM pgboss.job WHERE id = %s"
    assert sql_rows(dst, group, created) == [("tenant-1", "gold")]
    second = migrate(runbook, dst, "-o", "json", "transfer", "pgboss", *ends, "--include-active")
    assert second.exit_code == 0 and json.loads(second.stdout)["totals"]["moved"] == 1
    assert jobs(dst)[expired[0]][3:5] == (
        "retry",
        1,
    )  # as pg-boss's expiry makes it: a retry, not yet counted
    started = "SELECT started_on, output FROM pgboss.job WHERE id = %s"
    assert sql_rows(dst, started, expired)[0][1] == {"value": {"message": "job timed out"}}
    assert sorted(jobs(src)) == sorted(running + flow)  # one a worker may still run, one in a flow: stay
    done = bosses["12"].run(dst, "work", "evals", "2")
    assert sorted(j["id"] for j in done) == sorted(created + expired)
    assert {j["data"]["kind"] for j in done} == {"c", "e"}
    count = "SELECT state::text, retry_count FROM pgboss.job WHERE id = %s"
    assert sql_rows(dst, count, expired) == [("completed", 2)]  # its fetch counted the retry, once


def test_a_retry_moved_from_10_to_12_keeps_its_attempts_no_more(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    """A job real pg-boss 10 failed once (state retry, started before) and moved to pg-boss 12: its start
    time and last error move with it, so pg-boss 12 counts its next fetch as a retry and it is attempted
    retryLimit + 1 times in all, as it would have been had it stayed (without the start time: one more)."""
    src, dst = database("10"), database("12")
    [job] = send(bosses["10"], src, "imports", 1, {"retryLimit": 2, "retryDelay": 0}, "flaky")
    assert bosses["10"].run(src, "fail", "imports", "1") == [{"id": job, "retryCount": 0}]
    kept = "SELECT state::text, retry_count, started_on, output FROM pgboss.job WHERE id = %s"
    before = sql_rows(src, kept, (job,))
    assert before[0][:2] == ("retry", 0) and before[0][2] is not None
    ends = ["--from-schema", "pgboss", "--from-url", src, "--to-schema", "pgboss", "--to-url", dst]
    moved = migrate(
        write_runbook(tmp_path), dst, "-o", "json", "transfer", "pgboss", *ends, "--queue", "imports"
    )
    assert moved.exit_code == 0 and json.loads(moved.stdout)["totals"]["moved"] == 1, moved.output
    assert sql_rows(dst, kept, (job,)) == before
    attempts = bosses["12"].run(dst, "fail", "imports", "5")
    assert [a["retryCount"] for a in attempts] == [1, 2]  # 3 attempts in all: retryLimit 2 + 1
    assert sql_rows(dst, "SELECT state::text, retry_count FROM pgboss.job WHERE id = %s", (job,)) == [
        ("failed", 2)
    ]
