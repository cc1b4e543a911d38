"""Transfer benchmark (issue 12): `migrate transfer legacy` moving N pending legacy rows into pg-boss 12,
beside pg-boss's own batch `boss.insert()` from Node for as many jobs of the same shape, in one run.

`.venv/bin/python -m bench.transfer [--rows N] [--batches 250,500,2000]`. Measured: rows/s of each (the
command's own total seconds and its wall time; node's time from the first insert to the last), the longest
batch (the command's per-batch claim-to-commit ms in -o json) and the worst wait of a concurrent probe that
every 10 ms locks the oldest pending legacy row without SKIP LOCKED (what an app updating a row of a batch
waits), and the peak RSS of the migrate process (psutil, sampled every 20 ms) at N and at N/10."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.common import VENV_BIN, fresh_database, met, print_table, server, write_results
from bench.scaledata import LEGACY_DDL, LEGACY_INDEXES, pgboss_folder, run_node, transfer_runbook
from runbook.commands.transfer import WORKERS

TARGET_LOCK_MS = 100.0
DEFAULT_BATCH = 250
"""migrate transfer legacy --batch default."""
DEFAULT_WORKERS = WORKERS
RUNBOOK = transfer_runbook("transfer-bench")
RUNBOOK_DELETE = RUNBOOK.replace("    marker_column: cancellationReason\n", "    moved: delete\n")
"""--moved delete: a moved row is deleted (settings.transfer.moved), not set to CANCELLED with a marker."""
assert RUNBOOK_DELETE != RUNBOOK
RUNBOOK_ARCHIVE = RUNBOOK.replace(
    "    marker_column: cancellationReason\n", "    moved: archive\n    archive_table: JobArchive\n"
)
"""--moved archive: a moved row is copied into "JobArchive" (the same columns, no index), then deleted."""
RUNBOOKS = {"cancel": RUNBOOK, "delete": RUNBOOK_DELETE, "archive": RUNBOOK_ARCHIVE}
ARCHIVE_DDL = 'CREATE TABLE "JobArchive" (LIKE "Job")'
FILL = """
INSERT INTO "Job" ("id", "status", "createdAt", "updatedAt", "evaluationId")
SELECT substr(md5(i::text), 1, 21), 'PENDING', c, c, 'eval_' || (i %% 250000)
FROM (SELECT i, (now() AT TIME ZONE 'UTC') - interval '30 days' + i * interval '1 ms' AS c
      FROM generate_series(1, %(rows)s::bigint) AS i) g
"""
CLAIM_INDEX = (
    'CREATE INDEX IF NOT EXISTS "Job_createdAt_pending_idx" ON "Job" ("createdAt", "id")'
    " WHERE \"status\" IN ('PENDING')"
)
"""The index `migrate transfer legacy` names in its warning on a table of more than 100,000 rows (without it
each batch sorts every pending row: 50-100 ms a batch at 100,000 pending rows, growing with the backlog)."""
PROBE_WINDOW = 200
PROBE = """SELECT "status" = 'PENDING' FROM "Job" WHERE "id" IN (SELECT substr(md5(g::text), 1, 21)
  FROM generate_series(%(k)s::bigint, %(k)s::bigint + %(w)s - 1) g) FOR UPDATE"""
"""Lock (by primary key) the next rows in claim order, as an app updating those rows would; rows a batch
holds make it wait until that batch commits. Row i of the fill has id substr(md5(i), 1, 21)."""


def build(url: str, rows: int) -> dict[str, Any]:
    start = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LEGACY_DDL)
        conn.execute(ARCHIVE_DDL)
        conn.execute(FILL, {"rows": rows})  # type: ignore[arg-type]
        filled = time.monotonic()
        for statement in (*LEGACY_INDEXES, CLAIM_INDEX):
            conn.execute(statement)  # type: ignore[arg-type]
        conn.execute('VACUUM ANALYZE "Job"')
    return {
        "rows": rows,
        "insert_s": round(filled - start, 1),
        "index_s": round(time.monotonic() - filled, 1),
    }


def settle(url: str) -> None:
    """Before each run: vacuum what the runs before it left (their moved rows' dead index entries at the head
    of the claim index, which every claim of a later run would step over) and checkpoint, so each run starts
    from the same state whatever ran before it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute('VACUUM ANALYZE "Job"')
        conn.execute("CHECKPOINT")


