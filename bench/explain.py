"""Capture the SQL that checks run (every psycopg cursor execute in this process while capturing) and
EXPLAIN (ANALYZE, BUFFERS) each application query, to show whether it is bounded by an index."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

BIG_TABLE_ROWS = 10_000
"""A scan that discards more rows than this (and more than it keeps) is not index-bounded."""
SKIP_PREFIXES = ("set ", "show ", "begin", "commit", "rollback", "reset ")


@dataclass
class Captured:
    queries: list[tuple[Any, Any]] = field(default_factory=list)


@contextlib.contextmanager
def capture() -> Iterator[Captured]:
    """Record (query, params) of every cursor execute in this process while the block runs."""
    got = Captured()
    original = psycopg.Cursor.execute

    def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        got.queries.append((query, params))
        return original(self, query, params, **kw)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    try:
        yield got
    finally:
        psycopg.Cursor.execute = original  # type: ignore[method-assign]


def _text(conn: psycopg.Connection[Any], query: Any) -> str:
    if isinstance(query, bytes):
        return query.decode()
    return query if isinstance(query, str) else str(query.as_string(conn))


def is_app_query(text: str, tables: tuple[str, ...]) -> bool:
    """Whether the query reads one of the application tables (not the catalog, not a SET)."""
    low = " ".join(text.split()).lower()
    if low.startswith(SKIP_PREFIXES) or "pg_catalog." in low or "to_regclass" in low:
        return False
    return any(t.lower() in low for t in tables)


def _scans(node: dict[str, Any], out: list[dict[str, Any]]) -> None:
    kind = node.get("Node Type", "")
    if "Scan" in kind and "Relation Name" in node:
        out.append(
            {
                "node": kind,
                "relation": f"{node.get('Schema', '')}.{node['Relation Name']}",
                "index": node.get("Index Name"),
                "rows": int(node.get("Actual Rows", 0)) * int(node.get("Actual Loops", 1)),
                "removed_by_filter": int(node.get("Rows Removed by Filter", 0))
                * int(node.get("Actual Loops", 1)),
            }
        )
    for child in node.get("Plans", []):
        _scans(child, out)


def _unbounded(scan: dict[str, Any], sizes: dict[str, float]) -> bool:
    """A scan that reads many rows only to throw most of them away: the filter, not an index, bounds it
    (a sequential scan of a big table, or an index that bounds the queue but not the window). A scan
    that keeps most of what it reads is bounded by the data the query needs."""
    removed = scan["removed_by_filter"]
    return removed > BIG_TABLE_ROWS and removed > scan["rows"]


def explain(url: str, queries: list[tuple[Any, Any]], tables: tuple[str, ...]) -> list[dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) every distinct application query (read-only transaction); one dict each."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    with psycopg.connect(url) as conn:
        conn.read_only = True
        sizes = {
            f"{r[0]}.{r[1]}": float(r[2])
            for r in conn.execute(
                "SELECT n.nspname, c.relname, c.reltuples FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')"
            )
        }
        for query, params in queries:
            text = _text(conn, query)
            key = " ".join(text.split()) + json.dumps(params, default=str, sort_keys=True)
            if not is_app_query(text, tables) or key in seen:
                continue
            seen.add(key)
            prefix = sql.SQL("EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON) ")
            body = sql.SQL(text) if isinstance(query, str | bytes) else query  # type: ignore[arg-type]
            try:
                row = conn.execute(sql.Composed([prefix, body]), params).fetchone()
            except psycopg.Error as exc:
                conn.rollback()
                out.append({"query": " ".join(text.split()), "error": str(exc).splitlines()[0]})
                continue
            assert row is not None
            plan = row[0][0]
            scans: list[dict[str, Any]] = []
            _scans(plan["Plan"], scans)
            unbounded = [s for s in scans if _unbounded(s, sizes)]
            top = plan["Plan"]
            out.append(
                {
                    "query": " ".join(text.split()),
                    "ms": round(float(plan.get("Execution Time", 0.0)), 2),
                    "buffers": int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0)),
                    "scans": scans,
                    "index_bounded": not unbounded,
                    "unbounded": [f"{s['node']} on {s['relation']}" for s in unbounded],
                }
            )
        conn.rollback()
    return out
