"""Rollback latency on the example app (real pg-boss 12, postgres flag backend, LISTEN/NOTIFY):

1. `migrate rollback`: from the command starting to the app routing to legacy (a thread polls the app's
   /api/health flags about every millisecond; a job is then sent to confirm where it lands). 50 trials,
   each from increment-1 reached with `migrate advance -y`. Target p99 < 500 ms.
2. `migrate watch --interval 1s`: a stale RUNNING legacy row is injected (the `legacy-evaluations-healthy`
   monitor then breaches); the time from the breaching sample being stored to the app using the flipped
   flags (and to the flags table's updated_at).

Run: `.venv/bin/python -m bench.rollback` (`--trials N`, `--watch-trials N`)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import (
    REPO,
    VENV_BIN,
    fresh_database,
    met,
    print_table,
    server,
    summary,
    write_results,
)
from bench.latency import initialise

TARGET_P99_MS = 500.0
STALE_ROW = """INSERT INTO "Job"
  ("id", "status", "attempts", "startedAt", "createdAt", "updatedAt", "evaluationId")
VALUES (%s, 'RUNNING', 1, (now() AT TIME ZONE 'UTC') - interval '2 hours',
        (now() AT TIME ZONE 'UTC') - interval '2 hours', now() AT TIME ZONE 'UTC', 'bench')"""


class FlagWatcher(threading.Thread):
    """Poll the app's /api/health until PGBOSS_ENABLED is false; remember when (perf_counter, time)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url + "/api/health"
        self.seen: tuple[float, float] | None = None
        self.polls = 0
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self.stop.is_set():
                flags = client.get(self.url).json()["flags"]
                self.polls += 1
                self.ready.set()
                if flags.get("PGBOSS_ENABLED") is False:
                    self.seen = (time.perf_counter(), time.time())
                    return
                time.sleep(0.001)


def migrate(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "migrate"), *args], cwd=workdir, env=env, capture_output=True, text=True
    )


def advance(workdir: Path, env: dict[str, str], app: Any) -> None:
    proc = migrate(workdir, env, "advance", "-y")
    if proc.returncode != 0:
        raise SystemExit(f"migrate advance failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    app.wait_for_flags({"PGBOSS_ENABLED": True}, timeout=10)


def rollback_trials(workdir: Path, env: dict[str, str], app: Any, trials: int) -> dict[str, Any]:
    flip, done, landed = [], [], []
    for i in range(trials):
        advance(workdir, env, app)
        watcher = FlagWatcher(app.url)
        watcher.start()
        watcher.ready.wait(5)
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(VENV_BIN / "migrate"), "rollback", "--reason", "benchmark"],
            cwd=workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        watcher.join(15)
        rc = proc.wait(30)
        ended = time.perf_counter()
        if rc not in (0, 4) or watcher.seen is None:  # 4: rolled back
            raise SystemExit(
                f"trial {i}: rollback exited {rc}, flip seen: {watcher.seen}: "
                f"{proc.stderr.read() if proc.stderr else ''}"
            )
        flip.append(watcher.seen[0] - start)
        done.append(ended - start)
        landed.append(app.import_article(f"https://example.org/bench-{i}")["routedTo"])
    return {
        "trials": trials,
        "command_start_to_app_on_legacy": summary(flip),
        "command_start_to_exit": summary(done),
        "jobs_after_flip_routed_to": sorted(set(landed)),
    }


