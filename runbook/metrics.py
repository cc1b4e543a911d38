"""Prometheus metrics of `migrate watch`: what each round saw, as the official client's metric families.

One `WatchMetrics` (its own registry, never the global one) holds one `RunbookFeed` per watched runbook;
the watch loop hands each round's `WatchView` to its feed. Every series carries a bounded `runbook` label
(a runbook's name), and check and stage labels come from the runbook file: never a URL or a secret. The
current state is kept as a snapshot and turned into gauges at scrape time (ages are computed then);
counters and histograms are the client's own. The names are runbook/metricnames.py's `CATALOG`."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from runbook.metricfeed import CheckFigures, RunbookFeed, Snapshot, fanout
from runbook.metricnames import BUCKETS, CATALOG, STATES, VERDICTS

if TYPE_CHECKING:
    from runbook.session import Session

__all__ = ["CheckFigures", "RunbookFeed", "Snapshot", "WatchMetrics", "fanout"]


class WatchMetrics(Collector):
    """The registry of one watcher process: its feeds' snapshots as gauges, plus counters and histograms."""

    def __init__(self) -> None:
        # no `<counter>_created` / `<histogram>_created` series (the client's default; docs/metrics.md lists
        # what is exposed, and a process start time is process_start_time_seconds). The client has no
        # per-registry switch: this is for the process, whose only metrics are the watcher's.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self.feeds: list[RunbookFeed] = []
        self.fleet = False
        """Watching a fleet (`-f` repeated or a folder): ready means every runbook's state database answered,
        its lease held or waited for (a replica holds only its share of the leases)."""
        self.replica_ok: bool | None = None
        """A replica (`--wait` over a fleet): its last tick reached the state database (None: no replica)."""
        self.updates = 0
        """Views fed so far (all runbooks): a scrape that began at this count has read them."""
        self.lock = threading.Lock()
        r = self.registry
        self.rounds = _counter("runbook_watch_rounds", r)
        self.db_errors = _counter("runbook_state_database_errors", r)
        self.transitions = _counter("runbook_transitions", r)
        self.rollbacks = _counter("runbook_rollbacks", r)
        self.breaches = _counter("runbook_breaches", r)
        self.sample_seconds = _histogram("runbook_watch_sample_duration_seconds", r)
        r.register(self)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

    def feed(self, session: Session) -> RunbookFeed:
        with self.lock:
            f = RunbookFeed(self, session)
            self.feeds.append(f)
            return f

    def ended(self) -> None:
        """The watch returned (its lease released): no feed holds a lease any more."""
        for f in self.feeds:
            f.snapshot = dataclasses.replace(f.snapshot, lease_held=False)

    def beat(self, ok: bool) -> None:
        """A replica's tick (runbook/commands/replicas.py): whether its state database answered."""
        self.replica_ok = ok

    def released(self, runbook: str) -> None:
        """`runbook`'s watch here ended (given back to another replica, or done): its lease is not held."""
        for f in self.feeds:
            if f.name == runbook:
                f.snapshot = dataclasses.replace(f.snapshot, lease_held=False)

    def _mine(self) -> list[RunbookFeed]:
        """The feeds the probes judge: every one, or for a replica those whose lease it holds."""
        return [f for f in self.feeds if self.replica_ok is None or f.snapshot.lease_held]

    def live(self) -> bool:
        return all(f.live for f in self._mine())

    def ready(self) -> bool:
        if not self.fleet:
            return bool(self.feeds) and all(f.ready for f in self.feeds)
        return (
            bool(self.feeds)
            and self.replica_ok is not False
            and all(f.snapshot.state_db for f in self._mine())
        )

    def describe(self) -> list[Metric]:
        return [_gauge(n) for n, (kind, _l, _h) in CATALOG.items() if kind == "gauge"]

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            snaps = [(f.name, f.snapshot) for f in self.feeds]
        g = {n: _gauge(n) for n, (kind, _l, _h) in CATALOG.items() if kind == "gauge"}
        now = time.time()
        for rb, s in snaps:
            for stage in s.stages:
                g["runbook_stage"].add_metric([rb, stage], 1.0 if stage == s.stage else 0.0)
            _maybe(g["runbook_state_version"], [rb], s.version)
            _maybe(g["runbook_stage_entered_timestamp_seconds"], [rb], s.entered_at)
            elapsed = max(0.0, now - s.entered_at) if s.entered_at is not None else 0.0
            g["runbook_soak_elapsed_seconds"].add_metric([rb], elapsed)
            g["runbook_soak_required_seconds"].add_metric([rb], s.soak_required)
            remaining = max(0.0, s.soak_required - elapsed) if s.entered_at is not None else 0.0
            g["runbook_soak_remaining_seconds"].add_metric([rb], remaining)
            for c in s.checks:
                _maybe(g["runbook_check_value"], [rb, c.name], c.value)
                _maybe(g["runbook_check_threshold"], [rb, c.name], c.threshold)
                for v in VERDICTS:
                    g["runbook_check_verdict"].add_metric([rb, c.name, v], float(v == c.verdict))
                for st in STATES:
                    g["runbook_check_state"].add_metric([rb, c.name, st], float(st == c.state))
                g["runbook_check_sample_age_seconds"].add_metric([rb, c.name], max(0.0, now - c.at))
                g["runbook_check_duration_seconds"].add_metric([rb, c.name], c.seconds)
            _maybe(g["runbook_flag_drift"], [rb], None if s.drift is None else float(s.drift))
            g["runbook_flag_backend_up"].add_metric([rb], float(s.drift is not None))
            g["runbook_watcher_lease_held"].add_metric([rb], float(s.lease_held))
            g["runbook_state_database_up"].add_metric([rb], float(s.state_db))
            g["runbook_watch_interval_seconds"].add_metric([rb], s.every)
            _maybe(g["runbook_watch_last_round_timestamp_seconds"], [rb], s.last_round)
        yield from g.values()


def _counter(name: str, registry: CollectorRegistry) -> Counter:
    _kind, labels, doc = CATALOG[name]
    return Counter(name, doc, labels, registry=registry)


def _histogram(name: str, registry: CollectorRegistry) -> Histogram:
    _kind, labels, doc = CATALOG[name]
    return Histogram(name, doc, labels, registry=registry, buckets=BUCKETS)


def _gauge(name: str) -> GaugeMetricFamily:
    _kind, labels, doc = CATALOG[name]
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _maybe(family: GaugeMetricFamily, labels: list[str], value: float | None) -> None:
    if value is not None:
        family.add_metric(labels, float(value))
