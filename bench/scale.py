"""Checks at scale: every database check of the shipped runbook (pgboss, legacy, sql, work, compare; all
stages) measured as `migrate gate` measures them, on a legacy "Job" table of 10 million rows and on
pg-boss 10 and 12 schemas holding 5 million jobs each, with EXPLAIN (ANALYZE, BUFFERS) of every query and
pg-boss's own count calls (getQueueSize on 10, getQueueStats on 12) timed from node for comparison.

First without any index beyond the table's real ones (the legacy checks then refuse to scan and name the
index to create), then with those indexes. Run: `.venv/bin/python -m bench.scale` (a few minutes to build the
data; `--legacy-rows` / `--jobs` to scale down; `--keep-db NAME` keeps and reuses the database, which needs
a server of your own in TEST_DATABASE_URL or DATABASE_URL: the embedded one is deleted on exit)."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import explain, scaledata
from bench.common import REPO, met, print_table, server, summary, with_dbname, write_results

TARGET_S = 1.0
PGBOSS_EXTRA_INDEXES = (
    "archive_name_completed_on_idx",
    "job_name_state_completed_on_idx",
    "job_failed_completed_on_idx",
    "job_common_name_completed_on_idx",
)
DB_KINDS = frozenset({"pgboss", "legacy", "sql", "work", "compare"})
SCHEMAS = {"10": "pgboss10", "12": "pgboss12"}
INDEX_HINT = re.compile(r"(CREATE INDEX (?:CONCURRENTLY )?IF NOT EXISTS .*?)(?:;|$)")


def db_checks(session: Any) -> list[Any]:
    """Every check of the shipped runbook that reads the database, each once (all stages)."""
    out, seen = [], set()
    for stage in session.runbook.stages:
        for spec in (*stage.preflight, *stage.verify, *stage.monitor, *stage.soak.work):
            if spec.kind in DB_KINDS and repr(spec) not in seen:
                seen.add(repr(spec))
                out.append(spec)
    return out


def open_session(url: str, schema: str) -> Any:
    from runbook.session import Session

    env = {"DATABASE_URL": url, "PGBOSS_SCHEMA": schema, "RUNBOOK_FLAG_BACKEND": "postgres"}
    return Session.open(REPO / "stages.yaml", env=env)


def gate_round(url: str, schema: str, entered: dt.datetime) -> tuple[float, list[Any], list[Any]]:
    """Measure every database check once, as the gate does (fresh connections); return the wall time."""
    from runbook import engine

    session = open_session(url, schema)
    specs = db_checks(session)
    try:
        start = time.perf_counter()
        got = engine.measure(session, specs, "increment-3", entered)
        return time.perf_counter() - start, specs, got
    finally:
        session.close()


def per_check(url: str, schema: str, entered: dt.datetime) -> dict[str, float]:
    """Milliseconds of each check alone (one round, connection already open)."""
    from runbook import engine

    session = open_session(url, schema)
    out = {}
    try:
        for spec in db_checks(session):
            engine.measure(session, [spec], "increment-3", entered)  # connect outside the timing
            start = time.perf_counter()
            engine.measure(session, [spec], "increment-3", entered)
            out[f"{spec.name} ({spec.kind})"] = round((time.perf_counter() - start) * 1000, 1)
    finally:
        session.close()
    return out


def measure_gate(url: str, major: str, rounds: int, entered: dt.datetime) -> dict[str, Any]:
    schema = SCHEMAS[major]
    gate_round(url, schema, entered)  # warm the cache, as a database in use is
    times, last = [], []
    for _ in range(rounds):
        t, specs, got = gate_round(url, schema, entered)
        times.append(t)
        last = list(zip(specs, got, strict=True))
    with explain.capture() as cap:
        gate_round(url, schema, entered)
    plans = explain.explain(url, cap.queries, (schema + ".", '"Job"'))
    checks = [
        {
            "check": s.name,
            "kind": s.kind,
            "verdict": m.verdict.value,
            "value": m.value,
            "explanation": m.explanation,
        }
        for s, m in last
    ]
    return {
        "schema": schema,
        "checks": len(last),
        "gate": summary(times),
        "per_check_ms": per_check(url, schema, entered),
        "results": checks,
        "queries": plans,
        "all_index_bounded": all(p.get("index_bounded", False) for p in plans),
        "unbounded": [p for p in plans if not p.get("index_bounded", False)],
    }


def hinted_indexes(results: list[dict[str, Any]]) -> list[str]:
    """The CREATE INDEX statements that the legacy checks' errors name."""
    found: list[str] = []
    for r in results:
        for stmt in INDEX_HINT.findall(r["explanation"] or ""):
            if stmt not in found:
                found.append(stmt)
    return found


