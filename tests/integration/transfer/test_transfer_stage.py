"""A stage's `transfer:` action, run by `migrate advance` after the flip and verify, on real PostgreSQL and
real pg-boss 10 and 12: the backlog moves through `migrate transfer legacy`'s own code, its verify is
measured (no claimable row left, one new pg-boss job per inserted row), `plan` shows the dry-run count, a
bad mapping blocks before the flip, a failed transfer keeps the flip, and an advance killed mid-transfer
then run again moves every row exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runbook.exitcodes import ExitCode
from runbook.faultpoints import TRANSFER_POINTS
from tests.integration.transfer.conftest import RUNBOOK, migrate, pending_rows, sql_rows, write_runbook
from tests.integration.transfer.test_transfer_crashes import wait_for
from tests.integration.transfer.test_transfer_workers import IN_FLIGHT, wait_until

MIGRATE = Path(sys.executable).parent / "migrate"
STAGED = (
    RUNBOOK
    + """\
  - id: cutover
    set: {PGBOSS_ENABLED: true}
    transfer: {queue: evals, batch: 10}
"""
)
ROWS = 25


def run_json(runbook: Path, url: str, *args: str) -> tuple[int, dict[str, Any]]:
    res = migrate(runbook, url, "-o", "json", *args)
    return res.exit_code, json.loads(res.stdout)


def flag(folder: Path) -> str | None:
    path = folder / "app.env"
    lines = path.read_text().splitlines() if path.exists() else []
    return next((ln.split("=", 1)[1] for ln in lines if ln.startswith("PGBOSS_ENABLED=")), None)


def moved_once(url: str, ids: list[str]) -> None:
    """Every row CANCELLED with its job's id as marker, one job per row (0 lost, 0 duplicated)."""
    assert dict(sql_rows(url, 'SELECT "id", "status"::text FROM "Job"')) == dict.fromkeys(ids, "CANCELLED")
    jobs = sql_rows(url, "SELECT id::text, data->>'legacyJobId' FROM pgboss.job WHERE name = 'evals'")
    assert sorted(j[1] for j in jobs) == sorted(ids)
    assert dict(sql_rows(url, 'SELECT "id", "cancellationReason" FROM "Job"')) == {j[1]: j[0] for j in jobs}


def refuse_after_ten(url: str) -> None:
    """A trigger on the legacy table refusing updates once 10 rows are CANCELLED (the second batch fails)."""
    sql_rows(
        url,
        "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF (SELECT count(*) FROM \"Job\" WHERE status = 'CANCELLED') >= 10 THEN"
        " RAISE EXCEPTION 'legacy table closed for maintenance'; END IF; RETURN NEW; END $$",
    )
    sql_rows(
        url, 'CREATE TRIGGER refuse BEFORE UPDATE ON "Job" FOR EACH ROW EXECUTE FUNCTION public.refuse()'
    )


