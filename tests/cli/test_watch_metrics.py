"""`migrate watch --metrics-port` on loopback against real PostgreSQL: the scraped series equal `migrate
status -o json`, `promtool check metrics` accepts the exposition, a breach is a rollback counter increment
in the scrape that follows (the watcher keeps /metrics up until then), the probes answer 200/503 as the loop
and the lease say, bad options exit 2 naming the option, -o json announces the URLs as JSON, and one server
keeps several runbooks' series apart by their `runbook` label."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from runbook.commands.watch import watch
from runbook.metricnames import CATALOG
from runbook.metricserver import MetricsServer
from runbook.session import Session
from tests.cli.conftest import RUNBOOK, Outcome
from tests.cli.metricsupport import FAST_RUNBOOK, Series, Watcher, make_knob, parse, set_knob, value
from tests.promserver import promtool

Migrate = Callable[..., Outcome]


def assert_equals_status(series: Series, st: dict[str, object]) -> None:
    """Every figure the scrape and `migrate status -o json` both hold is the same."""
    stages = ["legacy", "one", "two", "done"]
    assert {s: value(series, "runbook_stage", stage=s) for s in stages} == {
        s: float(s == st["stage"]) for s in stages
    }
    assert value(series, "runbook_state_version") == st["version"]
    assert value(series, "runbook_soak_required_seconds") == st["soak_seconds"]
    assert value(series, "runbook_flag_drift") == float(bool(st["drift"]))
    latest = st["latest"]
    assert isinstance(latest, list) and latest, st
    for m in latest:
        check = m["check"]
        assert value(series, "runbook_check_value", check=check) == m["value"]
        verdicts = {
            v: value(series, "runbook_check_verdict", check=check, verdict=v) for v in ("pass", "fail")
        }
        assert verdicts == {"pass": float(m["verdict"] == "pass"), "fail": float(m["verdict"] == "fail")}


def test_scrape_equals_status_and_a_breach_is_a_rollback_increment(
    rb_dir: Path, migrate: Migrate, pg_url: str
) -> None:
    make_knob(pg_url, 0)
    assert migrate("advance", "--yes").code == 0
    w = Watcher(rb_dir, "--metrics-linger", "20s")
    try:
        w.wait_rounds(2)
        text, series = w.scrape()
        assert_equals_status(series, json.loads(migrate("-o", "json", "status").out))
        assert value(series, "runbook_watcher_lease_held") == 1.0
        assert value(series, "runbook_state_database_up") == 1.0
        assert value(series, "runbook_check_state", check="healthy", state="ok") == 1.0
        assert value(series, "runbook_rollbacks_total", cause="breach") == 0.0
        assert value(series, "runbook_transitions_total", operation="auto-rollback") == 0.0
        assert 0 <= value(series, "runbook_check_sample_age_seconds", check="healthy") < 30
        assert value(series, "runbook_watch_sample_duration_seconds_count") >= 2
        families = {f.name for f in text_string_to_metric_families(text)}
        ours = {f for f in families if f.startswith("runbook_")}  # no runbook_*_created (docs/metrics.md)
        assert ours == set(CATALOG)
        lint = promtool("check", "metrics", stdin=text)
        assert (lint.returncode, lint.stdout + lint.stderr) == (0, "")
        assert (w.get("/healthz").status_code, w.get("/readyz").status_code) == (200, 200)
        assert w.get("/nothing").status_code == 404

        set_knob(pg_url, 9)
        breached = time.monotonic()
        last: Series = {}
        while w.proc.poll() is None and time.monotonic() - breached < 60:
            try:  # every scrape until the watcher exits: the last one read the final figures
                last = w.scrape()[1]
            except Exception:  # the server closed between poll() and the request
                break
            time.sleep(0.1)
        assert w.proc.wait(timeout=30) == 4, w.stderr
        # it left as soon as the final figures were scraped, not at the end of --metrics-linger 20s
        assert time.monotonic() - breached < 15
    finally:
        w.stop()
    assert value(last, "runbook_rollbacks_total", cause="breach") == 1.0
    assert value(last, "runbook_transitions_total", operation="auto-rollback") == 1.0
    assert value(last, "runbook_breaches_total", outcome="rolled-back") == 1.0
    assert value(last, "runbook_check_value", check="healthy") == 9.0
    assert value(last, "runbook_check_state", check="healthy", state="breached") == 1.0
    st = json.loads(migrate("-o", "json", "status").out)
    assert st["stage"] == "legacy"
    assert value(last, "runbook_stage", stage="legacy") == 1.0
    assert value(last, "runbook_watcher_lease_held") == 0.0


def test_probes_follow_the_loop_and_the_lease(rb_dir: Path, migrate: Migrate, pg_url: str) -> None:
    (rb_dir / "stages.yaml").write_text(FAST_RUNBOOK)
    make_knob(pg_url, 0)
    assert migrate("advance", "--yes").code == 0
    first = Watcher(rb_dir, "--metrics-linger", "0s")
    second: Watcher | None = None
    try:
        first.wait_rounds(1)
        # a standby waiting for the lease is alive but not ready, and says it does not hold the lease
        second = Watcher(rb_dir, "--wait", "--metrics-linger", "0s")
        time.sleep(1.0)
        assert (second.get("/healthz").status_code, second.get("/readyz").status_code) == (200, 503)
        assert value(second.scrape()[1], "runbook_watcher_lease_held") == 0.0
        # the loop stalls (the state tables locked): not live after 3 intervals + the 1 s check timeout
        with psycopg.connect(pg_url) as conn:
            conn.execute("LOCK TABLE runbook.state, runbook.leases IN ACCESS EXCLUSIVE MODE")
            time.sleep(3.0)
            stalled = first.get("/healthz")
            assert (stalled.status_code, stalled.text) == (503, "the watch loop has not reported in time\n")
        assert until_status(first, "/healthz", 200), "the loop did not report again after the lock went"
        first.stop()
        assert first.proc.returncode == 0, first.stderr
        # the lease was released on SIGTERM: the standby takes it and becomes ready
        assert until_status(second, "/readyz", 200), second.stderr
        assert value(second.wait_rounds(1), "runbook_watcher_lease_held") == 1.0
    finally:
        first.stop()
        if second is not None:
            second.stop()


def until_status(w: Watcher, path: str, status: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while w.get(path).status_code != status:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_bad_metrics_options_exit_2_naming_the_option(rb_dir: Path, migrate: Migrate) -> None:
    for port in ("70000", "-1", "http"):
        r = migrate("watch", "--metrics-port", port, "--max-samples", "1")
        assert r.code == 2, r.text
        assert "--metrics-port" in r.err
    r = migrate("watch", "--metrics-address", "0.0.0.0", "--max-samples", "1")
    assert r.code == 2 and "--metrics-address needs --metrics-port" in r.err, r.text
    r = migrate("watch", "--metrics-port", "0", "--metrics-address", "no such host!", "--max-samples", "1")
    assert r.code == 2 and "--metrics-address 'no such host!' is not an address" in r.err, r.text
    r = migrate("watch", "--metrics-port", "0", "--metrics-linger", "soon", "--max-samples", "1")
    assert r.code == 2 and "--metrics-linger" in r.err, r.text
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = migrate("watch", "--metrics-port", str(port), "--max-samples", "1")
    assert r.code == 2, r.text
    assert f"--metrics-port {port}: 127.0.0.1:{port} is already in use" in r.err
    assert "pick another --metrics-port (0 picks a free one)" in r.err
    # nothing was watched: no round was sampled, no lease is left behind
    assert json.loads(migrate("-o", "json", "status").out)["latest"] == []


def test_json_output_announces_the_urls_as_json(rb_dir: Path, migrate: Migrate) -> None:
    """Port 0 picks a port scripts must learn: with -o json, the first stderr line is a JSON object."""
    assert migrate("advance", "--yes").code == 0
    args = ("--metrics-port", "0", "--metrics-linger", "0s", "--max-samples", "1", "--interval", "0.1s")
    r = migrate("-o", "json", "watch", *args)
    assert r.code == 0, r.text
    first = json.loads(r.err.splitlines()[0])
    url = first["metrics_url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    assert first["healthz"] == url.replace("/metrics", "/healthz")
    assert json.loads(r.out.splitlines()[-1])["outcome"] == "limit"  # after the round's line


def test_one_registry_serves_several_runbooks(rb_dir: Path, migrate: Migrate) -> None:
    """The design for a watcher of several runbooks: one server, one feed per runbook, every series apart by
    its `runbook` label (here two runbooks watched one after the other in this process)."""
    second = RUNBOOK.replace("name: cli-test", "name: second").replace("path: app.env", "path: second.env")
    (rb_dir / "second.yaml").write_text(second)
    (rb_dir / "second.env").write_text("PGBOSS_ENABLED=true\n")  # drift: the state wants false
    assert migrate("advance", "--yes").code == 0  # cli-test is at stage one, second at legacy
    server = MetricsServer("127.0.0.1", 0)
    try:
        for path, rounds in (("stages.yaml", 2), ("second.yaml", 3)):
            session = Session.open(rb_dir / path, env=dict(os.environ))
            try:
                done = watch(session, interval=0.05, max_rounds=rounds, on_round=server.feed(session))
            finally:
                session.close()
            assert (done.outcome, done.rounds) == ("limit", rounds)
        series = parse(httpx.get(server.url + "/metrics", timeout=10).text)
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == 200
        server.metrics.ended()
        assert httpx.get(server.url + "/readyz", timeout=10).status_code == 503
    finally:
        server.close()

    def of(name: str, rb: str, **labels: str) -> float:
        return series[(name, frozenset({"runbook": rb, **labels}.items()))]

    assert (of("runbook_stage", "cli-test", stage="one"), of("runbook_stage", "second", stage="legacy")) == (
        1,
        1,
    )
    assert (of("runbook_stage", "cli-test", stage="legacy"), of("runbook_stage", "second", stage="one")) == (
        0,
        0,
    )
    assert (of("runbook_watch_rounds_total", "cli-test"), of("runbook_watch_rounds_total", "second")) == (
        2,
        3,
    )
    assert (of("runbook_flag_drift", "cli-test"), of("runbook_flag_drift", "second")) == (0, 1)
    assert of("runbook_check_value", "cli-test", check="healthy") == 0
    assert not any(k[0] == "runbook_check_value" and ("runbook", "second") in k[1] for k in series)


def test_auto_advance_and_a_failed_verify_are_counted(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """watch --auto-advance: legacy -> one is an `advance`; one -> two fails its verify and rolls back: an
    `auto-rollback` transition of cause `verify-failed`, not a breach."""
    monkeypatch.setenv("TWO_VALUE", "0")  # stage two's verify fails
    server = MetricsServer("127.0.0.1", 0)
    try:
        session = Session.open(rb_dir / "stages.yaml", env=dict(os.environ))
        try:
            feed = server.feed(session)
            done = watch(session, interval=0.05, auto_advance=True, max_rounds=10, on_round=feed)
        finally:
            session.close()
        series = parse(httpx.get(server.url + "/metrics", timeout=10).text)
    finally:
        server.close()
    assert done.outcome == "rolled-back" and done.stage == "legacy", done.to_json()
    assert value(series, "runbook_transitions_total", operation="advance") == 1
    assert value(series, "runbook_transitions_total", operation="auto-rollback") == 1
    assert value(series, "runbook_rollbacks_total", cause="verify-failed") == 1
    assert value(series, "runbook_rollbacks_total", cause="breach") == 0
    assert value(series, "runbook_breaches_total", outcome="rolled-back") == 0
    assert value(series, "runbook_stage", stage="legacy") == 1
    st = json.loads(migrate("-o", "json", "status").out)
    assert (st["stage"], value(series, "runbook_state_version")) == ("legacy", st["version"])


def test_no_url_or_secret_reaches_the_exposition(rb_dir: Path, migrate: Migrate) -> None:
    """A monitor whose URL holds a password and a token (refused: verdict error): the scrape names the check
    and its verdict, never its URL, user, password or token, in any written form."""
    own = (
        '      - name: own-url\n        kind: http\n        url: "http://checker:Ch3ck-P%40ss-s3cret@127.0.0.1:1'
        '/api/health?token=qu3ry-T0ken-s3cret"\n        expect: [\'status == "ok"\']\n'
    )
    text = RUNBOOK.replace('        expect: ["value == 0"]\n', '        expect: ["value == 0"]\n' + own, 1)
    (rb_dir / "stages.yaml").write_text(text)
    assert migrate("advance", "--yes").code == 0
    server = MetricsServer("127.0.0.1", 0)
    try:
        session = Session.open(rb_dir / "stages.yaml", env=dict(os.environ))
        try:
            done = watch(session, interval=0.05, max_rounds=2, on_round=server.feed(session))
        finally:
            session.close()
        exposition = httpx.get(server.url + "/metrics", timeout=10).text
    finally:
        server.close()
    assert done.outcome == "limit", done.to_json()
    series = parse(exposition)
    assert value(series, "runbook_check_verdict", check="own-url", verdict="error") == 1
    for leak in ("s3cret", "Ch3ck", "P%40ss", "P@ss", "checker", "token", "127.0.0.1:1", "http://"):
        assert leak not in exposition, leak


def test_no_linger_when_nothing_is_left_unscraped(rb_dir: Path, migrate: Migrate, pg_url: str) -> None:
    """--metrics-linger waits only for figures no scrape has read: a watch refused its lease (exit 3) never
    sampled, so it exits at once despite the default 30 s."""
    make_knob(pg_url, 0)
    assert migrate("advance", "--yes").code == 0
    first = Watcher(rb_dir, "--metrics-linger", "0s")
    try:
        first.wait_rounds(1)
        began = time.monotonic()
        r = migrate("watch", "--metrics-port", "0", "--interval", "0.2s")
        assert r.code == 3, r.text
        assert time.monotonic() - began < 10
        assert "another watcher is already acting on cli-test" in r.err and "keeping" not in r.err
    finally:
        first.stop()
