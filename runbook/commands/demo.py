"""`migrate demo`: the whole migration on this machine, in a few minutes. An embedded PostgreSQL, Node and
real pg-boss, the example app under load, and the story (`runbook.demo.story`) told with real `migrate`
commands on a compressed copy of the shipped runbook. All it starts is stopped on exit, error or Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg

from runbook.errors import RunbookError
from runbook.exitcodes import ExitCode

Say = Callable[[str], None]


@dataclass
class DemoResult:
    """What the demo did: versions, time taken, the ledger (jobs per system, lost, duplicated), steps."""

    pgboss: str
    postgres: str
    node: str
    seconds: float
    stage: str
    ledger: dict[str, Any]
    load: dict[str, Any]
    transitions: list[str] = field(default_factory=list)
    commands: int = 0
    workdir: str | None = None
    template: str = "demo"

    @property
    def exit_code(self) -> ExitCode:
        ok = self.stage == "retired" and self.ledger.get("lost") == 0 and self.ledger.get("duplicated") == 0
        return ExitCode.OK if ok else ExitCode.NOT_READY

    def to_json(self) -> dict[str, Any]:
        return {
            "pgboss": self.pgboss,
            "postgres": self.postgres,
            "node": self.node,
            "seconds": round(self.seconds, 1),
            "stage": self.stage,
            "ledger": self.ledger,
            "load": self.load,
            "transitions": self.transitions,
            "advances": sum(t.startswith("advance") for t in self.transitions),
            "rollbacks": sum("rollback" in t for t in self.transitions),
            "commands": self.commands,
            "workdir": self.workdir,
            "exit_code": int(self.exit_code),
        }


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt (as Ctrl-C), so the same cleanup runs."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM while cleaning up, so a second Ctrl-C cannot leave processes behind."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _clean_env(runbook_text: str) -> dict[str, str]:
    """This process's environment without the variables the runbook reads (the demo decides those)."""
    names = set(re.findall(r"\$\{(\w+)", runbook_text)) | {"RUNBOOK_FILE", "RUNBOOK_TIME_SCALE"}
    return {k: v for k, v in os.environ.items() if k not in names}


def demo(
    *,
    pgboss: str = "12",
    keep: bool = False,
    say: Say = print,
    workdir: str | Path | None = None,
    transcript: str | Path | None = None,
) -> DemoResult:
    """Run the whole story; `keep` leaves everything running until Ctrl-C, to explore with `migrate`.
    `transcript` also receives every line said and the summary (plain text, for a README)."""
    lines: list[str] = []

    def tell(line: str) -> None:
        lines.append(line)
        say(line)

    try:
        result = _run(pgboss, keep, tell, workdir)
    except KeyboardInterrupt:  # _run has cleaned up by now
        raise RunbookError(
            "interrupted: the load, the app and PostgreSQL are stopped; nothing is left running",
            hint="run `migrate demo` again for the whole story (a few minutes)",
        ) from None
    if transcript:
        from runbook.output import Output

        summary = Output("text", color=False).render(result)
        Path(transcript).write_text("\n".join(lines) + "\n" + summary, encoding="utf-8")
    return result


def _run(pgboss: str, keep: bool, say: Say, workdir: str | Path | None) -> DemoResult:
    from runbook.demo import BackgroundLoad, ExampleApp, wait_until_settled
    from runbook.demo.story import SCALE, Story, compress_runbook, shipped_runbook, story_env
    from runbook.embedded import EmbeddedPostgres, with_dbname
    from runbook.toolchain import ensure_pgboss, find_node, installed_pgboss_version

    began = time.monotonic()
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="runbook-demo-"))
    owned = workdir is None
    root.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(root / "pg")
    app: ExampleApp | None = None
    load: BackgroundLoad | None = None
    with _sigterm_interrupts():
        try:
            say(
                f"runbook demo: the pg-boss migration in compressed time (x{SCALE:g}: a runbook hour is 3.6s)"
            )
            say(f"   work folder {root}")
            with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" (harmless)
                warnings.simplefilter("ignore")
                server_url = server.start()
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE app")
                pg_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            db_url = with_dbname(server_url, "app")
            say(f"-- PostgreSQL {pg_version} (embedded) started")
            node = find_node()
            node_version = ".".join(map(str, node.version))
            folder = ensure_pgboss(pgboss, node)
            version = installed_pgboss_version(folder)
            say(f"-- Node {node_version}, pg-boss {version} ready")
            app = ExampleApp(db_url, pgboss, {"JOB_MS": "250"}, root / "app").start()
            say(f"-- example app listening on {app.url} (pid {app.pid}); flags from the runbook.flags table")
            runbook = compress_runbook(root / "runbook")
            env = _clean_env(shipped_runbook()) | story_env(db_url, app.url)
            # 6 of each a second: a stage's rate checks (story confidence 0.6) pass after 40 jobs of a queue
            load = BackgroundLoad(app.url, rate=12.0, seconds=1800.0, eval_share=0.5, seed=1).start()
            say("-- load: 12 jobs/s (50% evaluations, 50% article imports), each with an idempotency key")
            story = Story(runbook, env, db_url, say)
            try:
                story.tell()
            except RuntimeError as exc:
                owned = False  # keep the logs
                raise RunbookError(
                    f"the demo stopped: {exc}", hint=f"read the app's log {app.log_path} and the output above"
                ) from None
            sent = load.stop()
            say(f"-- load stopped after {sent.sent} jobs; waiting for the queues to drain ...")
            ledger = wait_until_settled(db_url, timeout=120.0, expect_created=sent.sent)
            result = DemoResult(
                version,
                pg_version,
                node_version,
                time.monotonic() - began,
                "retired",
                ledger,
                sent.as_dict(),
                story.transitions,
                len(story.runs),
                str(root),
            )
            if keep:
                _keep_running(say, runbook, env, root)
            return result
        finally:
            with _uninterrupted():
                if load is not None:
                    load.stop()
                if app is not None:
                    app.stop()
                server.stop()
                if owned:
                    shutil.rmtree(root, ignore_errors=True)


def _keep_running(say: Say, runbook: Path, env: dict[str, str], root: Path) -> None:
    """Leave the app and the database up until Ctrl-C, and say how to reach them."""
    say("-- kept running; in another shell:")
    for name in ("DATABASE_URL", "APP_URL", "RUNBOOK_TIME_SCALE"):
        say(f"   export {name}='{env[name]}'")
    say(f"   migrate -f {runbook} status        (files in {root}; Ctrl-C here stops everything)")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)