def advancing(runbook: Path, url: str, point: str, marker: Path, **env: str) -> subprocess.Popen[str]:
    """`migrate advance --yes` in the background, pausing at `point` (runbook.faultpoints)."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "RUNBOOK_PAUSE_AT": point,
        "RUNBOOK_PAUSE_FILE": str(marker),
        "RUNBOOK_PAUSE_SECONDS": "300",
        **env,
    }
    args = [str(MIGRATE), "-f", str(runbook), "-o", "json", "advance", "--yes"]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("major", ["10", "12"])
def test_advance_moves_the_backlog_and_verifies_it(
    major: str, database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database(major)
    ids = pending_rows(url, ROWS)
    runbook = write_runbook(tmp_path, STAGED)
    code, plan = run_json(runbook, url, "plan")
    assert code == ExitCode.OK, plan
    assert plan["next"]["transfer"]["would_move"] == ROWS
    text = migrate(runbook, url, "plan").stdout
    assert "transfer   legacy -> pg-boss queue evals, batch 10: would move 25 claimable rows now\n" in text
    assert sql_rows(url, "SELECT count(*) FROM pgboss.job WHERE name = 'evals'") == [(0,)]  # a dry run

    code, adv = run_json(runbook, url, "advance", "--yes")
    assert code == ExitCode.OK, adv
    assert adv["outcome"] == "advanced"
    t = adv["transfer"]
    assert (t["totals"]["moved"], t["totals"]["inserted"], t["totals"]["batches"]) == (ROWS, ROWS, 3)
    assert [(m["check"], m["value"], m["verdict"]) for m in t["verify"]] == [
        ("transfer-legacy-drained", 0, "pass"),
        ("transfer-jobs-in-pgboss", ROWS, "pass"),
    ]
    assert (t["backlog"]["before"], t["backlog"]["after"]) == (0, ROWS)
    moved_once(url, ids)
    assert flag(tmp_path) == "true"
    events = sql_rows(
        url,
        "SELECT operation, data FROM runbook.events WHERE operation IN ('transfer', 'advance') ORDER BY id",
    )
    assert [e[0] for e in events] == ["transfer", "advance"]
    assert events[0][1]["moved"] == ROWS
    assert events[1][1]["transfer"]["totals"]["moved"] == ROWS


KILLS = [("12", p) for p in TRANSFER_POINTS] + [("10", "transfer:committed")]


@pytest.mark.parametrize(("major", "point"), KILLS)
def test_an_advance_killed_mid_transfer_then_run_again_moves_every_row_once(
    major: str, point: str, database: Callable[[str], str], tmp_path: Path
) -> None:
    """Killed at each step of the first batch: the next advance reconciles the flip (reverted, as for any
    unfinished advance), flips again, moves the other rows; a committed batch's rows are not claimable
    again, a batch cut short rolled back whole."""
    url = database(major)
    ids = pending_rows(url, ROWS)
    runbook = write_runbook(tmp_path, STAGED)
    marker = tmp_path / "paused"
    proc = advancing(runbook, url, point, marker)
    wait_for(marker, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    committed = 10 if point == "transfer:committed" else 0
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'CANCELLED'""") == [(committed,)]
    assert sql_rows(url, "SELECT count(*) FROM pgboss.job WHERE name = 'evals'") == [(committed,)]
    assert flag(tmp_path) == "true"  # flipped, never recorded
    text = migrate(runbook, url, "advance", "--dry-run").stdout  # the unfinished flip blocks a dry run
    assert f"batch 10: would move {ROWS - committed} claimable rows now" in text

    code, adv = run_json(runbook, url, "advance", "--yes")
    assert code == ExitCode.OK, adv
    assert adv["outcome"] == "advanced"
    totals = adv["transfer"]["totals"]
    left = ROWS - committed
    assert (totals["moved"], totals["inserted"], totals["already_present"]) == (left, left, 0)
    moved_once(url, ids)
    ops = [r[0] for r in sql_rows(url, "SELECT operation FROM runbook.events ORDER BY id")]
    assert "reconcile" in ops and ops[-2:] == ["transfer", "advance"]