def watch_trials(workdir: Path, env: dict[str, str], app: Any, url: str, trials: int) -> dict[str, Any]:
    breach_to_app, breach_to_table, inject_to_app = [], [], []
    for i in range(trials):
        advance(workdir, env, app)
        log = open(workdir / f"watch-{i}.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [str(VENV_BIN / "migrate"), "watch", "--interval", "1s"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        time.sleep(2.5)  # a couple of holding rounds first
        watcher = FlagWatcher(app.url)
        watcher.start()
        watcher.ready.wait(5)
        row = f"bench-stale-{i}"
        with psycopg.connect(url, autocommit=True) as conn:
            injected = time.time()
            conn.execute(STALE_ROW, (row,))
        watcher.join(30)
        rc = proc.wait(30)
        log.close()
        if watcher.seen is None or rc != 4:
            raise SystemExit(
                f"watch trial {i}: exit {rc}, flip seen {watcher.seen}: "
                f"{(workdir / f'watch-{i}.log').read_text()[-2000:]}"
            )
        with psycopg.connect(url, autocommit=True) as conn:
            got = conn.execute(
                "SELECT min(at) FROM runbook.samples WHERE check_name = 'legacy-evaluations-healthy'"
                " AND verdict = 'fail' AND at >= to_timestamp(%s)",
                (injected,),
            ).fetchone()
            flipped = conn.execute(
                "SELECT updated_at FROM runbook.flags WHERE name = 'PGBOSS_ENABLED'"
            ).fetchone()
            conn.execute('DELETE FROM "Job" WHERE "id" = %s', (row,))
        assert got and got[0] is not None and flipped is not None, (got, flipped)
        breach = got[0].timestamp()
        breach_to_app.append(watcher.seen[1] - breach)
        breach_to_table.append(flipped[0].timestamp() - breach)
        inject_to_app.append(watcher.seen[1] - injected)
    return {
        "trials": trials,
        "interval_s": 1.0,
        "breaching_sample_to_app_on_legacy": summary(breach_to_app),
        "breaching_sample_to_flags_written": summary(breach_to_table),
        "injected_fault_to_app_on_legacy": summary(inject_to_app),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--watch-trials", type=int, default=10)
    args = parser.parse_args(argv)
    from runbook.demo import ExampleApp

    with server() as srv, fresh_database(srv, "bench_rollback") as url, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        shutil.copy(REPO / "stages.yaml", workdir / "stages.yaml")
        env = {**os.environ, "DATABASE_URL": url, "RUNBOOK_FLAG_BACKEND": "postgres", "NO_COLOR": "1"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        initialise(workdir, env)
        # the app's own sweep must not fail the injected stale row before the monitor sees it
        with ExampleApp(url, "12", {"LEGACY_STALE_SECONDS": "864000"}, workdir / "app") as app:
            env["APP_URL"] = app.url
            print(f"{args.trials} rollback trials ...", flush=True)
            rb = rollback_trials(workdir, env, app, args.trials)
            print(f"{args.watch_trials} watch trials ...", flush=True)
            wt = watch_trials(workdir, env, app, url, args.watch_trials)
    flip = rb["command_start_to_app_on_legacy"]
    ok = flip["p99_ms"] < TARGET_P99_MS
    rows = [
        [
            "migrate rollback: start -> app routes to legacy",
            f"{flip['median_ms']:.0f} ms",
            f"{flip['p99_ms']:.0f} ms",
            f"p99 < {TARGET_P99_MS:.0f} ms",
            met(ok),
        ],
        [
            "migrate rollback: start -> command exits",
            f"{rb['command_start_to_exit']['median_ms']:.0f} ms",
            f"{rb['command_start_to_exit']['p99_ms']:.0f} ms",
            "-",
            "-",
        ],
        [
            "watch 1s: breaching sample stored -> flags written",
            f"{wt['breaching_sample_to_flags_written']['median_ms']:.0f} ms",
            f"{wt['breaching_sample_to_flags_written']['p99_ms']:.0f} ms",
            "-",
            "-",
        ],
        [
            "watch 1s: breaching sample stored -> app routes to legacy",
            f"{wt['breaching_sample_to_app_on_legacy']['median_ms']:.0f} ms",
            f"{wt['breaching_sample_to_app_on_legacy']['p99_ms']:.0f} ms",
            "-",
            "-",
        ],
        [
            "watch 1s: fault injected -> app routes to legacy",
            f"{wt['injected_fault_to_app_on_legacy']['median_ms']:.0f} ms",
            f"{wt['injected_fault_to_app_on_legacy']['p99_ms']:.0f} ms",
            "-",
            "-",
        ],
    ]
    print(
        f"\n{args.trials} rollback trials, {args.watch_trials} watch trials; "
        "jobs sent after the flip went to: "
        f"{rb['jobs_after_flip_routed_to']}\n"
    )
    print_table(["what", "median", "p99", "target", "met?"], rows)
    write_results(
        "rollback",
        {
            "target_p99_ms": TARGET_P99_MS,
            "rollback": rb,
            "watch": wt,
            "p99_met": ok,
            "percentile_method": "linear interpolation",
        },
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