class Probe(threading.Thread):
    """Every 10 ms: lock the next PROBE_WINDOW rows in claim order from row `k` on (waiting for a batch that
    holds any), then roll back; `k` follows the transfer's front (rows no longer pending)."""

    def __init__(self, url: str, k: int) -> None:
        super().__init__(daemon=True)
        self.url, self.k, self.stop = url, k, threading.Event()
        self.waits: list[float] = []

    def run(self) -> None:
        with psycopg.connect(self.url) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.commit()
            while not self.stop.is_set():
                t0 = time.perf_counter()
                pending = [r[0] for r in conn.execute(PROBE, {"k": self.k, "w": PROBE_WINDOW}).fetchall()]
                self.waits.append(time.perf_counter() - t0)
                moved = PROBE_WINDOW - sum(1 for p in pending if p)  # no longer pending, or deleted
                self.k += max(0, moved - PROBE_WINDOW // 4)
                conn.rollback()
                time.sleep(0.01)


COUNTERS = (
    (
        "checkpoints",
        "SELECT num_timed + num_requested FROM pg_stat_checkpointer",
        "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter",
    ),
    ("wal_mb", "SELECT round(wal_bytes / 1048576.0) FROM pg_stat_wal", None),
    ("wal_full_page_images", "SELECT wal_fpi FROM pg_stat_wal", None),
    ("wal_buffers_full", "SELECT wal_buffers_full FROM pg_stat_wal", None),
    (
        "autovacuums",
        "SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) FROM pg_stat_all_tables",
        None,
    ),
)
"""What the server did during a run (differences of its cumulative statistics): checkpoints, log volume and
full-page images, times a backend found the log buffers full and wrote them itself, autovacuum/autoanalyze
runs. They tell a batch stalled by the server apart from one slowed by its own work."""


def counters(url: str) -> dict[str, float]:
    found: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        for name, *queries in COUNTERS:
            for q in queries:
                if q is None:
                    continue
                try:
                    found[name] = float(conn.execute(q).fetchone()[0])  # type: ignore[index]
                    break
                except psycopg.Error:
                    continue
    return found


def transfer(
    url: str, folder: Path, queue: str, batch: int, limit: int, probe: int | None, workers: int = 1
) -> dict[str, Any]:
    """Run the real CLI; its -o json totals, wall time, sampled peak RSS and the probe's waits."""
    cmd = [str(VENV_BIN / "migrate"), "-o", "json", "-f", str(folder / "stages.yaml"), "transfer", "legacy"]
    cmd += ["--queue", queue, "--batch", str(batch), "--workers", str(workers), "--limit", str(limit)]
    env = {**os.environ, "DATABASE_URL": url}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    p = Probe(url, probe) if probe else None
    if p:
        p.start()
    before = counters(url)
    t0 = time.monotonic()
    out_file = folder / f"{queue}.json"  # a file, not a pipe: the JSON of thousands of batches fills a pipe
    with out_file.open("wb") as sink:
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=sink, stderr=subprocess.DEVNULL)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.02)
    proc.wait()
    out = out_file.read_bytes()
    wall = time.monotonic() - t0
    if p:
        p.stop.set()
        p.join()
    time.sleep(0.6)  # statistics reach the cumulative views within 0.5 s (stats_fetch_consistency)
    after = counters(url)
    if proc.returncode != 0:
        raise SystemExit(f"migrate transfer legacy failed ({proc.returncode}): {out.decode()[-2000:]}")
    totals = json.loads(out)["totals"]
    batches = json.loads(out)["batches"]
    ms = sorted(b["ms"] for b in batches)
    result = {
        "queue": queue,
        "batch": batch,
        "workers": workers,
        "rows": totals["moved"],
        "seconds": totals["seconds"],
        "rows_per_second": totals["rows_per_second"],
        "wall_s": round(wall, 2),
        "wall_rows_per_second": round(totals["moved"] / wall, 1),
        "longest_batch_ms": totals["longest_batch_ms"],
        "median_batch_ms": ms[len(ms) // 2] if ms else None,
        "p99_batch_ms": ms[int(len(ms) * 0.99)] if ms else None,
        "batches_over_100ms": sum(1 for x in ms if x >= TARGET_LOCK_MS),
        "batches_total": len(ms),
        "peak_rss_mb": round(peak / 2**20, 1),
        "server": {k: after[k] - before[k] for k in after if k in before},
    }
    if p:
        result["probe"] = {
            "samples": len(p.waits),
            "worst_wait_ms": round(max(p.waits, default=0) * 1000, 1),
            "median_wait_ms": round(sorted(p.waits)[len(p.waits) // 2] * 1000, 2) if p.waits else None,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.transfer", description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows per measured transfer (N)")
    ap.add_argument(
        "--batches", default="250,500,2000", help="transfer batch sizes to try (250 is the default)"
    )
    ap.add_argument("--workers", default="1", help="transfer --workers to try with each batch size")
    ap.add_argument("--insert-batch", type=int, default=1000, help="jobs per boss.insert() call")
    ap.add_argument("--name", default="transfer", help="results file: bench/results/NAME.json")
    ap.add_argument(
        "--moved",
        choices=tuple(RUNBOOKS),
        default="cancel",
        help="what happens to a moved legacy row (settings.transfer.moved; cancel: status and marker; "
        'archive: copied into "JobArchive", then deleted)',
    )
    args = ap.parse_args(argv)
    n = args.rows
    combos = [(int(b), int(w)) for b in args.batches.split(",") for w in args.workers.split(",")]
    small = max(1, n // 10)
    started = time.monotonic()
    with server() as srv, fresh_database(srv, "transfer") as url, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "stages.yaml").write_text(RUNBOOKS[args.moved])
        (work / "app.env").write_text("PGBOSS_ENABLED=false\n")
        data = build(url, n * len(combos) + small)
        print(f"legacy: {data['rows']:,} pending rows ({data['insert_s']} s, indexes {data['index_s']} s)")
        folder = pgboss_folder("12", work)
        queues = ["node-insert", "small", *(f"transfer-{b}-{w}" for b, w in combos)]
        run_node(folder, url, "pgboss", "install", ",".join(queues))
        node = run_node(
            folder, url, "pgboss", "insert", "node-insert", str(n), str(args.insert_batch), timeout=3600
        )
        node["rows_per_second"] = round(node["jobs"] / (node["ms"] / 1000), 1)
        print(f"boss.insert: {n:,} jobs in {node['ms'] / 1000:.1f} s ({node['rows_per_second']:,.0f} rows/s)")
        runs = []
        for i, (b, w) in enumerate(combos):
            settle(url)
            r = transfer(url, work, f"transfer-{b}-{w}", b, n, probe=1 + i * n, workers=w)
            print(f"transfer --batch {b} --workers {w}: {r}", flush=True)
            runs.append(r)
        best = max(runs, key=lambda r: r["rows_per_second"])
        settle(url)
        tenth = transfer(url, work, "small", best["batch"], small, probe=None, workers=best["workers"])
        print(f"transfer --batch {best['batch']} --workers {best['workers']} at N/10: {tenth}", flush=True)
        with psycopg.connect(url) as conn:
            left = conn.execute("""SELECT count(*) FROM "Job" WHERE "status" = 'PENDING'""").fetchone()
    default = next((r for r in runs if (r["batch"], r["workers"]) == (DEFAULT_BATCH, WORKERS)), runs[0])
    ok = best["rows_per_second"] >= node["rows_per_second"] and all(
        _lock_ms(r) < TARGET_LOCK_MS for r in runs
    )
    path = write_results(
        args.name,
        {
            "rows": n,
            "pgboss": "12",
            "moved": args.moved,
            "legacy": data,
            "boss_insert": node,
            "transfer": runs,
            "best_batch": best["batch"],
            "best_workers": best["workers"],
            "default_batch": default["batch"],
            "tenth": tenth,
            "pending_left": int(left[0]) if left else None,
            "target_lock_ms": TARGET_LOCK_MS,
            "met": ok,
            "total_s": round(time.monotonic() - started, 1),
        },
    )
    print()
    print_table(["what", "rows/s", "detail", "target", "met?"], table_rows(json.loads(path.read_text())))
    return 0 if ok else 1


def _lock_ms(r: dict[str, Any]) -> float:
    """The longest a batch held its rows: the command's own figure or the probe's worst wait."""
    return float(max(r["longest_batch_ms"], r.get("probe", {}).get("worst_wait_ms", 0)))


def table_rows(res: dict[str, Any]) -> list[list[str]]:
    """Rows (what, rows/s, detail, target, met?) of a results file, for this benchmark and bench.summary."""
    node, n = res["boss_insert"], res["rows"]
    rows = [
        [
            f"boss.insert() from node, {n:,} jobs (pg-boss 12)",
            f"{node['rows_per_second']:,.0f}",
            f"{node['batches']:,} calls of {n // max(1, node['batches']):,} jobs",
            "-",
            "-",
        ]
    ]
    for r in res["transfer"]:
        workers = r.get("workers", 1)
        default = " (default)" if (r["batch"], workers) == (DEFAULT_BATCH, DEFAULT_WORKERS) else ""
        if res.get("moved", "cancel") != "cancel":
            default += f", moved: {res['moved']}"
        rows.append(
            [
                f"migrate transfer legacy --batch {r['batch']} --workers {workers}{default}, "
                f"{r['rows']:,} rows",
                f"{r['rows_per_second']:,.0f}",
                f"{r['rows_per_second'] / node['rows_per_second']:.2f}x insert; batch median "
                f"{r['median_batch_ms']:.0f} ms, p99 {r.get('p99_batch_ms', 0):.0f}, longest "
                f"{r['longest_batch_ms']:.0f} ms; probe worst wait "
                f"{r['probe']['worst_wait_ms']:.0f} ms",
                f">= insert, lock < {res['target_lock_ms']:.0f} ms",
                f"speed {met(r['rows_per_second'] >= node['rows_per_second'])}, "
                f"lock {met(_lock_ms(r) < res['target_lock_ms'])}",
            ]
        )
    best = next(
        r
        for r in res["transfer"]
        if (r["batch"], r.get("workers", 1)) == (res["best_batch"], res.get("best_workers", 1))
    )
    tenth = res["tenth"]
    rows.append(
        [
            f"migrate transfer legacy: peak RSS at {tenth['rows']:,} -> {best['rows']:,} rows",
            f"{tenth['peak_rss_mb']:.0f} -> {best['peak_rss_mb']:.0f} MB",
            f"--batch {best['batch']} --workers {best.get('workers', 1)}",
            "flat",
            met(best["peak_rss_mb"] <= tenth["peak_rss_mb"] * 1.1 + 5),
        ]
    )
    return rows


if __name__ == "__main__":
    sys.exit(main())
