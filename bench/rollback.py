"""Rollback latency on the example app (real pg-boss 12, postgres flag backend, LISTEN/NOTIFY):

1. `migrate rollback`: from the command starting to the app routing to legacy (a thread polls the app's
   /api/health flags about every millisecond; a job is then sent to confirm where it lands). 50 trials,
   each from increment-1 reached with `migrate advance -y`. Target p99 < 500 ms.
2. `migrate watch --interval 1s`: a stale RUNNING legacy row is injected (the `legacy-evaluations-healthy`
   monitor then breaches); the time from the breaching sample being stored to the app using the flipped
   flags (and to the flags table's updated_at).
3. Preemption: `migrate advance -y` from legacy flips PGBOSS_ENABLED and polls a verify check that keeps
   failing (it looks for pg-boss in a schema that does not exist: PGBOSS_SCHEMA for that process only),
   holding the transition lock; then `migrate rollback` starts, and the flags table is read about every
   millisecond: the time from starting the command to the table holding every flag at its safe value. Each
   round must end with the advance preempted (exit 4, `preempted` event at verify), no transition recorded
   after the rollback, the state at legacy without a pending intent, the flags never leaving their safe
   values once reached, and a job sent afterwards landing in the legacy table. 30 rounds; same target.

Run: `.venv/bin/python -m bench.rollback` (`--trials N`, `--watch-trials N`, `--preempt-trials N`; 0 skips
that part, and the figures of a skipped part are carried over from the previous bench/results/rollback.json,
with the machine they were measured on)."""

from __future__ import annotations

import argparse
import json
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
    RESULTS,
    VENV_BIN,
    fresh_database,
    met,
    percentile,
    print_table,
    server,
    summary,
    write_results,
)
from bench.latency import prepare

TARGET_P99_MS = 500.0
STALE_ROW = """INSERT INTO "Job"
  ("id", "status", "attempts", "startedAt", "createdAt", "updatedAt", "evaluationId")
VALUES (%s, 'RUNNING', 1, (now() AT TIME ZONE 'UTC') - interval '2 hours',
        (now() AT TIME ZONE 'UTC') - interval '2 hours', now() AT TIME ZONE 'UTC', 'bench')"""
RUNBOOK = "pgboss-migration"
SAFE = {"PGBOSS_ENABLED": "false", "PGBOSS_FOR_NEW_EVALS": "false", "PGBOSS_FOR_ALL_JOBS": "false"}
"""The shipped runbook's safe flag values (legacy's): what a rollback must bring the flags table to."""
NO_PGBOSS = {"PGBOSS_SCHEMA": "bench_no_pgboss"}
"""For the preempted advance only: increment-1's `pgboss-installed` verify check then keeps failing."""
TRANSITIONS = ("init", "advance", "rollback", "auto-rollback", "reconcile")
"""Event operations that move the state (runbook.state.TRANSITIONS)."""


def stats(values: list[float]) -> dict[str, float]:
    """`summary` (median, p90, p99, min, max in ms) with p95."""
    out = summary(values)
    out["p95_ms"] = round(percentile([v * 1000 for v in values], 95), 2)
    return out


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


def spawn(workdir: Path, env: dict[str, str], *args: str, log: str | None = None) -> subprocess.Popen[str]:
    """Start `migrate ARGS` in `workdir`: its output into the file `log` there, else stderr piped as text
    (stdout dropped)."""
    argv = [str(VENV_BIN / "migrate"), *args]
    if log is None:
        return subprocess.Popen(
            argv, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
    with open(workdir / log, "w") as out:  # the child keeps its own copy of the file
        return subprocess.Popen(argv, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


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
        proc = spawn(workdir, env, "rollback", "--reason", "benchmark")
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
        "command_start_to_app_on_legacy": stats(flip),
        "command_start_to_exit": stats(done),
        "jobs_after_flip_routed_to": sorted(set(landed)),
    }


def watch_trials(workdir: Path, env: dict[str, str], app: Any, url: str, trials: int) -> dict[str, Any]:
    breach_to_app, breach_to_table, inject_to_app = [], [], []
    for i in range(trials):
        advance(workdir, env, app)
        proc = spawn(workdir, env, "watch", "--interval", "1s", log=f"watch-{i}.log")
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
        "breaching_sample_to_app_on_legacy": stats(breach_to_app),
        "breaching_sample_to_flags_written": stats(breach_to_table),
        "injected_fault_to_app_on_legacy": stats(inject_to_app),
    }


