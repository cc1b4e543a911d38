"""Helpers of the whole-migration tests: the real `migrate` CLI (click's CliRunner, in process) on a
compressed copy of the shipped runbook, the example app with load in the background, and ledger assertions."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from click.testing import CliRunner, Result

from runbook.cli import main
from runbook.demo import BackgroundLoad, ExampleApp, LoadResult, wait_until_settled
from runbook.demo.story import MANUAL_ITEMS, SCALE, compress_runbook, story_env

APP_ENV = {"JOB_MS": "250"}
"""Jobs take 250 ms: real work dominates the fixed per-job overhead, so p95 comparisons are meaningful."""
INTERVAL = "10m"
"""Watch interval in story time: 0.6 s at the x0.001 scale."""


@dataclass
class Migration:
    """One migration under test: the runbook copy, the environment of every command, what ran."""

    runbook: Path
    env: dict[str, str]
    database_url: str
    log: list[str] = field(default_factory=list)

    def __call__(self, *args: str, expect: int | Sequence[int] | None = 0) -> Result:
        """Run `migrate -f RUNBOOK ARGS` through click; assert the exit code when `expect` is given."""
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            result = CliRunner().invoke(
                main, ["-f", str(self.runbook), *args], env=self.env, catch_exceptions=False
            )
        finally:  # `watch` installs its own handlers; give pytest its Ctrl-C back
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        self.log.append(f"$ migrate {' '.join(args)} -> {result.exit_code}\n{result.output}")
        codes = (expect,) if isinstance(expect, int) else expect
        if codes is not None:
            assert result.exit_code in codes, f"migrate {' '.join(args)}: {result.exit_code}\n{result.output}"
        return result

    def watch(self, rounds: int = 8, expect: int | Sequence[int] = 0) -> Result:
        """Let the watcher sample the current stage `rounds` times (0.6 s apart)."""
        return self("watch", "--interval", INTERVAL, "--max-samples", str(rounds), expect=expect)

    def gate_until_rollback(self, tries: int = 30) -> str:
        """Run `migrate gate --rollback-on-failure` (a CI job) until it rolls back; return its output."""
        for _ in range(tries):
            result = self("gate", "--rollback-on-failure", expect=(0, 1, 4))
            if result.exit_code == 4:
                return result.output
            time.sleep(0.5)
        raise AssertionError("the gate never rolled back:\n" + "\n".join(self.log[-3:]))

    def advance(self, *extra: str, tries: int = 10) -> Result:
        """`migrate advance --yes`; while it is blocked (soak, work, an error rate not decided yet: the
        story's RATE_CONFIDENCE passes one after 40 failure-free jobs), watch a little more and retry."""
        for _ in range(tries):
            result = self("advance", "--yes", *extra, expect=(0, 1))
            if result.exit_code == 0:
                assert re.search(r"^Advanced \S+ -> \S+\.", result.stdout, re.M), result.output
                return result
            assert "Not advanced" in result.stdout, result.output
            self.watch(3)
        raise AssertionError(f"still blocked after {tries} tries:\n{result.output}")

    def climb(self, stages: Sequence[str], soak_rounds: int = 8) -> None:
        """Advance into each stage in turn (soaking in the current one first, except for the first step)."""
        for n, stage in enumerate(stages):
            if n:
                self.watch(soak_rounds)
            extra = [a for item in MANUAL_ITEMS for a in ("--confirm", item)] if stage == "retired" else []
            self.advance(*extra)
            assert self.stage() == stage

    def stage(self) -> str:
        """Return the current stage recorded in the state store."""
        return str(rows(self.database_url, "SELECT stage FROM runbook.state")[0][0])

    def history(self, *args: str) -> str:
        """Return the text of `migrate history`."""
        return self("history", "-n", "200", *args).stdout


def make_migration(
    tmp_path: Path,
    database_url: str,
    app: ExampleApp,
    *,
    dotenv: Path | None = None,
    reload: Sequence[str] = (),
    **env: str,
) -> Migration:
    """Write the compressed runbook copy and build the command environment for `app`."""
    runbook = compress_runbook(tmp_path / "runbook", dotenv=dotenv, reload=reload)
    overrides = dict(env)
    if dotenv is not None:
        overrides["RUNBOOK_FLAG_BACKEND"] = "dotenv"
    return Migration(runbook, story_env(database_url, app.url, scale=SCALE, **overrides), database_url)


@contextmanager
def load(
    app: ExampleApp, rate: float = 16.0, seconds: float = 600.0, eval_share: float = 0.5
) -> Iterator[BackgroundLoad]:
    """Send jobs to the app in a background thread for the body of the `with`. By default 8 imports and 8
    evaluations a second: each rate check with confidence passes after 40 failure-free jobs of its queue."""
    bg = BackgroundLoad(app.url, rate=rate, seconds=seconds, eval_share=eval_share, seed=7).start()
    try:
        yield bg
    finally:
        bg.stop()


def settle(database_url: str, sent: LoadResult, timeout: float = 90.0) -> dict[str, Any]:
    """Wait until every job the load sent is done (or given up); return the ledger summary."""
    assert sent.errors == 0, sent.error_samples
    summary = wait_until_settled(database_url, timeout=timeout, expect_created=sent.sent)
    assert summary["created"] == sent.sent
    return summary


def rows(database_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one read query."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(query.encode(), params).fetchall()


def legacy_open(database_url: str) -> int:
    """Legacy rows still PENDING or RUNNING (the plan's drain query)."""
    return int(
        rows(database_url, """SELECT count(*) FROM "Job" WHERE status IN ('PENDING','RUNNING')""")[0][0]
    )


def events(database_url: str, operation: str) -> list[dict[str, Any]]:
    """Events of one operation from the state store, oldest first (reason, stages, data)."""
    found = rows(
        database_url,
        "SELECT to_jsonb(e) FROM runbook.events e WHERE operation = %s ORDER BY e.id",
        (operation,),
    )
    return [dict(r[0]) for r in found]


def flags_of(health: Mapping[str, Any]) -> dict[str, bool]:
    """The routing flags the app uses, from /api/health."""
    return {k: bool(v) for k, v in health["flags"].items()}
