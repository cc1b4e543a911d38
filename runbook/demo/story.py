"""The migration story the demo tells (and the end-to-end tests replay): a compressed copy of the shipped
runbook, the environment the `migrate` commands get, fault switches in the app's flag table, and the steps
(plan, advance through the increments, a bad stage rolled back by the watcher, recovery, retirement), each
a real `migrate` command in a subprocess whose key output lines are shown."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import psycopg

SCALE = 0.001
"""Time scale of the story: a runbook hour lasts 3.6 s, a day 86 s."""

# Timeouts are real seconds at any time scale (the loader does not compress them); the story only makes
# verify quicker to notice that the app picked up a flag.
_STORY_SETTINGS = {
    "    verify_deadline: 2m\n": "    verify_deadline: 30s\n",
    "    verify_interval: 2s\n": "    verify_interval: 0.25s\n",
}
_FLAG_TYPE = "    type: ${RUNBOOK_FLAG_BACKEND:-postgres}\n"
MANUAL_ITEMS = ("legacy-workers-stopped", "legacy-code-removed", "job-table-archived")
_KEY_LINE = re.compile(
    r"^(Advanced|Not advanced|Rolled back|Watch stopped|Ready:|Current:|Next:|Entered|error:|  hint:"
    r"|  - |  (FAIL|ERROR) |  auto-rollback|Left in pg-boss|Runbook \S+: stage|  PGBOSS_\w+ +desired"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC +#\d+|    reason:|    FAIL )"
)
_ROUND = re.compile(r"^#\d+ ")
LINE_MAX = 300


def shipped_runbook() -> str:
    """Return the text of the shipped stages.yaml (package data)."""
    return files("runbook.data").joinpath("stages.yaml").read_text(encoding="utf-8")


def compress_runbook(dest: Path, *, dotenv: Path | None = None, reload: Sequence[str] = ()) -> Path:
    """Write dest/stages.yaml: the shipped runbook with a quicker verify (30 s deadline, polled every 0.25 s).
    With `dotenv`, the flag backend section also names that file and the `reload` command (argv)."""
    text = shipped_runbook()
    for old, new in _STORY_SETTINGS.items():
        if text.count(old) != 1:
            raise ValueError(f"the shipped runbook no longer has exactly one line {old.strip()!r}")
        text = text.replace(old, new)
    if dotenv is not None:
        if text.count(_FLAG_TYPE) != 1:
            raise ValueError("the shipped runbook no longer sets settings.flags.type from the environment")
        extra = f"    path: {json.dumps(str(dotenv))}\n"
        if reload:
            extra += f"    reload: {json.dumps(list(reload))}\n"
            extra += "    reload_timeout: 10s\n"
        text = text.replace(_FLAG_TYPE, _FLAG_TYPE + extra)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "stages.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def story_env(
    database_url: str, app_url: str, *, scale: float = SCALE, soak: str = "1h", **overrides: str
) -> dict[str, str]:
    """Return the variables the `migrate` commands get: URLs, the time scale, short soaks (`soak` of story
    time each), small work minimums and memory limits that fit the example app (Node idles near 95 MB)."""
    env = {
        "DATABASE_URL": database_url,
        "APP_URL": app_url,
        "RUNBOOK_TIME_SCALE": str(scale),
        "MIN_IMPORT_JOBS": "5",
        # increment-2's all-processed check (max: 0, a point comparison) judges from the first finished job
        "MIN_JOBS_FOR_RATES": "1",
        # the rate checks' stated confidence: 0.6 passes a stage after 40 failure-free jobs of a queue (0.95:
        # 93, more than a compressed stage's load brings) and rolls the demo's fault back after about 7 jobs
        "RATE_CONFIDENCE": "0.6",
        "MIN_EVALUATION_JOBS": "20",
        "MAX_WORKER_RSS": "300MB",
        "MAX_RSS_GROWTH": "30MB",
        # a 250 ms job with the machine busy running all of this: allow pg-boss's extra round trips
        "MAX_EVALUATION_P95_RATIO": "1.5",
        "NO_COLOR": "1",
    }
    env |= {f"SOAK_INCREMENT_{n}": soak for n in range(1, 5)}
    env.update(overrides)
    return env


def set_app_flags(database_url: str, values: Mapping[str, str | None]) -> None:
    """Switch app settings at runtime (faults such as FAULT_FAIL_RATE_EVALUATION) the way the postgres flag
    backend does: upsert rows of runbook.flags (None deletes one), NOTIFY runbook_flags in the same
    transaction. The table must exist (the first `migrate advance` creates it)."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        for name, value in values.items():
            if value is None:
                conn.execute("DELETE FROM runbook.flags WHERE name = %s", (name,))
            else:
                conn.execute(
                    "INSERT INTO runbook.flags (name, value) VALUES (%s, %s)"
                    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )
        conn.execute("SELECT pg_notify('runbook_flags', %s)", (json.dumps({"flags": dict(values)}),))


