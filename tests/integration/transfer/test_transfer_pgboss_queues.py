"""`migrate transfer pgboss` makes the queues the target lacks the way pg-boss 12 makes them: the queue rows
it writes equal, column for column, the rows real pg-boss 12's `boss.createQueue` writes for the same options
in another database; a dead-letter queue comes first; a dry run says which it would make and makes none; and
real pg-boss 12 workers then fetch every moved job from a queue runbook made."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from runbook.exitcodes import ExitCode
from tests.integration.transfer.conftest import Boss, migrate, sql_rows, write_runbook

COLUMNS = (
    "name, policy, retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds,"
    " retention_seconds, deletion_seconds, warning_queued, dead_letter, partition, heartbeat_seconds"
)
V10_OPTIONS = {"retryLimit": 5, "retryDelay": 7, "retryBackoff": True, "expireInSeconds": 90}


def run(tmp_path: Path, src: str, dst: str, *args: str) -> Result:
    """`migrate [ARGS] transfer pgboss` from schema pgboss of `src` into schema pgboss of `dst`."""
    end = ["--from-schema", "pgboss", "--from-url", src, "--to-schema", "pgboss"]
    return migrate(write_runbook(tmp_path), dst, "transfer", "pgboss", *end, *args)  # -o json may follow


def transfer(tmp_path: Path, src: str, dst: str, *args: str) -> tuple[int, dict[str, object]]:
    res = run(tmp_path, src, dst, "-o", "json", *args)
    return res.exit_code, json.loads(res.stdout)


def queue_rows(url: str, *names: str) -> list[tuple[object, ...]]:
    return sql_rows(
        url, f"SELECT {COLUMNS} FROM pgboss.queue WHERE name = ANY(%s) ORDER BY name", (list(names),)
    )


def test_missing_queues_from_pgboss_10_are_made_as_create_queue_makes_them(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    src, dst, reference = database("10"), database("12"), database("12")
    bosses["10"].run(src, "setup", "mail-dlq", env={"QUEUE_OPTIONS": json.dumps({"retentionMinutes": 30})})
    options = {**V10_OPTIONS, "retentionMinutes": 60, "deadLetter": "mail-dlq", "policy": "standard"}
    bosses["10"].run(src, "setup", "mail", env={"QUEUE_OPTIONS": json.dumps(options)})
    bosses["10"].run(src, "send", "mail", "4")

    code, dry = transfer(tmp_path, src, dst, "--queue", "mail", "--dry-run")
    assert code == ExitCode.OK, dry
    assert dry["created_queues"] == ["mail-dlq", "mail"]
    assert queue_rows(dst, "mail", "mail-dlq") == []
    text = run(tmp_path, src, dst, "--queue", "mail", "--dry-run").stdout
    assert "Would first create 2 queues the target lacks, with the source's options: mail-dlq, mail." in text

    code, out = transfer(tmp_path, src, dst, "--queue", "mail")
    assert code == ExitCode.OK, out
    assert out["created_queues"] == ["mail-dlq", "mail"]
    assert out["totals"]["moved"] == 4  # type: ignore[index]

    # The same queues made by real pg-boss 12 with the v12 spelling of the options.
    v12 = {**V10_OPTIONS, "retentionSeconds": 3600, "deadLetter": "mail-dlq", "policy": "standard"}
    bosses["12"].run(
        reference, "setup", "mail-dlq", env={"QUEUE_OPTIONS": json.dumps({"retentionSeconds": 1800})}
    )
    bosses["12"].run(reference, "setup", "mail", env={"QUEUE_OPTIONS": json.dumps(v12)})
    made = queue_rows(dst, "mail", "mail-dlq")
    assert made == queue_rows(reference, "mail", "mail-dlq")
    assert made[0][:5] == ("mail", "standard", 5, 7, True) and made[0][10] == "mail-dlq"

    seen = bosses["12"].run(dst, "work", "mail", "4")
    assert sorted(job["data"]["ref"] for job in seen) == [0, 1, 2, 3]


def test_a_pgboss_12_source_queue_is_copied_with_every_option(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    src, dst = database("12"), database("12")
    options = {"retryLimit": 9, "retryDelay": 2, "retryDelayMax": 30, "retryBackoff": True,
               "expireInSeconds": 45, "retentionSeconds": 7200, "deleteAfterSeconds": 600,
               "warningQueueSize": 77, "partition": True, "policy": "singleton"}  # fmt: skip
    bosses["12"].run(src, "setup", "made-here", env={"QUEUE_OPTIONS": json.dumps(options)})
    bosses["12"].run(src, "send", "made-here", "1")
    code, out = transfer(tmp_path, src, dst, "--queue", "made-here")
    assert code == ExitCode.OK, out
    assert out["created_queues"] == ["made-here"]
    assert queue_rows(dst, "made-here") == queue_rows(src, "made-here")
    assert sql_rows(dst, "SELECT count(*) FROM pgboss.job WHERE name = 'made-here'") == [(1,)]
