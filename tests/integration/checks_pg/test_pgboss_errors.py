"""The `pgboss` kind when things are not as expected: a custom schema, pg-boss not installed, pg-boss 9,
an unreachable database, a statement timeout, a stray archive table, bad parameters."""

from __future__ import annotations

import re
from typing import Any

import pytest

from runbook.checks.base import Verdict
from runbook.checks.pgboss import PgBossParams
from tests.integration.checks_pg.conftest import Template, closed_port_url, execute, measure, pb, run_node

pytestmark = pytest.mark.pgboss


def test_custom_schema_from_settings_or_params(pg_url: str, node: Any, pgboss_dirs: Any) -> None:
    run_node(node, pgboss_dirs["12"], pg_url, "outcomes", schema="app_jobs")
    direct = pb(pg_url, metric="error_rate", queue="q-main", schema="app_jobs")
    assert direct.value == pytest.approx(2 / 6) and direct.inputs["schema"] == "app_jobs"
    settings = measure(
        "pgboss", PgBossParams(metric="throughput", queue="q-main"), pg_url, pgboss_schema="app_jobs"
    )
    assert settings.value == 4
    assert pb(pg_url, metric="installed").explanation.startswith('pg-boss schema "pgboss" not installed')


def test_not_installed_fails_naming_the_schema(pg_url: str) -> None:
    m = pb(pg_url, metric="installed")
    assert m.verdict is Verdict.FAIL
    assert m.explanation.startswith('pg-boss schema "pgboss" not installed')
    assert pb(pg_url, metric="backlog", queue="q").verdict is Verdict.FAIL
    other = measure("pgboss", PgBossParams(metric="installed", schema="jobs"), pg_url)
    assert 'pg-boss schema "jobs" not installed' in other.explanation


def test_pgboss_9_layout_is_refused(pg_url: str) -> None:
    # A v9-like schema: version 20, camel-case-less old column names, an archive table.
    execute(
        pg_url,
        "CREATE SCHEMA pgboss; CREATE TABLE pgboss.version (version int, maintained_on timestamptz,"
        " cron_on timestamptz); INSERT INTO pgboss.version VALUES (20);"
        " CREATE TABLE pgboss.job (id uuid, name text, state text, createdon timestamptz,"
        " startedon timestamptz, completedon timestamptz, expirein interval);"
        " CREATE TABLE pgboss.archive (LIKE pgboss.job);"
        " ALTER TABLE pgboss.archive ADD archivedon timestamptz",
    )
    m = pb(pg_url, metric="installed")
    assert m.verdict is Verdict.ERROR
    assert "version 20, the layout of pg-boss 9 or older" in m.explanation
    assert "upgrade the app to pg-boss 10" in m.explanation


def test_unreachable_database_is_an_error_not_a_failure(pg_url: str) -> None:
    url = closed_port_url()
    m = measure("pgboss", PgBossParams(metric="backlog", queue="q", url=url), pg_url)
    assert m.verdict is Verdict.ERROR
    assert "connection refused" in m.explanation
    assert "secret-pw" not in m.explanation


STATEMENT = re.compile(r"CREATE INDEX [^;(]*\((?:name[^)]*)\)(?: WHERE completed_on IS NOT NULL)?")


@pytest.mark.parametrize(
    ("major", "locked", "table", "indexes"),
    [
        (
            "10",
            "pgboss.archive",
            "pgboss.job and pgboss.archive",
            ["archive_name_completed_on_idx", "job_name_state_completed_on_idx"],
        ),
        ("11", "pgboss.job_common", "pgboss.job", ["job_common_name_completed_on_idx"]),
    ],
)
def test_timeout_names_the_table_and_the_index(
    major: str, locked: str, table: str, indexes: list[str], templates: dict[str, Template], copy_db: Any
) -> None:
    import psycopg

    url = copy_db(templates[major])
    with psycopg.connect(url) as locker:
        locker.execute(f"LOCK TABLE {locked} IN ACCESS EXCLUSIVE MODE")  # held until the block ends
        m = pb(url, metric="error_rate", queue="q-main", statement_timeout=0.5)
    assert m.verdict is Verdict.ERROR
    assert m.explanation.startswith(f"query on {table} was cancelled by statement_timeout")
    assert m.explanation.split("; ")[1].startswith(
        "pg-boss 10's archive has no index on completed_on: CREATE INDEX" if major == "10" else "CREATE INDEX"
    )
    statements = STATEMENT.findall(m.explanation)
    assert [s.split(" IF NOT EXISTS ")[1].split()[0] for s in statements] == indexes
    for statement in statements:
        execute(url, statement)  # each suggestion is valid SQL
    for index in indexes:
        assert execute(url, "SELECT count(*) FROM pg_indexes WHERE indexname = %s", (index,)) == [(1,)]
    if major == "10":  # the index on the partitioned job table reached the queue's partition
        [(partitions,)] = execute(
            url,
            "SELECT count(*) FROM pg_inherits"
            " WHERE inhparent = 'pgboss.job_name_state_completed_on_idx'::regclass",
        )
        assert partitions >= 1
    assert pb(url, metric="error_rate", queue="q-main").value == pytest.approx(2 / 6)


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="needs a queue"):
        PgBossParams(metric="backlog")
    with pytest.raises(ValueError, match="internal to pg-boss"):
        PgBossParams(metric="backlog", queue="__pgboss__send-it")
    with pytest.raises(ValueError, match="percentile"):
        PgBossParams(metric="run_time", queue="q", percentile=100)
    with pytest.raises(ValueError, match="no value can pass"):
        PgBossParams(metric="backlog", queue="q", max=1, min=2)
    with pytest.raises(ValueError, match="unknown metric"):
        PgBossParams(metric="latency", queue="q")  # type: ignore[arg-type]
    assert PgBossParams(metric="stuck_active", queue="q").effective_max == 0
    assert PgBossParams(metric="live_workers").effective_min == 1


def test_a_stray_archive_beside_a_v12_schema_is_not_read(
    templates: dict[str, Template], copy_db: Any
) -> None:
    url = copy_db(templates["12"])
    # Simulated: a hand-migrated database kept pg-boss 10's archive table (with a failure in the window).
    execute(
        url,
        "CREATE TABLE pgboss.archive (LIKE pgboss.job);"
        " ALTER TABLE pgboss.archive ADD archived_on timestamptz",
    )
    execute(
        url,
        "INSERT INTO pgboss.archive SELECT *, now() FROM pgboss.job"
        " WHERE name = 'q-main' AND state = 'failed'",
    )
    m = pb(url, metric="error_rate", queue="q-main")
    assert m.inputs["layout"] == "v12" and m.value == pytest.approx(2 / 6)
    assert not any("archive" in q for q in m.inputs["queries"])