@dataclass
class CliRun:
    """One `migrate` command the story ran."""

    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def command(self) -> str:
        return "migrate " + " ".join(self.args)

    def key_lines(self) -> list[str]:
        """Return the lines of its output that tell what happened."""
        rounds = [line for line in self.stderr.splitlines() if _ROUND.match(line)]
        lines = [line.rstrip() for line in (self.stdout + "\n" + self.stderr).splitlines()]
        keep = [line for line in lines if _KEY_LINE.match(line)]
        if rounds:  # a watch: its last round, one check per field
            keep.insert(0, rounds[-1])
        return [line if len(line) <= LINE_MAX else line[: LINE_MAX - 3] + "..." for line in keep]


@dataclass
class Story:
    """Drive the runbook with real `migrate` commands; `say` prints one line per step."""

    runbook: Path
    env: Mapping[str, str]
    database_url: str
    say: Callable[[str], None]
    rounds: int = 8
    interval: str = "10m"
    runs: list[CliRun] = field(default_factory=list)
    transitions: list[str] = field(default_factory=list)

    def migrate(self, *args: str, ok: Sequence[int] = (0,)) -> CliRun:
        """Run `migrate -f RUNBOOK ARGS` in a subprocess; show the command, its key lines and exit status."""
        argv = [sys.executable, "-m", "runbook", "-f", str(self.runbook), *args]
        began = time.monotonic()
        proc = subprocess.run(argv, env=dict(self.env), capture_output=True, text=True, timeout=300)
        run = CliRun(list(args), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - began)
        self.runs.append(run)
        self.say(f"  $ {run.command}   (exit {run.code}, {run.seconds:.1f}s)")
        for line in run.key_lines():
            self.say(f"    {line.strip()}")
        if run.code not in ok:
            raise RuntimeError(f"`{run.command}` exited {run.code} (expected {' or '.join(map(str, ok))})")
        return run

    def soak(self) -> CliRun:
        """Let the watcher sample the current stage for a while (stores the samples leak detection needs)."""
        return self.migrate("watch", "--interval", self.interval, "--max-samples", str(self.rounds))

    def advance(self, *extra: str, tries: int = 8) -> CliRun:
        """`migrate advance --yes`; while blocked (soak or work not yet done, an error rate not yet decided),
        watch a little and retry."""
        for _ in range(tries):
            run = self.migrate("advance", "--yes", *extra, ok=(0, 1))
            if run.code == 0:
                moved = re.search(r"^Advanced (\S+) -> (\S+)\.", run.stdout, re.M)
                if moved:
                    self.transitions.append(f"advance {moved.group(1)} -> {moved.group(2)}")
                return run
            self.migrate("watch", "--interval", self.interval, "--max-samples", "3")
        raise RuntimeError(f"could not advance after {tries} tries: {'; '.join(run.key_lines())}")

    def climb(self, stages: Sequence[str]) -> None:
        """Advance into each of `stages` in turn, soaking before each step but the first."""
        for n, stage in enumerate(stages):
            if n:
                self.soak()
            self.say(f"-> {stage}")
            extra = [a for item in MANUAL_ITEMS for a in ("--confirm", item)] if stage == "retired" else []
            self.advance(*extra)

    def bad_stage(self, fault: str = "FAULT_FAIL_RATE_EVALUATION", value: str = "0.8") -> CliRun:
        """Inject a fault and let the watcher find it; return the watch run (exit 4: rolled back). A job
        counts as failed once pg-boss has used up its retries (about 7 s of backoff here)."""
        self.say(
            f"!! injecting a fault: {fault}={value} (80% of evaluation runs throw; pg-boss retries them)"
        )
        set_app_flags(self.database_url, {fault: value})
        run = self.migrate(
            "watch", "--interval", self.interval, "--max-samples", str(self.rounds * 8), ok=(4,)
        )
        self.transitions.append("auto-rollback (watch)")
        set_app_flags(self.database_url, {fault: None})
        self.say(f"!! fault cleared: {fault} removed; jobs already in pg-boss are retried and drain")
        return run

    def tell(self) -> None:
        """The whole story: plan, three increments, a bad stage rolled back, recovery, retirement."""
        self.say("== 1. plan")
        self.migrate("plan")
        self.say("== 2. advance through increments 1-3 (soak: the watcher samples every monitor)")
        self.climb(["increment-1", "increment-2", "increment-3"])
        self.soak()
        self.say("== 3. a bad stage: the watcher rolls back on its own")
        self.bad_stage()
        self.migrate("history", "--operation", "auto-rollback", "-n", "1")
        self.migrate("status", ok=(0, 1))
        self.say(
            "== 4. recovery: the fault is fixed; walk the increments again, then retire the legacy system"
        )
        self.climb(["increment-1", "increment-2", "increment-3", "increment-4", "retired"])
