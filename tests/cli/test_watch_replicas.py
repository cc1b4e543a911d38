"""Replicas (issue 14 part 2): three `migrate watch --wait -f FOLDER` processes share 30 runbooks (30 state
rows, real PostgreSQL, `sql` monitors that pass, a 1 s interval so a 30 s lease): each holds its fair share
(10), no runbook is sampled twice in one round (from the samples table), and after a SIGKILL of one replica
every runbook it held is taken over within one lease period (plus a tick); none goes unsampled for longer."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from bench.fleet import roomy_server
from runbook.embedded import fresh_database
from runbook.state.leases import lease_seconds
from tests.cli.conftest import Outcome
from tests.cli.metricsupport import Watcher
from tests.cli.test_watch_fleet import started, write_runbook

Migrate = Callable[..., Outcome]
RUNBOOKS = 30
INTERVAL = 1.0
LEASE = lease_seconds(INTERVAL)


def leases(pg_url: str) -> dict[str, str]:
    """{runbook: owner} of the unexpired leases of the fleet's runbooks (not the heartbeats)."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT runbook, owner FROM runbook.leases "
            "WHERE expires_at > now() AND runbook NOT LIKE 'replica:%'"
        ).fetchall()
    return dict(rows)


def wait_for(pg_url: str, ok: Callable[[dict[str, str]], bool], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = leases(pg_url)
        if ok(held):
            return held
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {Counter(leases(pg_url).values())}")


@pytest.fixture
def pg_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A database on an embedded server of its own with room for 300 connections: three replicas of 30
    runbooks (two connections per runbook watched) must not exhaust a server the other tests share."""
    with roomy_server(300) as server, fresh_database(server, "replicas") as url:
        monkeypatch.setenv("DATABASE_URL", url)
        yield url


def test_three_replicas_share_thirty_runbooks_and_take_over_a_killed_ones(
    rb_dir: Path, migrate: Migrate, pg_url: str
) -> None:
    folder = rb_dir / "fleet"
    folder.mkdir()
    started(migrate, *(write_runbook(folder, f"r{i:02d}") for i in range(RUNBOOKS)))
    cmd = [sys.executable, "-m", "runbook", "-f", str(folder), "watch", "--wait", "--interval", "1s"]
    logs = [rb_dir / f"replica-{i}.log" for i in range(3)]
    procs = [
        subprocess.Popen(cmd, cwd=rb_dir, env=dict(os.environ), stdout=subprocess.PIPE, stderr=log.open("w"))
        for log in logs
    ]
    try:
        held = wait_for(
            pg_url, lambda h: len(h) == RUNBOOKS and sorted(Counter(h.values()).values()) == [10, 10, 10], 90
        )
        victim = next(iter(held.values()))
        pid = int(victim.split(" pid ")[1].split(" ")[0])
        mine = {rb for rb, owner in held.items() if owner == victim}
        [killed] = [p for p in procs if p.pid == pid]
        killed.send_signal(signal.SIGKILL)
        at = time.monotonic()
        after = wait_for(
            pg_url, lambda h: len(h) == RUNBOOKS and victim not in h.values(), LEASE + 3 * INTERVAL + 10
        )
        took = time.monotonic() - at
        # one lease period, the next tick of the others, and their round's own time: 60 watch threads on 2
        # cores under a loaded machine once took 34.0 s against 33 (CI, with other suites running beside it)
        assert took <= LEASE + 5 * INTERVAL, took
        assert sorted(Counter(after.values()).values()) == [15, 15]  # the fair share of two
        assert len(mine) == 10
        time.sleep(3)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        outs = [p.communicate(timeout=60)[0] for p in procs]
    tails = [log.read_text()[-2000:] for log in logs]
    assert sorted(p.returncode for p in procs) == [-signal.SIGKILL, 0, 0], (outs, tails)
    live = [out.decode() for p, out in zip(procs, outs, strict=True) if p.returncode == 0]
    for out in live:  # each says which runbooks it watched last and which another replica holds
        assert out.count("Watch stopped after") + out.count("watched by another replica") == RUNBOOKS, out
    assert sum(out.count("Watch stopped after") for out in live) >= RUNBOOKS
    assert leases(pg_url) == {}  # SIGTERM: the two live replicas released every lease

    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT runbook, extract(epoch FROM at) FROM runbook.samples "
            "WHERE check_name = 'healthy' ORDER BY runbook, at"
        ).fetchall()
    times: dict[str, list[float]] = {}
    for rb, at_s in rows:
        times.setdefault(rb, []).append(float(at_s))
    assert len(times) == RUNBOOKS
    gaps = [b - a for ts in times.values() for a, b in itertools.pairwise(ts)]
    doubles = [g for g in gaps if g < 0.4 * INTERVAL]
    assert doubles == []  # two watchers of one runbook would sample it twice in some round
    # none unwatched for longer than a lease, the taker's next tick, the start spread over a tick (fleet.py)
    # and the first round's own time (acquire, record, sample: up to a second with 60 threads on 2 cores)
    assert max(gaps) <= LEASE + 4 * INTERVAL


def test_a_replica_is_ready_and_live_holding_its_share_only(
    rb_dir: Path, migrate: Migrate, pg_url: str
) -> None:
    """Two replicas of two runbooks with --metrics-port: both answer /readyz and /healthz 200 (a replica
    waits correctly for the leases another holds), and each runbook's lease is held by exactly one of them."""
    folder = rb_dir / "pair"
    folder.mkdir()
    started(migrate, write_runbook(folder, "r-a"), write_runbook(folder, "r-b"))
    args = ("-f", str(folder), "--wait", "--interval", "0.5s", "--metrics-linger", "0s")
    watchers = [Watcher(rb_dir, *args), Watcher(rb_dir, *args)]
    try:
        wait_for(pg_url, lambda h: len(h) == 2 and len(set(h.values())) == 2, 60)
        time.sleep(1.5)  # a round of each after the share settled
        held = {rb: 0.0 for rb in ("r-a", "r-b")}
        for w in watchers:
            assert (w.get("/readyz").status_code, w.get("/healthz").status_code) == (200, 200), w.stderr
            _text, series = w.scrape()
            for rb in held:
                held[rb] += series[("runbook_watcher_lease_held", frozenset({("runbook", rb)}))]
        assert held == {"r-a": 1.0, "r-b": 1.0}  # one holder each, as the lease table says
    finally:
        for w in watchers:
            w.stop()


def test_a_replica_with_max_samples_ends_and_still_takes_over_a_lease_held_elsewhere(
    rb_dir: Path, migrate: Migrate
) -> None:
    """`watch --wait --max-samples 2` over a folder ends (exit 0) once every runbook was watched for its 2
    rounds here, as a single watch does; a runbook whose lease another replica holds (until its expiry, 2 s
    ahead) is not done: it is taken after the expiry and watched too. (The command-line fuzzer's
    `watch --wait -f .` looped forever before.)"""
    folder = rb_dir / "limited"
    folder.mkdir()
    started(migrate, write_runbook(folder, "lim-a"), write_runbook(folder, "lim-b"))
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "INSERT INTO runbook.leases (runbook, owner, acquired_at, expires_at) "
            "VALUES ('lim-b', 'another replica', now(), now() + interval '2 seconds')"
        )
    began = time.monotonic()
    args = ("-o", "json", "-f", str(folder), "watch", "--wait", "--interval", "0.3s", "--max-samples", "2")
    r = migrate(*args)
    took = time.monotonic() - began
    assert r.code == 0, r.text
    body = json.loads(r.out.splitlines()[-1])  # the result, after a line per round
    assert [(x["runbook"], x["outcome"], x["rounds"]) for x in body["runbooks"]] == [
        ("lim-a", "limit", 2),
        ("lim-b", "limit", 2),
    ], body
    assert 2.0 <= took < 30, took  # lim-b only after the other replica's lease expired
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        left = conn.execute(
            "SELECT runbook FROM runbook.leases WHERE expires_at > now() AND runbook LIKE ANY(%s)",
            (["lim-%", "replica:%"],),
        ).fetchall()
    assert left == []  # every lease and the heartbeat given back
