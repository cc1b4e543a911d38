"""The app as a process: crash on demand or after N seconds, SIGKILL, a memory leak that shows in its
memory figures, and the env-only flag source where a restart (or SIGHUP) is the reload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from runbook.demo import wait_until_settled
from runbook.errors import UnreachableError
from tests.e2e.conftest import REPO, AppFactory, set_flags

MB = 1024 * 1024


def test_crash_endpoint_crash_timer_and_kill(make_app: AppFactory, pg_url: str) -> None:
    app = make_app("12")
    assert app.call("POST", "/api/admin/crash") == {"crashing": True, "pid": app.pid}
    assert app.wait_exit(10) == 1
    assert "crashing on purpose: POST /api/admin/crash" in app.log_tail()
    with pytest.raises(UnreachableError):
        app.health()

    app.start()  # same port; a crash timer switched on through the flags table
    set_flags(pg_url, {"FAULT_CRASH_AFTER_SECONDS": "1"})
    assert app.wait_exit(15) == 1
    assert "CRASH_AFTER_SECONDS=1" in app.log_tail()

    set_flags(pg_url, {"FAULT_CRASH_AFTER_SECONDS": None})
    app.start()
    assert app.kill() == -signal.SIGKILL
    assert not app.running


def test_memory_leak_shows_in_health(make_app: AppFactory) -> None:
    app = make_app("12", LEAK_MB_PER_SEC="40", LEAK_MAX_MB="80")
    baseline = app.health()["memory"]
    deadline = time.monotonic() + 30
    while (health := app.health())["faults"]["leakedMb"] < 80:
        assert time.monotonic() < deadline, health
        time.sleep(0.2)
    assert health["faults"]["leakMbPerSec"] == 40
    assert health["memory"]["heapUsed"] >= 80 * MB
    assert health["memory"]["rss"] >= baseline["rss"] + 60 * MB


def test_env_flag_source_switches_by_restart(make_app: AppFactory, pg_url: str, tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("# written by the dotenv flag backend\nPGBOSS_ENABLED=false\n")
    set_flags(pg_url, {"PGBOSS_ENABLED": "true"})  # ignored: FLAG_SOURCE=env
    app = make_app("10", FLAG_SOURCE="env", ENV_FILE=str(env_file))
    health = app.health()
    assert health["flagSource"] == "env" and health["flags"]["PGBOSS_ENABLED"] is False
    assert app.import_article("https://example.com/1")["routedTo"] == "legacy"

    env_file.write_text("# written by the dotenv flag backend\nPGBOSS_ENABLED=true\n")
    port, pid = app.port, app.pid
    app.restart()
    assert app.port == port and app.pid != pid
    assert app.health()["flags"]["PGBOSS_ENABLED"] is True
    assert app.import_article("https://example.com/2")["routedTo"] == "pgboss"

    env_file.write_text("PGBOSS_ENABLED=false\n")  # SIGHUP re-reads the file without a restart
    assert app.pid is not None
    os.kill(app.pid, signal.SIGHUP)
    app.wait_for_flags({"PGBOSS_ENABLED": False}, timeout=5)
    assert app.import_article("https://example.com/3")["routedTo"] == "legacy"
    summary = wait_until_settled(pg_url, expect_created=3, timeout=30)
    assert summary["exactly_once"] is True
    assert summary["processed_by"] == {"legacy": 2, "pgboss": 1}


ORPHAN = """
import os, signal, sys
from runbook.demo import ExampleApp
app = ExampleApp(sys.argv[1], "12", workdir=sys.argv[2]).start()
print(app.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # the controller dies without stopping the app
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_app_exits_when_its_controller_dies(pg_url: str, tmp_path: Path, pgboss_dirs: object) -> None:
    child = subprocess.run(
        [sys.executable, "-c", ORPHAN, pg_url, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    pid = int(child.stdout.split()[0])
    deadline = time.monotonic() + 20
    while not _gone(pid):
        assert time.monotonic() < deadline, f"example app {pid} outlived its controller"
        time.sleep(0.1)
    log = (tmp_path / "app.log").read_text()
    assert "parent process gone: stopping" in log, log
