"""The load generator: a steady mix of jobs, local targets only, and no job lost or doubled when the app
restarts mid-load (requests are retried with the same idempotency key)."""

from __future__ import annotations

import time

import pytest

from runbook.demo import BackgroundLoad, run_load, wait_until_settled
from runbook.errors import ConfigError
from tests.e2e.conftest import AppFactory


def test_load_survives_an_app_restart(make_app: AppFactory, pg_url: str) -> None:
    app = make_app("12", PGBOSS_ENABLED="true")
    assert int(app.pid_file.read_text()) == app.pid
    load = BackgroundLoad(app.url, rate=20, seconds=2.5, eval_share=0.5, seed=3).start()
    time.sleep(0.8)
    app.restart()  # what a dotenv backend's reload command does
    result = load.wait(30)
    assert result.errors == 0, result.error_samples
    assert result.sent == 50 and sum(result.by_type.values()) == 50
    assert result.by_route == {
        "pgboss": result.by_type["import-article"],
        "legacy": result.by_type["evaluation"],
    }
    summary = wait_until_settled(pg_url, expect_created=50, timeout=60)
    assert summary["created"] == 50 and summary["exactly_once"] is True


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.1:3000", "http://127.0.0.2.nip.io"])
def test_load_refuses_remote_targets(url: str) -> None:
    with pytest.raises(ConfigError, match=r"only targets 127\.0\.0\.1"):
        run_load(url, rate=1, seconds=1)


@pytest.mark.parametrize(
    ("rate", "seconds", "share"), [(0, 1, 0.5), (500, 1, 0.5), (1, 7200, 0.5), (1, 1, 2)]
)
def test_load_bounds(rate: float, seconds: float, share: float) -> None:
    with pytest.raises(ConfigError, match="out of bounds"):
        run_load("http://127.0.0.1:9", rate=rate, seconds=seconds, eval_share=share)