class Lines(threading.Thread):
    """Read a process's stderr line by line (so its pipe never fills); `wait_for` a line containing text."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def run(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.lines.append("")  # EOF
            self.changed.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.lines and self.lines[-1] == ""):
                    return False
                self.changed.wait(left)
        return True

    def text(self) -> str:
        return "".join(self.lines)


def read_flags(conn: psycopg.Connection[Any]) -> dict[str, str]:
    rows = conn.execute("SELECT name, value FROM runbook.flags WHERE name = ANY(%s)", (list(SAFE),))
    return dict(rows.fetchall())


def is_safe(flags: dict[str, str]) -> bool:
    return all(flags.get(name, value) == value for name, value in SAFE.items())  # no row: the safe value


def preempt_trials(workdir: Path, env: dict[str, str], app: Any, url: str, trials: int) -> dict[str, Any]:
    """`migrate rollback` while `migrate advance -y` (legacy -> increment-1) holds the lock polling verify."""
    to_safe, to_exit, advance_stopped, landed = [], [], [], []
    outcome = {"advance_preempted_at_verify": 0, "commits_after_rollback": 0, "advance_committed": 0}
    outcome |= {"state_clean": 0, "flags_left_safe_values": 0}
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(trials):
            if not is_safe(read_flags(conn)):
                raise SystemExit(f"preempt round {i}: the flags are not at legacy before the advance")
            before = conn.execute("SELECT coalesce(max(id), 0) FROM runbook.events").fetchone()
            baseline = int(before[0]) if before else 0
            adv = spawn(workdir, {**env, **NO_PGBOSS}, "advance", "-y")
            lines = Lines(adv)
            lines.start()
            if not lines.wait_for("verify: waiting for", 60) or is_safe(read_flags(conn)):
                adv.kill()
                adv.wait(30)
                lines.join(5)
                raise SystemExit(
                    f"preempt round {i}: the advance is not polling verify with its flags flipped: "
                    f"{lines.text()[-2000:]}"
                )
            start = time.perf_counter()
            rb = spawn(workdir, env, "rollback", "--reason", "benchmark", log=f"preempt-{i}.log")
            safe_at = rb_done = adv_done = None
            relapsed = False
            deadline = start + 60
            while rb_done is None or adv_done is None:
                safe = is_safe(read_flags(conn))
                now = time.perf_counter()
                if safe and safe_at is None:
                    safe_at = now - start
                relapsed = relapsed or (safe_at is not None and not safe)
                if rb_done is None and rb.poll() is not None:
                    rb_done = now - start
                if adv_done is None and adv.poll() is not None:
                    adv_done = now - start
                if now > deadline:
                    rb.kill()
                    adv.kill()
                    break
                time.sleep(0.001)
            rc, arc = rb.wait(30), adv.wait(30)
            lines.join(5)
            if safe_at is None or rb_done is None or adv_done is None or rc not in (0, 4):
                raise SystemExit(
                    f"preempt round {i}: rollback exited {rc}, advance {arc}, flags safe after {safe_at}: "
                    f"{(workdir / f'preempt-{i}.log').read_text()[-2000:]}\n{lines.text()[-2000:]}"
                )
            to_safe.append(safe_at)
            to_exit.append(rb_done)
            advance_stopped.append(adv_done)
            outcome["flags_left_safe_values"] += relapsed
            events = conn.execute(
                "SELECT id, operation, data FROM runbook.events WHERE runbook = %s AND id > %s ORDER BY id",
                (RUNBOOK, baseline),
            ).fetchall()
            moved = [(id_, op) for id_, op, _data in events if op in TRANSITIONS]
            rollbacks = [id_ for id_, op in moved if op == "rollback"]
            outcome["advance_committed"] += any(op == "advance" for _id, op in moved)
            outcome["commits_after_rollback"] += len(
                [1 for id_, _op in moved if rollbacks and id_ > rollbacks[0]]
            )
            steps = [(d.get("operation"), d.get("step")) for _id, op, d in events if op == "preempted"]
            outcome["advance_preempted_at_verify"] += (
                arc == 4
                and steps == [("advance", "verify")]
                and "advance preempted at verify" in lines.text()
            )
            state = conn.execute(
                "SELECT stage, pending_intent FROM runbook.state WHERE runbook = %s", (RUNBOOK,)
            ).fetchone()
            outcome["state_clean"] += len(rollbacks) == 1 and state == ("legacy", None)
            app.wait_for_flags({"PGBOSS_ENABLED": False}, timeout=10)
            landed.append(app.import_article(f"https://example.org/bench-preempt-{i}")["routedTo"])
    return {
        "trials": trials,
        "advance": "legacy -> increment-1 polling verify (pgboss-installed failing), holding the lock",
        "command_start_to_flags_safe": stats(to_safe),
        "command_start_to_exit": stats(to_exit),
        "command_start_to_advance_exit": stats(advance_stopped),
        **outcome,
        "jobs_after_rollback_routed_to": sorted(set(landed)),
    }


def previous() -> dict[str, Any]:
    """The last bench/results/rollback.json (figures of the parts a run skips are carried over)."""
    path = RESULTS / "rollback.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def row(what: str, s: dict[str, float], target: str = "-", ok: bool | None = None) -> list[str]:
    p95 = f"{s['p95_ms']:.0f} ms" if "p95_ms" in s else "-"  # carried-over figures may predate p95
    return [
        what,
        f"{s['median_ms']:.0f} ms",
        p95,
        f"{s['p99_ms']:.0f} ms",
        target,
        "-" if ok is None else met(ok),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--watch-trials", type=int, default=10)
    parser.add_argument("--preempt-trials", type=int, default=30)
    args = parser.parse_args(argv)
    from runbook.demo import ExampleApp

    rb = wt = pt = None
    with server() as srv, fresh_database(srv, "bench_rollback") as url, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = prepare(workdir, url)
        # the app's own sweep must not fail the injected stale row before the monitor sees it
        with ExampleApp(url, "12", {"LEGACY_STALE_SECONDS": "864000"}, workdir / "app") as app:
            env["APP_URL"] = app.url
            if args.trials:
                print(f"{args.trials} rollback trials ...", flush=True)
                rb = rollback_trials(workdir, env, app, args.trials)
            if args.watch_trials:
                print(f"{args.watch_trials} watch trials ...", flush=True)
                wt = watch_trials(workdir, env, app, url, args.watch_trials)
            if args.preempt_trials:
                print(f"{args.preempt_trials} preemption trials ...", flush=True)
                pt = preempt_trials(workdir, env, app, url, args.preempt_trials)
    old = previous()
    carried = [name for name, got in (("rollback", rb), ("watch", wt), ("preempt", pt)) if got is None]
    rb, wt, pt = rb or old.get("rollback"), wt or old.get("watch"), pt or old.get("preempt")
    rows: list[list[str]] = []
    ok = True
    target = f"p99 < {TARGET_P99_MS:.0f} ms"
    if rb:
        flip = rb["command_start_to_app_on_legacy"]
        ok = ok and flip["p99_ms"] < TARGET_P99_MS
        rows.append(
            row(
                "migrate rollback: start -> app routes to legacy",
                flip,
                target,
                flip["p99_ms"] < TARGET_P99_MS,
            )
        )
        rows.append(row("migrate rollback: start -> command exits", rb["command_start_to_exit"]))
    if wt:
        rows.append(
            row("watch 1s: breaching sample stored -> flags written", wt["breaching_sample_to_flags_written"])
        )
        rows.append(
            row(
                "watch 1s: breaching sample stored -> app routes to legacy",
                wt["breaching_sample_to_app_on_legacy"],
            )
        )
        rows.append(
            row("watch 1s: fault injected -> app routes to legacy", wt["injected_fault_to_app_on_legacy"])
        )
    if pt:
        safe = pt["command_start_to_flags_safe"]
        clean = (
            pt["advance_preempted_at_verify"] == pt["state_clean"] == pt["trials"]
            and pt["commits_after_rollback"] == pt["advance_committed"] == pt["flags_left_safe_values"] == 0
            and pt["jobs_after_rollback_routed_to"] == ["legacy"]
        )
        pt["met"] = safe["p99_ms"] < TARGET_P99_MS and clean
        ok = ok and pt["met"]
        rows.append(row("rollback during an advance in verify: start -> flags safe", safe, target, pt["met"]))
        rows.append(
            row("rollback during an advance in verify: start -> command exits", pt["command_start_to_exit"])
        )
        rows.append(
            row(
                "rollback during an advance in verify: start -> advance exits",
                pt["command_start_to_advance_exit"],
            )
        )
    print(f"\n{args.trials} rollback, {args.watch_trials} watch, {args.preempt_trials} preemption trials")
    if carried:
        when = old.get("machine", {}).get("when")
        print(f"carried over from the previous results ({when}): {', '.join(carried)}")
    if rb:
        print(f"jobs sent after the flip went to: {rb['jobs_after_flip_routed_to']}")
    if pt:
        n = pt["trials"]
        print(
            f"preemption: advance preempted at verify (exit 4) {pt['advance_preempted_at_verify']}/{n}, "
            f"commits after the rollback {pt['commits_after_rollback']}, "
            f"advance committed {pt['advance_committed']}, "
            f"state at legacy without intent {pt['state_clean']}/{n}, "
            f"flags left their safe values {pt['flags_left_safe_values']}, "
            f"jobs sent afterwards went to {pt['jobs_after_rollback_routed_to']}"
        )
    print()
    print_table(["what", "median", "p95", "p99", "target", "met?"], rows)
    data: dict[str, Any] = {
        "target_p99_ms": TARGET_P99_MS,
        "rollback": rb,
        "watch": wt,
        "preempt": pt,
        "p99_met": ok,
        "percentile_method": "linear interpolation",
    }
    if carried:
        data["carried_over"] = {"parts": carried, "machine": old.get("machine")}
    write_results("rollback", data)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
