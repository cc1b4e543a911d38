"""Prometheus metrics of `migrate watch`: what each round saw, as the official client's metric families.

One `WatchMetrics` (its own registry, never the global one) holds one `RunbookFeed` per watched runbook;
the watch loop hands each round's `WatchView` to its feed. Every series carries a bounded `runbook` label
(a runbook's name), and check and stage labels come from the runbook file: never a URL or a secret. The
current state is kept as a snapshot and turned into gauges at scrape time (ages are computed then);
counters and histograms are the client's own. The names are runbook/metricnames.py's `CATALOG`."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from runbook import engine
from runbook.errors import RunbookError
from runbook.metricnames import BUCKETS, CATALOG, CAUSES, OPERATIONS, OUTCOMES, STATES, VERDICTS

if TYPE_CHECKING:
    from runbook.commands.watch import WatchView
    from runbook.session import Session


class CheckFigures(NamedTuple):
    """One check's last measurement, as exported."""

    name: str
    value: float | None
    threshold: float | None
    verdict: str
    state: str
    at: float
    """When it was measured (Unix time)."""
    seconds: float
    """How long the measurement took."""


@dataclass
class Snapshot:
    """What one runbook's last round saw (replaced whole, read at scrape time)."""

    stages: tuple[str, ...]
    stage: str | None = None
    version: int | None = None
    entered_at: float | None = None
    soak_required: float = 0.0
    checks: list[CheckFigures] = field(default_factory=list)
    drift: bool | None = None
    lease_held: bool = False
    state_db: bool = False
    every: float = 0.0
    last_round: float | None = None


class RunbookFeed:
    """One runbook's figures, fed by the watch loop (`feed(view)` is an `on_round`)."""

    def __init__(self, owner: WatchMetrics, session: Session) -> None:
        rb = session.runbook
        self.session, self.name, self.metrics = session, rb.name, owner
        self.snapshot = Snapshot(stages=tuple(s.id for s in rb.stages))
        self.beat = time.monotonic()
        self.window = 3 * rb.settings.defaults.interval + rb.settings.defaults.timeout
        for op in OPERATIONS:
            owner.transitions.labels(self.name, op)
        for cause in CAUSES:
            owner.rollbacks.labels(self.name, cause)
        for outcome in OUTCOMES:
            owner.breaches.labels(self.name, outcome)
        owner.rounds.labels(self.name)
        owner.db_errors.labels(self.name)

    def __call__(self, view: WatchView) -> None:
        from runbook.commands.status import read_flags

        m, name = self.metrics, self.name
        snap = dataclasses.replace(self.snapshot, stage=view.stage, state_db=view.state_db)
        snap.lease_held, snap.every = view.lease_held, view.every
        cur = view.cur
        if view.transitions:  # this round moved the state: read where it is now
            with contextlib.suppress(RunbookError):
                cur = engine.current(self.session)
                snap.stage = cur.stage.id
        if cur is not None:
            snap.version = cur.version
            snap.entered_at = cur.entered_at.timestamp() if cur.entered_at else None
            snap.soak_required = cur.stage.soak.duration
            flags = read_flags(self.session, cur.flags)
            snap.drift = None if flags.error else bool(flags.drift)
        if not view.state_db:
            m.db_errors.labels(name).inc()
        if view.round is not None:
            snap.last_round, snap.checks = time.time(), []
            m.rounds.labels(name).inc()
            m.sample_seconds.labels(name).observe(view.sample_seconds)
            for j in view.round.judged:
                meas = j.measurement
                snap.checks.append(
                    CheckFigures(
                        j.spec.name,
                        _number(meas.value),
                        j.threshold,
                        meas.verdict.value,
                        j.assessment.state,
                        meas.measured_at.timestamp(),
                        meas.duration_ms / 1000,
                    )
                )
            if view.round.breached:
                rolled = any(t.get("cause") == "breach" for t in view.transitions)
                m.breaches.labels(name, "rolled-back" if rolled else "not-rolled-back").inc()
        for t in view.transitions:
            m.transitions.labels(name, t["operation"]).inc()
            if t["operation"] == "auto-rollback" and t.get("cause") in CAUSES:
                m.rollbacks.labels(name, t["cause"]).inc()
        self.snapshot, self.beat = snap, time.monotonic()
        m.updates += 1
        self.window = 3 * view.every + self.session.runbook.settings.defaults.timeout

    @property
    def live(self) -> bool:
        """The loop reported within about three intervals (plus a check's timeout)."""
        return time.monotonic() - self.beat <= self.window

    @property
    def ready(self) -> bool:
        """The state database answered the last round and this watcher holds the lease."""
        return self.snapshot.state_db and self.snapshot.lease_held


class WatchMetrics(Collector):
    """The registry of one watcher process: its feeds' snapshots as gauges, plus counters and histograms."""

    def __init__(self) -> None:
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


def fanout(*calls: Callable[[WatchView], None]) -> Callable[[WatchView], None]:
    """One `on_round` that calls each of `calls` in turn."""

    def call(view: WatchView) -> None:
        for c in calls:
            c(view)

    return call


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


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None
