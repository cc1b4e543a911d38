"""The versioned schema of the state store, migrated by the tool itself.

Migrations are an ordered list; each runs once, in order, inside one transaction that holds a
transaction-level advisory lock, so any number of processes starting at once migrate exactly once. The
applied versions are rows of `{schema}.schema_version`. A database newer than this code is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from runbook.errors import ConfigError


@dataclass(frozen=True)
class Migration:
    """One step of the schema: a version number, what it does, and its statements (`{s}` = the schema)."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "state, events (append-only), samples, lock holders, leases",
        (
            """CREATE TABLE {s}.events (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                uuid uuid NOT NULL UNIQUE,
                runbook text NOT NULL,
                at timestamptz NOT NULL DEFAULT now(),
                actor text NOT NULL,
                host text NOT NULL,
                pid integer NOT NULL,
                ci_url text,
                operation text NOT NULL,
                from_stage text,
                to_stage text,
                flags_before jsonb,
                flags_after jsonb,
                verdicts jsonb NOT NULL DEFAULT '[]',
                reason text,
                outcome text,
                intent_id bigint REFERENCES {s}.events (id),
                data jsonb NOT NULL DEFAULT '{{}}',
                version bigint
            )""",
            "CREATE INDEX events_runbook_id ON {s}.events (runbook, id)",
            "CREATE INDEX events_runbook_operation_id ON {s}.events (runbook, operation, id)",
            """CREATE FUNCTION {s}.events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 RAISE EXCEPTION 'runbook events are append-only: % is not allowed', TG_OP
                   USING ERRCODE = 'insufficient_privilege';
               END $$""",
            """CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON {s}.events
               FOR EACH ROW EXECUTE FUNCTION {s}.events_append_only()""",
            """CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON {s}.events
               FOR EACH STATEMENT EXECUTE FUNCTION {s}.events_append_only()""",
            """CREATE TABLE {s}.state (
                runbook text PRIMARY KEY,
                stage text NOT NULL,
                version bigint NOT NULL DEFAULT 1,
                entered_at timestamptz NOT NULL DEFAULT now(),
                flags jsonb NOT NULL DEFAULT '{{}}',
                updated_at timestamptz NOT NULL DEFAULT now(),
                pending_intent bigint REFERENCES {s}.events (id)
            )""",
            """CREATE TABLE {s}.samples (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                runbook text NOT NULL,
                stage text NOT NULL,
                check_name text NOT NULL,
                at timestamptz NOT NULL DEFAULT now(),
                verdict text NOT NULL,
                value double precision,
                measurement jsonb NOT NULL
            )""",
            # Reads: one check of one stage over a time range. Pruning: one runbook, everything before a time.
            "CREATE INDEX samples_read ON {s}.samples (runbook, stage, check_name, at)",
            "CREATE INDEX samples_prune ON {s}.samples (runbook, at)",
            """CREATE TABLE {s}.lock_holders (
                runbook text PRIMARY KEY,
                operation text NOT NULL,
                actor text NOT NULL,
                host text NOT NULL,
                pid integer NOT NULL,
                ci_url text,
                backend_pid integer NOT NULL,
                acquired_at timestamptz NOT NULL DEFAULT now()
            )""",
            """CREATE TABLE {s}.leases (
                runbook text PRIMARY KEY,
                owner text NOT NULL,
                acquired_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "abort requests: a rollback asks the operation holding the lock to stop (preemption)",
        (
            """CREATE TABLE {s}.aborts (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                runbook text NOT NULL,
                requested_at timestamptz NOT NULL DEFAULT now(),
                actor text NOT NULL,
                host text NOT NULL,
                pid integer NOT NULL,
                ci_url text,
                reason text,
                to_stage text NOT NULL,
                flags jsonb NOT NULL,
                state_version bigint NOT NULL
            )""",
            "CREATE INDEX aborts_runbook_id ON {s}.aborts (runbook, id)",
        ),
    ),
    Migration(
        3,
        "invariants kept by PostgreSQL: one transition per state version, known verdict values",
        (
            # The event that moved the state to `version` (init, advance, rollback, an applied journal entry)
            # is marked; every other event only carries the version it was recorded at.
            "ALTER TABLE {s}.events ADD COLUMN transition boolean NOT NULL DEFAULT false",
            # History: the transition to a version is the first event carrying it. Marking it is the one
            # update the append-only log ever gets, inside this migration's transaction.
            "ALTER TABLE {s}.events DISABLE TRIGGER events_append_only",
            """UPDATE {s}.events SET transition = true WHERE id IN (
                 SELECT min(id) FROM {s}.events WHERE version IS NOT NULL GROUP BY runbook, version)""",
            "ALTER TABLE {s}.events ENABLE TRIGGER events_append_only",
            """CREATE UNIQUE INDEX events_one_transition_per_version ON {s}.events (runbook, version)
               WHERE transition""",
            """ALTER TABLE {s}.events ADD CONSTRAINT events_transition_has_version
               CHECK (NOT transition OR version IS NOT NULL)""",
            # Verdicts: new rows are checked; NOT VALID so that an upgrade never fails on rows written before.
            """ALTER TABLE {s}.samples ADD CONSTRAINT samples_verdict_known
               CHECK (verdict IN ('pass', 'fail', 'inconclusive', 'error')) NOT VALID""",
            """ALTER TABLE {s}.events ADD CONSTRAINT events_verdicts_known CHECK (
                 jsonb_typeof(verdicts) = 'array' AND NOT jsonb_path_exists(verdicts,
                   '$[*].verdict ? (@.type() != "string" || !(@ == "pass" || @ == "fail"
                                    || @ == "inconclusive" || @ == "error"))')
               ) NOT VALID""",
        ),
    ),
    Migration(
        4,
        "check tallies: each check's counts in a stage, kept as its samples are stored (no history reads)",
        (
            """CREATE TABLE {s}.tallies (
                runbook text NOT NULL,
                stage text NOT NULL,
                check_name text NOT NULL,
                since timestamptz NOT NULL,
                measurements integer NOT NULL CHECK (measurements > 0),
                failures integer NOT NULL CHECK (failures >= 0),
                fail_streak integer NOT NULL CHECK (fail_streak >= 0),
                error_streak integer NOT NULL CHECK (error_streak >= 0),
                last_verdict text NOT NULL CHECK (last_verdict IN ('pass', 'fail', 'inconclusive', 'error')),
                last_at timestamptz NOT NULL,
                PRIMARY KEY (runbook, stage, check_name, since)
            )""",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version


def advisory_key(*parts: str) -> int:
    """Derive a stable signed 64-bit advisory lock key from these name parts (same in every process)."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _installed(conn: psycopg.Connection[Any], schema: str) -> int:
    quoted = schema.replace('"', '""')
    row = conn.execute("SELECT to_regclass(%s)", (f'"{quoted}".schema_version',)).fetchone()
    if not row or row[0] is None:
        return 0
    q = sql.SQL("SELECT coalesce(max(version), 0) FROM {}.schema_version").format(sql.Identifier(schema))
    got = conn.execute(q).fetchone()
    return int(got[0]) if got else 0


