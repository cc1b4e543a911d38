"""`migrate transfer pgboss` with pg-boss 11 (the v11 layout: schema 25-26, also 12.0-12.5) at either end:
11 -> 12 and 10 -> 11, each installed by real pg-boss's own start() and createQueue; ready, deferred and
singleton jobs sent by real pg-boss; after the transfer real workers of the target's major fetch every job
with its data, and the source holds none of them. Queues the v11 target lacks are made by its
create_queue()."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from runbook.exitcodes import ExitCode
from runbook.toolchain import ensure_pgboss, find_node, installed_pgboss_version
from tests.conftest import with_dbname
from tests.integration.checks_pg.legacy_app import DDL
from tests.integration.transfer.conftest import (
    JS,
    QUEUE_OPTIONS,
    Boss,
    migrate,
    pending_rows,
    sql_rows,
    write_runbook,
)


@pytest.fixture(scope="module")
def boss11(tmp_path_factory: pytest.TempPathFactory) -> Boss:
    node = find_node()
    installed = ensure_pgboss("11", node)
    folder = tmp_path_factory.mktemp("transfer-pgboss11")
    shutil.copy(JS / "boss.mjs", folder / "boss.mjs")
    (folder / "node_modules").symlink_to(installed / "node_modules")
    return Boss("11", installed_pgboss_version(installed), folder, node)


@pytest.fixture
def v11(pg_server_url: str, boss11: Boss) -> Iterator[str]:
    """A fresh database with pg-boss 11 installed and queue evals made by pg-boss 11 itself."""
    name = f"transfer11_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_dbname(pg_server_url, name)
    boss11.run(url, "setup", "evals", env={"QUEUE_OPTIONS": json.dumps(QUEUE_OPTIONS)})
    yield url
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def send_mix(boss: Boss, url: str) -> None:
    """3 ready jobs, 1 deferred an hour, 1 singleton: 5 unfinished jobs in evals."""
    boss.run(url, "send", "evals", "3")
    boss.run(url, "send", "evals", "1", env={"SEND_OPTIONS": '{"startAfter": 3600}', "SEND_DATA": '{"d": 1}'})
    boss.run(
        url, "send", "evals", "1", env={"SEND_OPTIONS": '{"singletonKey": "k1"}', "SEND_DATA": '{"s": 1}'}
    )


def transfer(tmp_path: Path, src: str, dst: str) -> tuple[int, dict[str, object]]:
    res = migrate(
        write_runbook(tmp_path), dst, "-o", "json", "transfer", "pgboss", "--from-schema", "pgboss",
        "--from-url", src, "--to-schema", "pgboss",
    )  # fmt: skip
    return res.exit_code, json.loads(res.stdout)


def moved_as_sent(src: str, dst: str) -> None:
    assert sql_rows(src, "SELECT count(*) FROM pgboss.job WHERE name = 'evals' AND state < 'active'") == [
        (0,)
    ]
    rows = sql_rows(
        dst,
        "SELECT count(*), count(*) FILTER (WHERE start_after > now() + interval '50 minutes'),"
        " count(*) FILTER (WHERE singleton_key = 'k1'), min(retry_limit), max(retry_limit)"
        " FROM pgboss.job WHERE name = 'evals'",
    )
    assert rows == [(5, 1, 1, 4, 4)]


def test_from_pgboss_11_into_12(
    boss11: Boss, v11: str, bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    dst = database("12")
    send_mix(boss11, v11)
    code, out = transfer(tmp_path, v11, dst)
    assert code == ExitCode.OK, out
    assert out["pgboss_layouts"] == {"source": "v11", "target": "v12"}
    assert out["totals"]["moved"] == 5  # type: ignore[index]
    moved_as_sent(v11, dst)
    seen = bosses["12"].run(dst, "work", "evals", "4")
    assert sorted(json.dumps(j["data"], sort_keys=True) for j in seen) == sorted(
        ['{"ref": 0}', '{"ref": 1}', '{"ref": 2}', '{"ref": 0, "s": 1}']
    )


def test_from_pgboss_10_into_11(
    boss11: Boss, v11: str, bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path
) -> None:
    src = database("10")
    send_mix(bosses["10"], src)
    code, out = transfer(tmp_path, src, v11)
    assert code == ExitCode.OK, out
    assert out["pgboss_layouts"] == {"source": "v10", "target": "v11"}
    assert out["created_queues"] == [
        "imports",
        "ref",
    ]  # pg-boss 11's own create_queue(), the source's options
    assert sql_rows(
        v11, "SELECT name, retry_limit, retry_delay, expire_seconds FROM pgboss.queue ORDER BY 1"
    ) == [
        ("evals", 4, 3, 120),
        ("imports", 4, 3, 120),
        ("ref", 4, 3, 120),
    ]
    moved_as_sent(src, v11)
    seen = boss11.run(v11, "work", "evals", "4")
    assert len(seen) == 4 and {j["data"]["ref"] for j in seen} == {0, 1, 2}


def test_legacy_rows_into_pgboss_11(boss11: Boss, v11: str, tmp_path: Path) -> None:
    with psycopg.connect(v11, autocommit=True) as conn:
        conn.execute(DDL)
    pending_rows(v11, 6)
    res = migrate(write_runbook(tmp_path), v11, "-o", "json", "transfer", "legacy", "--queue", "evals")
    assert res.exit_code == ExitCode.OK, res.output
    out = json.loads(res.stdout)
    assert out["pgboss_layout"] == "v11" and out["totals"]["moved"] == 6
    assert sql_rows(
        v11, "SELECT min(retry_limit), max(expire_seconds) FROM pgboss.job WHERE name = 'evals'"
    ) == [(4, 120)]
    seen = boss11.run(v11, "work", "evals", "6")
    assert sorted(j["data"]["evaluationId"] for j in seen) == [f"eval-{i}" for i in range(1, 7)]