def pgboss_hints(url: str) -> list[str]:
    """The indexes the pgboss kind names on pg-boss 10 (`index_statements`, also in its timeout hints):
    neither the archive nor the job partitions have an index on completed_on, nor one for active jobs."""
    from runbook.checks.pgboss_layout import detect
    from runbook.checks.pgboss_queries import index_statements
    from runbook.checks.sqlutil import Session

    with psycopg.connect(url, autocommit=True) as conn:
        return index_statements(detect(Session(conn), SCHEMAS["10"]), None)


def runbook_indexes(url: str) -> list[str]:
    """The indexes the shipped runbook's own `sql` checks name (`index:`), for each pg-boss schema."""
    found: list[str] = []
    for schema in SCHEMAS.values():
        session = open_session(url, schema)
        try:
            for spec in db_checks(session):
                stmt = " ".join(getattr(spec.params, "index", "").split()) if spec.kind == "sql" else ""
                if stmt and stmt not in found:
                    found.append(stmt)
        finally:
            session.close()
    return found


def pgboss_counts(url: str, major: str, rounds: int, work: Path) -> dict[str, Any]:
    """pg-boss's own count calls timed from node, and the pgboss kind's backlog (live count) beside them."""
    from runbook.checks import get_kind
    from runbook.checks.pgboss import PgBossParams

    schema = SCHEMAS[major]
    queues = ["import-article", "evaluation"]
    node = scaledata.run_node(
        scaledata.pgboss_folder(major, work), url, schema, "counts", ",".join(queues), str(rounds)
    )
    session = open_session(url, schema)
    ours: dict[str, Any] = {}
    try:
        ctx = session.check_context(None, None)
        kind = get_kind("pgboss")
        for q in queues:
            params = PgBossParams(metric="backlog", queue=q, counters="live")
            kind.measure(params, ctx)
            runs, value = [], None
            for _ in range(rounds):
                start = time.perf_counter()
                m = kind.measure(params, ctx)
                runs.append(time.perf_counter() - start)
                value = m.value
            ours[q] = {"median_ms": round(statistics.median(runs) * 1000, 2), "value": value}
    finally:
        session.close()
    out = {}
    for q in queues:
        out[q] = {"runbook backlog (live)": ours[q]}
        for call, r in node[q].items():
            value = r["value"]
            if isinstance(value, dict):
                value = {k: v for k, v in value.items() if k.endswith("Count")}
            out[q][call] = {"median_ms": round(statistics.median(r["ms"]), 2), "value": value}
    return out


def build(url: str, legacy_rows: int, jobs: int, work: Path) -> dict[str, Any]:
    print(f'building: legacy "Job" {legacy_rows:,} rows ...', flush=True)
    legacy = scaledata.build_legacy(url, legacy_rows)
    print(f"  {legacy}", flush=True)
    out: dict[str, Any] = {"legacy": legacy}
    for major, schema in SCHEMAS.items():
        print(f"building: pg-boss {major} ({schema}) with {jobs:,} jobs ...", flush=True)
        out[f"pgboss{major}"] = scaledata.build_pgboss(url, major, schema, jobs, work)
        print(f"  {out[f'pgboss{major}']}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--legacy-rows", type=int, default=10_000_000)
    parser.add_argument("--jobs", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep-db", default=None, help="database name to keep (and reuse when it exists)")
    args = parser.parse_args(argv)
    with server() as srv, tempfile.TemporaryDirectory() as tmp:
        name = args.keep_db or f"bench_scale_{int(time.time())}"
        with psycopg.connect(srv, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = with_dbname(srv, name)
        try:
            start = time.monotonic()
            built = build(url, args.legacy_rows, args.jobs, Path(tmp)) if not exists else {"reused": name}
            built["total_s"] = round(time.monotonic() - start, 1)
            result = run(url, args.rounds, Path(tmp), built)
        finally:
            if not args.keep_db:
                with psycopg.connect(srv, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                    )
    return result


def reset_indexes(url: str) -> None:
    """Drop indexes on "Job" other than the real table's, and those added to pg-boss's tables (left by an
    earlier run on a kept database)."""
    real = {
        "Job_pkey",
        "Job_evaluationVersionId_key",
        "Job_evaluationId_idx",
        "Job_agentEvalBatchId_idx",
        "Job_originalJobId_idx",
        "Job_cancelledById_idx",
    }
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'Job'"
        )
        for (name,) in rows.fetchall():
            if name not in real:
                conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier("public", name)))
        for schema in SCHEMAS.values():  # and the ones the pgboss kind and the runbook name
            for name in PGBOSS_EXTRA_INDEXES:
                conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(schema, name)))