def test_a_stage_transfer_with_two_workers_moves_every_row_once(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    """`workers: 2`: two batches are open at once (each on its own connection), then every row moves once."""
    url = database("12")
    ids = pending_rows(url, ROWS)
    runbook = write_runbook(tmp_path, STAGED.replace("batch: 10}", "batch: 10, workers: 2}"))
    assert "batch 10, 2 workers: would move 25 claimable rows now\n" in migrate(runbook, url, "plan").stdout
    marker, release = tmp_path / "paused", tmp_path / "release"
    proc = advancing(runbook, url, "transfer:claimed", marker, RUNBOOK_PAUSE_RELEASE=str(release))
    try:
        wait_for(marker, proc)
        wait_until(lambda: sql_rows(url, IN_FLIGHT) == [(2,)], "two batches open at transfer:claimed")
    finally:
        release.touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.OK, err
    t = json.loads(out)["transfer"]
    totals = t["totals"]
    assert (t["workers"], totals["moved"], totals["inserted"], totals["batches"]) == (2, ROWS, ROWS, 3)
    assert [m["verdict"] for m in t["verify"]] == ["pass", "pass"]
    moved_once(url, ids)


BAD_MAPPINGS = {
    "missing-queue": (STAGED.replace("queue: evals", "queue: nope"), 'pg-boss queue "nope" does not exist'),
    "missing-archive-table": (
        STAGED.replace(
            "    marker_column: cancellationReason\n", "    moved: archive\n    archive_table: JobGone\n"
        ),
        'archive table "public"."JobGone" (settings.transfer.archive_table) does not exist',
    ),
}


@pytest.mark.parametrize("case", list(BAD_MAPPINGS))
def test_a_bad_mapping_blocks_the_advance_before_the_flip(
    case: str, database: Callable[[str], str], tmp_path: Path
) -> None:
    """Found by the dry run plan and advance show (a missing archive table used to pass it and fail only
    after the flip)."""
    text, message = BAD_MAPPINGS[case]
    url = database("12")
    pending_rows(url, 3)
    runbook = write_runbook(tmp_path, text)
    code, plan = run_json(runbook, url, "plan")
    assert code == ExitCode.OK and message in plan["next"]["transfer"]["error"]
    code, adv = run_json(runbook, url, "advance", "--yes", "--force", "--reason", "try")
    assert code == ExitCode.NOT_READY, adv
    assert adv["outcome"] == "blocked"
    assert [b["code"] for b in adv["blockers"]] == ["transfer"]
    assert message in adv["blockers"][0]["message"]
    assert flag(tmp_path) is None  # never flipped
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'PENDING'""") == [(3,)]


def test_a_failed_transfer_keeps_the_flip_and_names_the_rerun(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    """A batch PostgreSQL refuses (a trigger on the legacy table, after 10 rows moved): the stage is entered
    (its verify passed, the flags stay), exit 1, the failure names `migrate transfer legacy` to go on; once
    the cause is gone that command moves the rest."""
    url = database("12")
    ids = pending_rows(url, ROWS)
    refuse_after_ten(url)
    runbook = write_runbook(tmp_path, STAGED)
    code, adv = run_json(runbook, url, "advance", "--yes")
    assert code == ExitCode.NOT_READY, adv
    assert adv["outcome"] == "transfer-failed"
    assert "legacy table closed for maintenance" in adv["failure"]
    assert "`migrate transfer legacy --queue evals --batch 10`" in adv["failure"]
    assert flag(tmp_path) == "true"
    assert sql_rows(url, "SELECT stage FROM runbook.state") == [("cutover",)]
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'CANCELLED'""") == [(10,)]
    failed = sql_rows(url, "SELECT outcome FROM runbook.events WHERE operation = 'transfer'")
    assert failed == [("failed",)]

    sql_rows(url, 'DROP TRIGGER refuse ON "Job"')
    res = migrate(runbook, url, "transfer", "legacy", "--queue", "evals", "--batch", "10")
    assert res.exit_code == ExitCode.OK, res.output
    moved_once(url, ids)


def test_a_stage_filter_moves_only_its_rows_and_a_bad_one_blocks_naming_its_line(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database("12")
    keep = pending_rows(url, 4, evaluation="keep")
    pending_rows(url, 3, evaluation="other")
    bad = STAGED.replace("batch: 10}", """batch: 10, filter: '"evaluationID" IS NULL'}""")
    runbook = write_runbook(tmp_path, bad)
    code, adv = run_json(runbook, url, "advance", "--yes")
    assert code == ExitCode.NOT_READY and adv["outcome"] == "blocked", adv
    assert "transfer.filter (line 17)" in adv["blockers"][0]["message"]
    assert 'column "evaluationID" does not exist' in adv["blockers"][0]["message"]
    assert flag(tmp_path) is None

    good = STAGED.replace("batch: 10}", """batch: 10, filter: '"evaluationId" LIKE ''keep-%'''}""")
    runbook = write_runbook(tmp_path, good)
    code, adv = run_json(runbook, url, "advance", "--yes")
    assert code == ExitCode.OK, adv
    assert [m["value"] for m in adv["transfer"]["verify"]] == [0, 4]
    moved = sql_rows(url, """SELECT "id" FROM "Job" WHERE status = 'CANCELLED' ORDER BY "id\"""")
    assert [r[0] for r in moved] == sorted(keep)


def test_watch_auto_advance_runs_the_transfer_and_a_failed_one_still_enters(
    database: Callable[[str], str], tmp_path: Path
) -> None:
    url = database("12")
    pending_rows(url, ROWS)
    refuse_after_ten(url)
    runbook = write_runbook(tmp_path, STAGED)
    res = migrate(
        runbook, url, "-o", "json", "watch", "--auto-advance", "--max-samples", "1", "--interval", "1s"
    )
    out = json.loads(res.stdout.splitlines()[-1])  # the result, after a line per round
    assert out["transitions"] == [{"operation": "advance", "from": "legacy", "to": "cutover"}], out
    assert sql_rows(url, "SELECT stage FROM runbook.state") == [("cutover",)]
    assert sql_rows(url, """SELECT count(*) FROM "Job" WHERE status = 'CANCELLED'""") == [(10,)]
