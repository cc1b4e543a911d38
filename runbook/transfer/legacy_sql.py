"""The legacy side of a transfer: which rows are claimable, how a row's job data is built (in SQL, so values
keep PostgreSQL's own JSON form), the claim (`FOR UPDATE SKIP LOCKED`: never a row a legacy worker holds,
oldest first) and what happens to a moved row (a status and a marker, a delete, or a move to an archive)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from runbook.checks.legacy_table import LegacyTable
from runbook.sqltext import quote_ident, quote_literal
from runbook.transfer.mapping import Mapping

MISFIT = "runbook: "
"""Starts the text of the error the database raises for a row the mapping cannot make a job of (cast to an
integer, PostgreSQL quotes it in its message: report.failures shows it alone)."""


def where(m: Mapping) -> tuple[sql.Composable, list[Any]]:
    """Claimable rows of this transfer: pending statuses, the mapping's filter, the queue's types."""
    lt = m.legacy
    status, sparams = lt.status_in("pending")
    filt, fparams = lt.row_filter()
    parts: list[sql.Composable] = [status, filt]
    params: list[Any] = [*sparams, *fparams]
    if m.types is not None:
        parts.append(sql.SQL("{} = ANY(%s)").format(lt.col("type")))
        params.append(list(m.types))
    return sql.SQL(" AND ").join(parts), params


def data_expr(m: Mapping) -> sql.Composable:
    """The job's data as jsonb: the data column's object, the mapped columns and the legacy id over it."""
    ts = m.settings
    pairs: list[sql.Composable] = []
    for key, column in ts.data.items():
        pairs.append(sql.SQL("{}, {}").format(sql.Literal(key), sql.Identifier(column)))
    if ts.legacy_id_key:
        pairs.append(sql.SQL("{}, {}").format(sql.Literal(ts.legacy_id_key), m.legacy.col("id")))
    built = sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs))
    if not ts.data_column:
        return built
    source = sql.Identifier(ts.data_column)
    if not pairs:  # the column's JSON is the data as it is, whatever its kind (pg-boss takes any JSON)
        return sql.SQL("COALESCE({}::text::jsonb, '{{}}'::jsonb)").format(source)
    value = (
        source
        if m.legacy.columns[ts.data_column].type == "jsonb"
        else sql.SQL("{}::text::jsonb").format(source)
    )
    # Keys merge only into an object (`||` would make a string or an array into an array holding the keys):
    # NULL or JSON null is {}, anything else refuses the row, naming it (runbook.transfer.report.misfit).
    refuse = sql.SQL(
        "({marker} || 'legacy row ' || {id}::text || ' has a JSON ' || jsonb_typeof({v}) || {text})"
        "::int::text::jsonb"
    ).format(
        marker=sql.Literal(MISFIT),
        id=m.legacy.col("id"),
        v=value,
        text=sql.Literal(
            f" in settings.transfer.data_column {quote_ident(ts.data_column)}, not an object: the mapped "
            "keys (settings.transfer.data, legacy_id_key) can only be added to an object"
        ),
    )
    base = sql.SQL(
        "CASE WHEN jsonb_typeof({v}) = 'object' THEN {v} WHEN {v} IS NULL OR jsonb_typeof({v}) = 'null'"
        " THEN '{{}}'::jsonb ELSE {refuse} END"
    ).format(v=value, refuse=refuse)
    return sql.SQL("({} || {})").format(base, built)


def not_json(conn: psycopg.Connection[Any], m: Mapping, ids: list[Any]) -> str | None:
    """After PostgreSQL refused a batch with "invalid input syntax for type json": the message naming the
    first of `ids` (legacy ids, in their claim order) whose text data_column is not JSON, or None (not that,
    e.g. a jsonb column, or every row parses: another cast failed). A binary search over prefixes of `ids`,
    each probe one statement of its own on the idle autocommit `conn` (a refused probe leaves nothing to
    undo): about log2(batch) statements, run only once a batch failed, never while rows parse."""
    column = m.settings.data_column
    if not column or m.legacy.columns[column].type in ("jsonb", "json"):
        return None
    probe = sql.SQL("SELECT count({}::text::jsonb) FROM {} WHERE {} = ANY({})").format(
        sql.Identifier(column), m.legacy.ident, m.legacy.col("id"), _ids(m)
    )

    def refused(part: list[Any]) -> str | None:
        try:
            conn.execute(probe, {"ids": part})
        except psycopg.errors.InvalidTextRepresentation as exc:
            detail = (exc.diag.message_detail or "").strip().rstrip(".")
            return (exc.diag.message_primary or str(exc)).strip() + (f": {detail}" if detail else "")
        return None

    if not ids or refused(ids) is None:
        return None
    ok, bad = 0, len(ids)  # ids[:ok] parse, ids[:bad] do not
    while bad - ok > 1:
        middle = (ok + bad) // 2
        if refused(ids[:middle]) is None:
            ok = middle
        else:
            bad = middle
    why = refused(ids[bad - 1 : bad])
    return (
        f"legacy row {ids[bad - 1]} has text in settings.transfer.data_column {quote_ident(column)} that is "
        f"not JSON ({why})"
    )


def oldest(m: Mapping) -> tuple[sql.Composed, list[Any]]:
    """The ids of the oldest claimable rows, at most the last parameter (the dry run's sample, unlocked)."""
    lt = m.legacy
    cond, params = where(m)
    query = sql.SQL("SELECT {id} FROM {table} WHERE {cond} ORDER BY {created}, {id} LIMIT %s").format(
        id=lt.col("id"), table=lt.ident, cond=cond, created=lt.col("created")
    )
    return query, params


def start_after_value(m: Mapping) -> sql.Composable:
    """startAfter as a timestamptz or NULL (a timestamp without time zone read as UTC if it holds UTC)."""
    column = m.settings.start_after_column
    if not column:
        return sql.SQL("NULL::timestamptz")
    ident = sql.Identifier(column)
    kind = m.legacy.columns[column].type
    if kind.startswith("timestamp without") and m.legacy.settings.timestamps_utc:
        return sql.SQL("({} AT TIME ZONE 'UTC')").format(ident)
    return sql.SQL("{}::timestamptz").format(ident)


def start_after_expr(m: Mapping) -> sql.Composable:
    """startAfter as a JSON string or null (the dry run's sample)."""
    return sql.SQL("COALESCE(to_json({})::text, 'null')").format(start_after_value(m))


def select(m: Mapping) -> tuple[sql.Composed, list[Any]]:
    """id (as text and as is), data JSON text, startAfter JSON of the oldest claimable rows (the dry run's
    sample). The rows are chosen first, so the data of rows outside the sample is never computed."""
    lt = m.legacy
    cond, params = where(m)
    query = sql.SQL(
        "WITH c AS MATERIALIZED (SELECT {id} AS _rb_id, {created} AS _rb_created FROM {table} WHERE {cond}"
        " ORDER BY {created}, {id} LIMIT %s)"
        " SELECT {id}::text AS _rb_key, {id} AS _rb_id, {data}::text AS _rb_data, {start} AS _rb_start"
        " FROM {table} JOIN c ON {table}.{id} = c._rb_id ORDER BY c._rb_created, c._rb_id"
    ).format(
        id=lt.col("id"),
        data=data_expr(m),
        start=start_after_expr(m),
        table=lt.ident,
        cond=cond,
        created=lt.col("created"),
    )
    return query, params


def claim(m: Mapping, *, after: bool) -> tuple[sql.Composed, list[Any]]:
    """Lock the oldest claimable rows `FOR UPDATE SKIP LOCKED` (never a row a legacy worker holds); return
    each one's id as text (its job id's name), its id and its created value. Only these travel: the jobs are
    built from the rows in the database (jobs_source). The statement takes the batch size last.

    `after`: only rows past a (created, id) key, given before the size: a worker's next claim starts where
    its last one ended, so it does not step over the index entries of every row moved since the last vacuum
    (4 ms a claim after 400,000 moved rows, growing with every batch). Rows the key passes over (older rows
    that became claimable later) are taken by a claim from the start, which ends every worker's run."""
    lt = m.legacy
    cond, params = where(m)
    past: sql.Composable = sql.SQL("")
    if after:
        past = sql.SQL(" AND ({created}, {id}) > (%s::{ctype}, %s::{itype})").format(
            created=lt.col("created"),
            id=lt.col("id"),
            ctype=sql.SQL(lt.columns[lt.settings.created_column].type),
            itype=sql.SQL(lt.columns[lt.settings.id_column].type),
        )
    query = sql.SQL(
        "SELECT {id}::text AS _rb_key, {id} AS _rb_id, {created} AS _rb_created"
        " FROM {table} WHERE {cond}{past} ORDER BY {created}, {id} LIMIT %s FOR UPDATE SKIP LOCKED"
    ).format(id=lt.col("id"), table=lt.ident, cond=cond, past=past, created=lt.col("created"))
    return query, params


def jobs_source(m: Mapping) -> sql.Composed:
    """The claimed rows as the jobs to insert (columns id, data, "startAfter"), built in the database from
    the rows themselves: takes `%(ids)s` (legacy ids) and `%(jobs)s` (their job ids, in the same order).
    Data is never carried through the client, so it keeps PostgreSQL's own JSON form."""
    lt = m.legacy
    return sql.SQL(
        '(SELECT _rb_m._rb_job AS id, {data} AS data, {start} AS "startAfter" FROM {table}'
        " JOIN unnest({ids}, %(jobs)b::uuid[]) AS _rb_m(_rb_legacy, _rb_job)"
        " ON {table}.{id} = _rb_m._rb_legacy)"
    ).format(data=data_expr(m), start=start_after_value(m), table=lt.ident, ids=_ids(m), id=lt.col("id"))


def _ids(m: Mapping) -> sql.Composed:
    return sql.SQL("%(ids)b::{}[]").format(sql.SQL(m.legacy.columns[m.legacy.settings.id_column].type))


def has_claim_index(lt: LegacyTable) -> bool:
    """Tell whether a partial index leads with the created column (as claim_index_statement makes)."""
    return any(i.first_column == lt.settings.created_column and i.partial for i in lt.indexes)


def claim_index_statement(lt: LegacyTable) -> str:
    """The index the claim walks in its own order, over the pending rows only: each batch then reads the rows
    it takes instead of sorting every pending row (1 s a batch at a million pending rows) while it holds
    its rows locked."""
    st = lt.settings
    idx = quote_ident(f"{st.table}_{st.created_column}_pending_idx")
    columns = f"{quote_ident(st.created_column)}, {quote_ident(st.id_column)}"
    values = ", ".join(quote_literal(v) for v in lt.values("pending"))
    return (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {idx} ON {lt.name} ({columns})"
        f" WHERE {quote_ident(st.status_column)} IN ({values})"
    )


def counts(m: Mapping) -> tuple[sql.Composed, list[Any]]:
    """Claimable rows per type (one row `(None, n)` without a type column)."""
    lt = m.legacy
    cond, params = where(m)
    kind = lt.col("type") if m.types is not None else sql.SQL("NULL::text")
    query = sql.SQL("SELECT {kind}::text, count(*) FROM {table} WHERE {cond} GROUP BY 1 ORDER BY 1").format(
        kind=kind, table=lt.ident, cond=cond
    )
    return query, params


def mark(m: Mapping) -> list[sql.Composed]:
    """Statements marking the moved rows; each takes `%(ids)s` (legacy ids) and `%(jobs)s` (job ids)."""
    lt, ts = m.legacy, m.settings
    ids = _ids(m)
    if ts.moved == "delete":
        return [sql.SQL("DELETE FROM {} WHERE {} = ANY({})").format(lt.ident, lt.col("id"), ids)]
    if ts.moved == "archive":
        archive = sql.Identifier(lt.settings.schema, ts.archive_table or "")
        return [
            sql.SQL("INSERT INTO {} SELECT * FROM {} WHERE {} = ANY({})").format(
                archive, lt.ident, lt.col("id"), ids
            ),
            sql.SQL("DELETE FROM {} WHERE {} = ANY({})").format(lt.ident, lt.col("id"), ids),
        ]
    sets: list[sql.Composable] = [sql.SQL("{} = %(status)s").format(lt.col("status"))]
    if ts.marker_column:
        kind = sql.SQL(lt.columns[ts.marker_column].type)  # text, uuid, varchar(n): as the catalog names it
        sets.append(sql.SQL("{} = m.job_id::{}").format(sql.Identifier(ts.marker_column), kind))
    if ts.updated_column:
        sets.append(sql.SQL("{} = {}").format(sql.Identifier(ts.updated_column), _now(m, ts.updated_column)))
    return [
        sql.SQL(
            "UPDATE {table} t SET {sets} FROM unnest({ids}, %(jobs)b::text[]) AS m(legacy_id, job_id)"
            " WHERE t.{id} = m.legacy_id"
        ).format(table=lt.ident, sets=sql.SQL(", ").join(sets), ids=ids, id=lt.col("id"))
    ]


def _now(m: Mapping, column: str) -> sql.Composable:
    if m.legacy.columns[column].with_time_zone:
        return sql.SQL("now()")
    return sql.SQL("(now() AT TIME ZONE 'UTC')" if m.legacy.settings.timestamps_utc else "localtimestamp")
