"""The insert's own check: a batch ends with every one of its jobs in the target queue, or it is rolled back.
The insert returns the ids it wrote; only the others are looked up (a job an earlier run wrote counts as
"already present"; a job the database refused silently, here a BEFORE INSERT trigger returning NULL,
fails the batch: nothing of it moves). Legacy -> pg-boss 12 and pg-boss 10 -> 12."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from runbook.exitcodes import ExitCode
from tests.integration.transfer.conftest import Boss, migrate, pending_rows, sql_rows, write_runbook


def drop_jobs(url: str, condition: str) -> None:
    """A BEFORE INSERT trigger on pgboss.job that silently drops the jobs matching `condition`."""
    sql_rows(
        url,
        "CREATE FUNCTION public.drop_some() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF {condition} THEN RETURN NULL; END IF; RETURN NEW; END $$",
    )
    sql_rows(
        url,
        "CREATE TRIGGER drop_some BEFORE INSERT ON pgboss.job FOR EACH ROW"
        " EXECUTE FUNCTION public.drop_some()",
    )


def legacy(runbook: Path, url: str) -> tuple[int, dict[str, object]]:
    res = migrate(runbook, url, "-o", "json", "transfer", "legacy", "--queue", "evals")
    return res.exit_code, json.loads(res.stdout)


def test_a_rerun_counts_jobs_an_earlier_run_wrote_as_already_present(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database("12")
    pending_rows(url, 5)
    runbook = write_runbook(tmp_path)
    code, first = legacy(runbook, url)
    assert code == ExitCode.OK, first
    assert first["totals"]["inserted"] == 5  # type: ignore[index]
    sql_rows(url, """UPDATE "Job" SET status = 'PENDING', "cancellationReason" = NULL""")  # reset by hand
    pending_rows(url, 2, evaluation="late")
    code, second = legacy(runbook, url)
    assert code == ExitCode.OK, second
    totals = second["totals"]
    assert (totals["moved"], totals["inserted"], totals["already_present"]) == (7, 2, 5)  # type: ignore[index]
    assert sql_rows(url, "SELECT count(*) FROM pgboss.job WHERE name = 'evals'") == [(7,)]
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'PENDING'""") == [(0,)]


def test_a_job_the_database_refuses_rolls_its_batch_back(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database("12")
    pending_rows(url, 5)
    drop_jobs(url, "NEW.data->>'evaluationId' = 'eval-3'")
    code, out = legacy(write_runbook(tmp_path), url)
    assert code == ExitCode.NOT_READY, out
    error = out["error"]
    assert '1 of 5 jobs of batch 1 are not in pg-boss queue "evals"' in error["message"]  # type: ignore[index]
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'PENDING'""") == [(5,)]
    assert sql_rows(url, "SELECT count(*) FROM pgboss.job") == [(0,)]


def test_a_refused_job_beside_already_present_ones_is_still_caught(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database("12")
    pending_rows(url, 4)
    runbook = write_runbook(tmp_path)
    assert legacy(runbook, url)[0] == ExitCode.OK
    sql_rows(url, """UPDATE "Job" SET status = 'PENDING', "cancellationReason" = NULL""")
    pending_rows(url, 1, evaluation="refused")
    drop_jobs(url, "NEW.data->>'evaluationId' = 'refused-1'")
    code, out = legacy(runbook, url)
    assert code == ExitCode.NOT_READY, out
    assert "1 of 5 jobs of batch 1 are not in pg-boss queue" in out["error"]["message"]  # type: ignore[index]
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'PENDING'""") == [(5,)]
    assert sql_rows(url, "SELECT count(*) FROM pgboss.job") == [(4,)]


def test_pgboss_to_pgboss_refused_job_rolls_back(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    src, dst = database("10"), database("12")
    bosses["10"].run(src, "send", "evals", "3")
    drop_jobs(dst, "true")
    res = migrate(
        write_runbook(tmp_path), dst, "transfer", "pgboss", "--from-schema", "pgboss", "--from-url", src,
        "--to-schema", "pgboss",
    )  # fmt: skip
    assert res.exit_code == ExitCode.NOT_READY, res.output
    assert '3 of 3 jobs of batch 1 are not in target queue "evals"' in res.output
    assert sql_rows(src, "SELECT count(*), min(state::text) FROM pgboss.job WHERE name = 'evals'") == [
        (3, "created")
    ]
    assert sql_rows(dst, "SELECT count(*) FROM pgboss.job") == [(0,)]