def schema_exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    """Tell whether `schema` exists. CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when it
    does, which a least-privilege role (migrate init --role) owning its schema does not have."""
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = %s)", (schema,)
    ).fetchone()
    return bool(row and row[0])


def _check_not_newer(version: int, schema: str) -> None:
    if version > LATEST:
        raise ConfigError(
            f'the state schema "{schema}" is at version {version}, newer than this runbook release knows '
            f"({LATEST})",
            hint="upgrade runbook (pip install -U runbook) on this machine",
        )


def migrate(conn: psycopg.Connection[Any], schema: str = "runbook") -> list[int]:
    """Bring `schema` to the latest version; return the versions applied now (empty when up to date).

    `conn` must be in autocommit mode (no transaction open); the work happens in one transaction."""
    try:
        try:
            return _migrate(conn, schema)
        except psycopg.errors.UniqueViolation:
            # Another tool created the schema itself at the same moment (CREATE SCHEMA IF NOT EXISTS races).
            return _migrate(conn, schema)
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ReservedName) as exc:
        reason = str(exc.diag.message_primary or exc).strip()
        raise ConfigError(
            f'cannot create or upgrade the state schema "{schema}" ({reason})',
            hint="set settings.state.schema to a schema this role owns (not pg_*), or create it once as its "
            "owner: `migrate init --role NAME` writes runbook-role.sql to run with psql as a superuser",
        ) from None


def _migrate(conn: psycopg.Connection[Any], schema: str) -> list[int]:
    with conn.transaction():
        current = _installed(conn, schema)
    _check_not_newer(current, schema)
    if current == LATEST:
        return []
    ident = sql.Identifier(schema)
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key("runbook-migrate", schema),))
        if not schema_exists(conn, schema):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_version (version integer PRIMARY KEY, "
                "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(ident)
        )
        current = _installed(conn, schema)
        _check_not_newer(current, schema)
        for m in MIGRATIONS:
            if m.version <= current:
                continue
            for statement in m.statements:
                conn.execute(sql.SQL(statement).format(s=ident))
            conn.execute(
                sql.SQL("INSERT INTO {}.schema_version (version, description) VALUES (%s, %s)").format(ident),
                (m.version, m.description),
            )
            applied.append(m.version)
    return applied


def installed_version(conn: psycopg.Connection[Any], schema: str = "runbook") -> int:
    """Return the schema version in the database (0 = not installed)."""
    with conn.transaction():
        return _installed(conn, schema)
