"""Both ends of `migrate transfer pgboss`, checked before anything moves: the layouts (source pg-boss 10, 11
or 12, target 11 or 12), the source queues to move, and each one's table in the target, where a queue that
exists must have the source's policy (a missing one is made by runbook.transfer.pgboss_queues). Every
problem is a ConfigError or UsageError (exit 2) naming the fix."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from runbook.checks import pgboss_layout
from runbook.checks.sqlutil import MeasureError
from runbook.checks.sqlutil import Session as SqlSession
from runbook.errors import ConfigError, UsageError
from runbook.transfer.mapping import PLAIN_POLICIES

NOT_INSTALLED_HINTS = {
    "source": "name the schema the old pg-boss uses with --from-schema (and its database with --from-url)",
    "target": "start pg-boss 11 or 12 once on it (new PgBoss({{ schema: '{schema}' }}), boss.start() creates "
    "it), or name an installed one with --to-schema (and its database with --to-url)",
}
"""A missing schema: the fix is an option of this command, not settings.pgboss.schema (the checks' hint)."""


def layout(conn: psycopg.Connection[Any], schema: str, end: str) -> pgboss_layout.Layout:
    try:
        return pgboss_layout.detect(SqlSession(conn), schema)
    except pgboss_layout.NotInstalledError as exc:
        hint = NOT_INSTALLED_HINTS[end].format(schema=schema)
        raise ConfigError(f"{end}: {exc.message}", hint=hint) from None
    except MeasureError as exc:
        raise ConfigError(f"{end}: {exc.message}", hint=exc.hint) from None


def same_database(a: psycopg.Connection[Any], b: psycopg.Connection[Any]) -> bool:
    """Whether two connections reach one database of one server, however their URLs spell it (`localhost` for
    `127.0.0.1`, a port left out, other options): `b` sees `a`'s own server process, by its process id and
    start time, connected to `b`'s database. Any role may read those columns of pg_stat_activity."""
    mine = a.execute(
        "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
    ).fetchone()
    if mine is None:
        return False
    seen = b.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND backend_start = %s"
        " AND datname = current_database()",
        mine,
    ).fetchone()
    return bool(seen and seen[0])


def check_layouts(src: pgboss_layout.Layout, dst: pgboss_layout.Layout) -> None:
    """Source: pg-boss 10, 11 or 12; target: 11 or 12 (pg-boss 10 keeps no per-queue options a copy needs)."""
    if dst.name == "v10":
        raise ConfigError(
            f'target pg-boss schema "{dst.schema}" has the {dst.name} layout (schema version {dst.version}); '
            "migrate transfer pgboss writes the layouts of pg-boss 11 and 12",
            hint="pg-boss 11 and 12 cannot upgrade a v10 schema in place: start pg-boss 12 on a new schema "
            "(new PgBoss({ schema: 'pgboss_v12' }), boss.start()) and name it with --to-schema",
        )


def queues(conn: psycopg.Connection[Any], src: pgboss_layout.Layout, wanted: tuple[str, ...]) -> list[str]:
    names = [
        r[0] for r in conn.execute(sql.SQL("SELECT name FROM {} ORDER BY name").format(src.table("queue")))
    ]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise UsageError(
            f'no queue {", ".join(repr(m) for m in missing)} in source schema "{src.schema}"',
            hint="its queues are: " + (", ".join(names) or "none"),
        )
    return list(wanted) or names


def targets(
    dst_conn: psycopg.Connection[Any],
    src_conn: psycopg.Connection[Any],
    src: pgboss_layout.Layout,
    dst: pgboss_layout.Layout,
    names: list[str],
) -> tuple[dict[str, str], list[str]]:
    """Each queue's table in the target, and the queues the target lacks (runbook.transfer.pgboss_queues
    makes those); a queue the target holds must have the source's policy."""
    policies = dict(
        src_conn.execute(
            sql.SQL("SELECT name, policy FROM {} WHERE name = ANY(%s)").format(src.table("queue")), (names,)
        ).fetchall()
    )
    rows = dst_conn.execute(
        sql.SQL("SELECT name, policy, table_name FROM {} WHERE name = ANY(%s)").format(dst.table("queue")),
        (names,),
    ).fetchall()
    found = {name: (policy, table) for name, policy, table in rows}
    for name in names:
        if name not in found:
            continue
        policy = policies.get(name) or "standard"
        target_policy = found[name][0] or "standard"
        if target_policy != policy and not (policy in PLAIN_POLICIES and target_policy in PLAIN_POLICIES):
            raise ConfigError(
                f'queue "{name}" has policy "{policy}" in the source and "{target_policy}" in the target: '
                "pg-boss would keep other jobs than the source held",
                hint="recreate the target queue with the source's policy",
            )
    tables = {name: found[name][1] or "job" for name in names if name in found}
    return tables, [name for name in names if name not in found]
