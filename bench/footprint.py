"""Watcher footprint: `migrate watch` on the shipped runbook at increment-1 (its six monitors: two HTTP
checks on the example app, three pg-boss checks, one legacy check), run back to back (`--interval 1ms`) for
10,000 samples. Reported: the watcher's RSS over the run (psutil, twice a second), time per sample at the
start and at the end, and database statements and transactions per sample.

Statements are counted in a second, shorter in-process run of the same watch (every psycopg cursor
execute is counted, split by what it touches); transactions come from pg_stat_database.xact_commit deltas
of the database during the CLI run, minus the example app's own rate measured just before (its workers poll
the same database). pg_stat_statements is not available in the embedded server.

Run: `.venv/bin/python -m bench.footprint` (`--samples N`, default 10000; several minutes)."""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench.common import RESULTS, VENV_BIN, fresh_database, met, print_table, server, write_results
from bench.latency import prepare
from bench.rollback import advance

TARGET_RSS_MB = 80.0
MB = 1024 * 1024


def xact(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def app_rate(url: str, seconds: float = 10.0) -> float:
    """Transactions per second on the database while only the example app runs."""
    a = xact(url)
    time.sleep(seconds)
    return (xact(url) - a - 2) / seconds  # the two stat reads are transactions too


def run_cli(workdir: Path, env: dict[str, str], samples: int, url: str) -> dict[str, Any]:
    """Run `migrate watch` as a process; sample its RSS and its round count twice a second."""
    log_path = workdir / "watch.log"
    rate = app_rate(url)
    before = xact(url)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(VENV_BIN / "migrate"), "watch", "--interval", "1ms", "--max-samples", str(samples)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        start = time.monotonic()
        ps = psutil.Process(proc.pid)
        trace: list[tuple[float, int, float]] = []
        while proc.poll() is None:
            try:
                rss = ps.memory_info().rss / MB
            except psutil.NoSuchProcess:
                break
            rounds = log_path.read_bytes().count(b"\n")  # one line per round (not a terminal)
            trace.append((round(time.monotonic() - start, 1), rounds, round(rss, 1)))
            time.sleep(0.5)
        rc = proc.wait()
    elapsed = time.monotonic() - start
    txns = xact(url) - before - rate * elapsed
    lines = log_path.read_text().splitlines()
    if rc != 0:
        raise SystemExit(f"migrate watch exited {rc}: {lines[-5:]}")
    rounds = len([ln for ln in lines if ln.strip()])
    return {
        "rc": rc,
        "rounds": rounds,
        "seconds": round(elapsed, 1),
        "trace": trace,
        "app_xact_per_s": round(rate, 1),
        "xact_per_sample": round(txns / max(rounds, 1), 2),
        "last_lines": lines[-2:],
    }


def rss_summary(trace: list[tuple[float, int, float]]) -> dict[str, Any]:
    """RSS medians per tenth of the run, the peak, and the growth from the first tenth to the last (a leak
    shows as growth; flat means no more than 5 MB of it)."""
    rss = [t[2] for t in trace if t[2] > 0]
    k = max(1, len(rss) // 10)
    tenths = [round(statistics.median(rss[i * k : (i + 1) * k]), 1) for i in range(min(10, len(rss) // k))]
    return {
        "rss_tenths_mb": tenths,
        "rss_first_tenth_mb": tenths[0],
        "rss_end_mb": tenths[-1],
        "rss_peak_mb": max(rss),
        "growth_mb": round(tenths[-1] - tenths[0], 1),
    }


def judge(rss: dict[str, Any]) -> bool:
    """Whether the RSS stayed under the target and did not grow."""
    return bool(rss["rss_peak_mb"] < TARGET_RSS_MB and rss["growth_mb"] <= 5.0)


def per_sample_times(trace: list[tuple[float, int, float]]) -> dict[str, float]:
    """Milliseconds per sample over the first and the last tenth of the run."""
    n = len(trace)
    if n < 20:
        return {}

    def ms(a: tuple[float, int, float], b: tuple[float, int, float]) -> float:
        return round((b[0] - a[0]) * 1000 / max(1, b[1] - a[1]), 1)

    k = n // 10
    return {"first_tenth_ms": ms(trace[1], trace[k]), "last_tenth_ms": ms(trace[-k], trace[-1])}


def count_statements(workdir: Path, env: dict[str, str], rounds: int) -> dict[str, Any]:
    """Run the same watch in this process for `rounds` rounds and count every statement it executes."""
    from bench.explain import capture
    from runbook.commands.watch import watch
    from runbook.session import Session

    counts: Counter[str] = Counter()
    with Session.open(workdir / "stages.yaml", env=env) as session, capture() as cap:
        watch(session, interval=0.001, max_rounds=rounds, stop=threading.Event())
        for query, _params in cap.queries:
            text = (
                query.decode()
                if isinstance(query, bytes)
                else query
                if isinstance(query, str)
                else repr(query)
            )
            low = text.lower()
            kind = (
                "state store"
                if "runbook" in low
                and (
                    "samples" in low or "state" in low or "lease" in low or "events" in low or "intent" in low
                )
                else "pg-boss check"
                if "pgboss" in low
                else "legacy check"
                if '"job"' in low
                else "catalog / session"
                if re.search(r"pg_|to_regclass|^\s*set |show ", low)
                else "other"
            )
            counts[kind] += 1
    total = sum(counts.values())
    return {
        "rounds": rounds,
        "statements_per_sample": round(total / rounds, 1),
        "by_kind_per_sample": {k: round(v / rounds, 1) for k, v in counts.most_common()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--count-rounds", type=int, default=200)
    parser.add_argument("--rejudge", action="store_true", help="re-judge bench/results/footprint.json")
    args = parser.parse_args(argv)
    if args.rejudge:
        saved = json.loads((RESULTS / "footprint.json").read_text())
        return report(saved["cli"], saved["statements"])
    from runbook.demo import ExampleApp

    with server() as srv, fresh_database(srv, "bench_footprint") as url, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = prepare(workdir, url)
        with ExampleApp(url, "12", {}, workdir / "app") as app:
            env["APP_URL"] = app.url
            advance(workdir, env, app)
            print(f"migrate watch for {args.samples:,} samples ...", flush=True)
            cli = run_cli(workdir, env, args.samples, url)
            print(f"counting statements over {args.count_rounds} rounds in-process ...", flush=True)
            stmts = count_statements(workdir, env, args.count_rounds)
    return report(cli, stmts)


def report(cli: dict[str, Any], stmts: dict[str, Any]) -> int:
    """Judge, print the table, write the results; exit status 1 when the target is missed."""
    rss = rss_summary(cli["trace"])
    times = per_sample_times(cli["trace"])
    ok = judge(rss)
    rows = [
        [
            f"RSS over {cli['rounds']:,} samples (first tenth -> last tenth, peak)",
            f"{rss['rss_first_tenth_mb']:.1f} -> {rss['rss_end_mb']:.1f} MB,"
            f" peak {rss['rss_peak_mb']:.1f} MB",
            f"no growth (<= 5 MB), < {TARGET_RSS_MB:.0f} MB",
            met(ok),
        ],
        [
            "time per sample (first tenth -> last tenth)",
            f"{times.get('first_tenth_ms', 0):.1f} -> {times.get('last_tenth_ms', 0):.1f} ms",
            "-",
            "-",
        ],
        ["statements per sample (in-process count)", f"{stmts['statements_per_sample']}", "-", "-"],
        [
            "transactions per sample (xact_commit delta minus the app's rate)",
            f"{cli['xact_per_sample']}",
            "-",
            "-",
        ],
    ]
    print()
    print_table(["what", "figure", "target", "met?"], rows)
    print("statements per sample by kind:", stmts["by_kind_per_sample"])
    write_results(
        "footprint",
        {
            "target_rss_mb": TARGET_RSS_MB,
            "rss": rss,
            "per_sample": times,
            "statements": stmts,
            "cli": cli,
            "met": ok,
        },
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
