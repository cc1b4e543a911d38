"""The migration with the `dotenv` flag backend: the app reads its flags from a .env file (FLAG_SOURCE=env,
ENV_FILE) and re-reads it on SIGHUP, which is the reload command of the runbook. An advance, then an
automatic rollback when import jobs start failing."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from tests.e2e.conftest import AppFactory
from tests.e2e.migration_support import APP_ENV, events, load, make_migration, settle

pytestmark = pytest.mark.e2e

HEADER = "# settings of the example app (kept by runbook)\nLOG_LEVEL=info\n"


def test_dotenv_backend_advances_and_rolls_back(make_app: AppFactory, pg_url: str, tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text(HEADER + "PGBOSS_ENABLED=false\n", encoding="utf-8")
    app = make_app("12", FLAG_SOURCE="env", ENV_FILE=str(env_file), **APP_ENV)
    reload = ["/bin/sh", "-c", f'kill -HUP "$(cat {app.pid_file})"']
    m = make_migration(tmp_path, pg_url, app, dotenv=env_file, reload=reload)
    assert app.health()["flagSource"] == "env"

    with load(app, rate=4) as bg:
        m.climb(["increment-1"])
        assert "PGBOSS_ENABLED=true" in env_file.read_text(encoding="utf-8").splitlines()
        assert app.health()["flags"]["PGBOSS_ENABLED"] is True  # verify waited for the SIGHUP re-read
        m.watch(3)
        with env_file.open("a", encoding="utf-8") as f:  # a bad deploy: imports start failing
            f.write("FAULT_FAIL_RATE_IMPORT=1\n")
        assert app.pid is not None
        os.kill(app.pid, signal.SIGHUP)
        output = m.gate_until_rollback()
        health = app.wait_for_flags({"PGBOSS_ENABLED": False}, timeout=5.0)
        lines = env_file.read_text(encoding="utf-8").splitlines()
        env_file.write_text(
            "\n".join(x for x in lines if not x.startswith("FAULT_")) + "\n", encoding="utf-8"
        )
        os.kill(app.pid, signal.SIGHUP)
        sent = bg.stop()

    assert health["flagSource"] == "env" and health["pid"] == app.pid  # reloaded in place, not restarted
    assert lines[:2] == HEADER.splitlines()  # comments and other settings kept byte for byte
    assert "PGBOSS_ENABLED=false" in lines and "FAULT_FAIL_RATE_IMPORT=1" in lines
    rate = re.search(r"FAIL\s+import-error-rate\s+error rate ([0-9.]+) \((\d+) failed of", output)
    assert rate and float(rate.group(1)) > 0.05 and int(rate.group(2)) > 0, output
    assert m.stage() == "legacy"
    (rollback,) = events(pg_url, "auto-rollback")
    assert (rollback["from_stage"], rollback["to_stage"]) == ("increment-1", "legacy")
    assert rollback["flags_after"]["PGBOSS_ENABLED"] == "false"

    summary = settle(pg_url, sent)
    assert (summary["duplicated"], summary["lost"]) == (0, 0), summary
    assert summary["failed"] == summary["routed_to"]["pgboss"]["failed"] > 0
    assert summary["processed_once"] + summary["failed"] == sent.sent