def run(url: str, rounds: int, work: Path, built: Mapping[str, Any]) -> int:
    entered = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)  # since_stage windows at their full length
    reset_indexes(url)
    phases: dict[str, Any] = {}
    print("gate without extra indexes ...", flush=True)
    phases["real_indexes"] = {m: measure_gate(url, m, rounds, entered) for m in SCHEMAS}
    hints = hinted_indexes([r for p in phases["real_indexes"].values() for r in p["results"]])
    hints += pgboss_hints(url)
    hints += runbook_indexes(url)
    created = []
    with psycopg.connect(url, autocommit=True) as conn:
        for stmt in hints:
            start = time.monotonic()
            conn.execute(stmt)  # type: ignore[arg-type]
            created.append({"statement": stmt, "seconds": round(time.monotonic() - start, 1)})
        conn.execute('ANALYZE "Job"')
    print(f"created the {len(created)} index(es) the checks and the runbook name; gate again ...", flush=True)
    phases["with_hinted_indexes"] = {m: measure_gate(url, m, rounds, entered) for m in SCHEMAS}
    counts = {m: pgboss_counts(url, m, rounds, work) for m in SCHEMAS}
    rows, ok_all = [], True
    for phase, by_major in phases.items():
        for major, r in by_major.items():
            errors = sum(1 for c in r["results"] if c["verdict"] == "error")
            ok = r["gate"]["median_ms"] < TARGET_S * 1000 and r["all_index_bounded"]
            if phase == "with_hinted_indexes":
                ok = ok and errors == 0
                ok_all = ok_all and ok
            rows.append(
                [
                    f"gate, {r['checks']} db checks, pg-boss {major}, {phase.replace('_', ' ')}",
                    f"{r['gate']['median_ms']:.0f} ms",
                    f"{r['gate']['p90_ms']:.0f} ms",
                    f"{errors} error(s)",
                    "yes" if r["all_index_bounded"] else "NO",
                    f"< {TARGET_S * 1000:.0f} ms, index-bounded"
                    + (", no errors" if phase != "real_indexes" else ""),
                    met(ok),
                ]
            )
    print(f"\n{rounds} rounds each; legacy rows {built.get('legacy', {}).get('rows', '?')}\n")
    print_table(
        ["what", "median", "p90", "checks in error", "all queries index-bounded", "target", "met?"], rows
    )
    crow = []
    for major, qs in counts.items():
        for q, calls in qs.items():
            for call, r in calls.items():
                crow.append([f"pg-boss {major}", q, call, f"{r['median_ms']:.1f} ms", str(r["value"])[:70]])
    print()
    print_table(["version", "queue", "call", "median", "value"], crow)
    for phase, by_major in phases.items():
        for major, r in by_major.items():
            for u in r["unbounded"]:
                print(
                    f"NOT index-bounded ({phase}, {major}): {u.get('unbounded') or u.get('error')}:",
                    u["query"][:200],
                )
    if hints:
        print("\nindexes named by the legacy checks:", *hints, sep="\n  ")
    write_results(
        "scale",
        {
            "target_s": TARGET_S,
            "rounds": rounds,
            "data": dict(built),
            "indexes_created": created,
            "phases": phases,
            "pgboss_counts": counts,
        },
    )
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
