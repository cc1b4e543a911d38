"""Live pg-boss workers and the counters a supervising instance caches, with real pg-boss processes:
the v12 instance registry (a crash is a worker killed with SIGKILL), the proxies of 10 and 11 and of a v12
app that does not register, and cached queue counters written by a real supervisor."""

from __future__ import annotations

from typing import Any

import pytest

from runbook.checks.base import Verdict
from runbook.checks.pgboss import instances
from tests.integration.checks_pg.conftest import NodeWorker, Template, execute, pb, poll

pytestmark = pytest.mark.pgboss


@pytest.mark.parametrize("major", ["11", "12"])
def test_cached_counters_written_by_a_real_supervisor(
    major: str, templates: dict[str, Template], copy_db: Any, node: Any, pgboss_dirs: Any
) -> None:
    url = copy_db(templates[major])
    worker = NodeWorker(node, pgboss_dirs[major], url, "q-work", fast_monitor=True)  # monitors every second
    try:
        m = poll(
            lambda: pb(url, metric="backlog", queue="q-backlog"), lambda m: m.inputs["source"] == "cached"
        )
        deferred = pb(url, metric="backlog", queue="q-backlog", state="deferred")
        ready = pb(url, metric="backlog", queue="q-backlog", state="ready")
    finally:
        worker.kill()
    assert (m.value, m.inputs["source"], m.inputs["cache_column"]) == (5, "cached", "queue.queued_count")
    assert 0 <= m.inputs["cache_age"] < 120
    assert (deferred.value, deferred.inputs["source"]) == (2, "cached")
    # ready_count is cached from schema 32 (12.21); 11's layout has none, so ready is counted live.
    assert ready.value == 3 and ready.inputs["source"] == ("cached" if major == "12" else "live")


def test_live_workers_v12_registry_sees_a_crash(
    templates: dict[str, Template], copy_db: Any, node: Any, pgboss_dirs: Any
) -> None:
    import psycopg

    url = copy_db(templates["12"])
    worker = NodeWorker(node, pgboss_dirs["12"], url, "q-work")
    try:
        live = poll(lambda: pb(url, metric="live_workers", queue="q-work"), lambda m: m.value == 1)
        assert (live.verdict, live.value, live.inputs["source"]) == (Verdict.PASS, 1, "instance registry")
        worker.kill()  # kill -9: no stop(), stopped_on stays null, the heartbeat (1 s) goes quiet
        dead = poll(lambda: pb(url, metric="live_workers", queue="q-work"), lambda m: m.value == 0)
    finally:
        worker.kill()
    assert (dead.verdict, dead.value) == (Verdict.FAIL, 0)
    assert "1 quiet without stop() (crashed or frozen" in dead.explanation
    with psycopg.connect(url) as conn:
        rows = instances(conn, "pgboss")
    crashed = [r for r in rows if "q-work" in r["queues"]]
    assert len(crashed) == 1 and crashed[0]["pid"] == worker.pid
    assert crashed[0]["live"] is False and crashed[0]["stopped_on"] is None
    assert crashed[0]["heartbeat_on"] >= crashed[0]["started_on"]
    stopped = [r for r in rows if "q-main" in r["queues"]]  # the outcomes script, stopped gracefully
    assert len(stopped) == 1 and stopped[0]["stopped_on"] is not None and stopped[0]["live"] is False


def test_live_workers_v12_without_registration_uses_the_proxies(
    templates: dict[str, Template], copy_db: Any, node: Any, pgboss_dirs: Any
) -> None:
    url = copy_db(templates["12"])
    execute(url, "DELETE FROM pgboss.instance")  # the outcomes script's (stopped) row
    worker = NodeWorker(node, pgboss_dirs["12"], url, "q-work", registry=False)  # registerInstance: false
    try:
        m = pb(url, metric="live_workers")
    finally:
        worker.kill()
    assert execute(url, "SELECT count(*) FROM pgboss.instance") == [(0,)]
    assert m.verdict is Verdict.PASS and m.inputs["proxy"] is True and m.inputs["connections"] >= 1
    assert "the instance registry is empty: registerInstance: false?" in m.explanation


@pytest.mark.parametrize("major", ["10", "11"])
def test_live_workers_proxies_before_the_registry(
    major: str, templates: dict[str, Template], copy_db: Any, node: Any, pgboss_dirs: Any
) -> None:
    url = copy_db(templates[major])
    worker = NodeWorker(node, pgboss_dirs[major], url, "q-work")
    try:
        live = pb(url, metric="live_workers")
        assert live.verdict is Verdict.PASS and live.value >= 1
        assert live.inputs["proxy"] is True and live.inputs["connections"] >= 1
        assert "proxy (pg-boss" in live.explanation and "no worker registry" in live.explanation
        worker.kill()
        gone = poll(lambda: pb(url, metric="live_workers"), lambda m: m.inputs.get("connections") == 0)
    finally:
        worker.kill()
    assert gone.inputs["connections"] == 0
    # Simulated: an hour passes with no instance refreshing cron_on (nor monitor_on on 11).
    execute(url, "UPDATE pgboss.version SET cron_on = now() - interval '1 hour'")
    if major == "11":
        execute(url, "UPDATE pgboss.queue SET monitor_on = now() - interval '1 hour'")
    dead = pb(url, metric="live_workers")
    assert (dead.verdict, dead.value) == (Verdict.FAIL, 0)
    assert "version.cron_on 3600s ago" in dead.explanation
