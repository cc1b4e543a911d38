"""The `postgres` flag backend: flags are rows of a table the app reads at runtime, announced by NOTIFY.

Contract with the app (the example app in examples/pgboss-app implements it):

    CREATE TABLE {schema}.{table} (
        name       text PRIMARY KEY,
        value      text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text
    );

- The table is created by the first write if it is missing (defaults: schema `runbook`, table `flags`).
- A write sets every value in one transaction (a row's `updated_at`/`updated_by` change only when its
  value does) and, in the same transaction, sends `NOTIFY {channel}` (default `runbook_flags`) with the
  JSON payload `{"flags": {"NAME": "value", ...}, "by": "user@host pid N"}`: the values of that write.
  PostgreSQL delivers the notification on commit, so a listener never sees a value the table does not hold.
- The app should `LISTEN {channel}` and apply the payload at once (this is what makes a rollback instant),
  read the whole table at start-up and after every reconnect (notifications sent while it was disconnected
  are lost), and treat a missing row (or NULL) as "use the environment variable, else off".
- Values are text (`true`/`false` for booleans), exactly as declared in the runbook's `flags`.
- docs/app-contract.md is the whole contract (what "on" means, precedence, how fast a flip must be seen).

After writing, every value is read back on a fresh statement; a difference raises FlagWriteError.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from runbook import db
from runbook.errors import FlagWriteError, UnreachableError
from runbook.flags.base import mismatches
from runbook.redact import redact_url
from runbook.sqltext import quote_ident
from runbook.state.schema import advisory_key, schema_exists

SETTING = "settings.flags.url (or settings.database.url / DATABASE_URL)"
STATEMENT_TIMEOUT = 30.0
"""Default seconds any statement of the backend may take (a locked table must not hang a rollback)."""


class PostgresFlagBackend:
    """Flags in a PostgreSQL table, with NOTIFY on change."""

    def __init__(
        self,
        url: str | None,
        *,
        schema: str = "runbook",
        table: str = "flags",
        channel: str = "runbook_flags",
        connect_timeout: float = 5.0,
        statement_timeout: float = STATEMENT_TIMEOUT,
        setting: str = SETTING,
        shared: Callable[[], psycopg.Connection[Any] | None] | None = None,
    ) -> None:
        """`shared` returns an open connection to the same database (the state store's) for reads, or None;
        writes always use a connection of their own."""
        self.url, self.schema, self.table, self.channel = url, schema, table, channel
        self.connect_timeout, self.setting = connect_timeout, setting
        self.statement_timeout = statement_timeout
        self._ident = sql.Identifier(schema, table)
        self._shared = shared

    def describe(self) -> str:
        """Name the table without credentials: `postgres db:5432/app runbook.flags (NOTIFY runbook_flags)`."""
        where = db.describe_url(self.url) if self.url else "(no URL)"
        return f"postgres {where} {self.schema}.{self.table} (NOTIFY {self.channel})"

    def _connect(self) -> psycopg.Connection[Any]:
        return db.connect(
            self.url,
            what="the flags database",
            setting=self.setting,
            connect_timeout=self.connect_timeout,
            statement_timeout=self.statement_timeout,
            autocommit=True,
        )

    def _failed(self, exc: psycopg.Error, doing: str) -> Exception:
        reason = redact_url(str(exc)).strip().splitlines()
        text = reason[0] if reason else type(exc).__name__
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return UnreachableError(
                f"{doing} {self.schema}.{self.table} did not finish within"
                f" {self.statement_timeout:g}s ({text})",
                hint="something holds a lock on the flags table: look at pg_stat_activity",
            )
        if doing == "reading" and not isinstance(exc, psycopg.OperationalError):
            return UnreachableError(
                f"cannot read {self.schema}.{self.table}: {text}",
                hint="the database role needs SELECT on the flags table",
            )
        if isinstance(exc, psycopg.OperationalError):
            return UnreachableError(
                f"lost the connection to the flags database while {doing}: {text}",
                hint=f"check that the server is up and {self.setting}",
            )
        return FlagWriteError(
            f"{doing} {self.schema}.{self.table} failed: {text}",
            hint="the database role needs to create (once), read and write that table",
        )

    def read(self, names: Sequence[str]) -> dict[str, str | None]:
        """Read the values of `names` (None for a missing row; all None when there is no table)."""
        shared = self._shared() if self._shared is not None else None
        if shared is not None and not shared.closed:
            # one connection less for `status` and `plan`; a broken or busy shared one: read on our own
            try:
                return self._read(shared, names, borrowed=True)
            except psycopg.errors.QueryCanceled as exc:  # a lock on the table: another try would wait again
                raise self._failed(exc, "reading") from None
            except psycopg.OperationalError:
                pass
        try:
            with self._connect() as conn:
                return self._read(conn, names, borrowed=False)
        except psycopg.OperationalError as exc:
            raise self._failed(exc, "reading") from None

    def _read(self, conn: psycopg.Connection[Any], names: Sequence[str], *, borrowed: bool) -> dict[str, Any]:
        query = sql.SQL("SELECT name, value FROM {} WHERE name = ANY(%s)").format(self._ident)
        try:
            if borrowed:  # in a transaction of its own, with the backend's statement timeout
                with conn.transaction():
                    conn.execute(f"SET LOCAL statement_timeout = {int(self.statement_timeout * 1000)}")
                    rows = conn.execute(query, (list(names),)).fetchall()
            else:
                rows = conn.execute(query, (list(names),)).fetchall()
        except psycopg.errors.UndefinedTable:  # no table yet (the first write creates it): one round trip
            return dict.fromkeys(names)
        except psycopg.OperationalError:  # a lost connection: the caller retries on a fresh one
            raise
        except psycopg.Error as exc:
            raise self._failed(exc, "reading") from None
        found = dict(rows)
        return {name: found.get(name) for name in names}

    def _ensure_table(self, conn: psycopg.Connection[Any]) -> None:
        # CREATE ... IF NOT EXISTS needs CREATE on the database or schema even when the object exists: a
        # least-privilege role (migrate init --role) may only write an existing table
        name = f"{quote_ident(self.schema)}.{quote_ident(self.table)}"
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
        if found and found[0]:
            return
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s)", (advisory_key("runbook-flags", self.schema, self.table),)
        )
        if not schema_exists(conn, self.schema):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, value text NOT NULL, "
                "updated_at timestamptz NOT NULL DEFAULT now(), updated_by text)"
            ).format(self._ident)
        )

    def write(self, values: Mapping[str, str], *, actor: str = "") -> None:
        """Upsert every value and NOTIFY in one transaction, then read back (FlagWriteError on a mismatch)."""
        payload = json.dumps({"flags": dict(values), "by": actor})
        upsert = sql.SQL(
            "INSERT INTO {t} AS f (name, value, updated_at, updated_by) VALUES (%s, %s, now(), %s) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "
            "updated_by = excluded.updated_by WHERE f.value IS DISTINCT FROM excluded.value"
        ).format(t=self._ident)
        for attempt in (1, 2):
            try:
                with self._connect() as conn, conn.transaction():
                    self._ensure_table(conn)
                    with conn.cursor() as cur:
                        cur.executemany(upsert, [(k, v, actor or None) for k, v in values.items()])
                    conn.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
                break
            except psycopg.errors.UniqueViolation as exc:
                if attempt == 2:  # CREATE SCHEMA raced with another tool's; the second try sees it
                    raise self._failed(exc, "writing") from None
            except psycopg.Error as exc:
                raise self._failed(exc, "writing") from None
        bad = mismatches(values, self.read(list(values)))
        if bad:
            raise FlagWriteError(
                f"flag write did not stick ({self.describe()}): " + "; ".join(bad),
                hint=f"something else writes {self.schema}.{self.table} (a trigger, another tool): check it",
            )
