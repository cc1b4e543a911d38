"""The watcher's metric catalogue follows Prometheus conventions and docs/metrics.md documents all of it."""

from __future__ import annotations

import re
from pathlib import Path

from runbook.metricnames import CATALOG

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
UNITS = ("_seconds", "_bytes", "_total")


def documented() -> dict[str, tuple[str, str]]:
    """metric -> (type, labels) from the table of docs/metrics.md."""
    rows = re.findall(r"^\| `(runbook_\w+)` \| (\w+) \| ([\w, ]+) \|", DOC.read_text(), re.M)
    return {name: (kind, labels.strip()) for name, kind, labels in rows}


def test_every_family_is_documented_with_its_type_and_labels() -> None:
    expected = {
        (name + "_total" if kind == "counter" else name): (kind, ", ".join(labels))
        for name, (kind, labels, _help) in CATALOG.items()
    }
    assert documented() == expected


def test_names_and_labels_follow_the_conventions() -> None:
    for name, (kind, labels, doc) in CATALOG.items():
        assert re.fullmatch(r"runbook_[a-z_]+", name), name
        assert labels[0] == "runbook", f"{name}: every series carries the runbook label first"
        assert not name.endswith("_total"), f"{name}: the client appends _total to counters"
        assert doc and not doc.endswith("."), name
        timed = ("duration", "_age", "timestamp", "elapsed", "remaining", "required", "interval")
        if kind == "histogram" or any(word in name for word in timed):
            assert name.endswith(UNITS), f"{name}: a unit in the name"
        for label in labels:
            assert label in {"runbook", "stage", "check", "verdict", "state", "operation", "cause", "outcome"}


def test_every_exposed_family_is_documented() -> None:
    """Found by a new-user trial: the scrape carried `runbook_*_created` families (the client's default
    created series) that docs/metrics.md does not list. What a watcher's registry exposes, every counter and
    histogram with a series, parsed as Prometheus reads it: its `runbook_*` families are exactly the table's,
    and the others are the client's process and platform ones the page names as such."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from runbook.metrics import WatchMetrics

    metrics = WatchMetrics()
    counters = {
        "runbook_watch_rounds": metrics.rounds,
        "runbook_state_database_errors": metrics.db_errors,
        "runbook_transitions": metrics.transitions,
        "runbook_rollbacks": metrics.rollbacks,
        "runbook_breaches": metrics.breaches,
    }
    for name, counter in counters.items():
        counter.labels(*["x"] * len(CATALOG[name][1])).inc()
    metrics.sample_seconds.labels("x").observe(0.1)
    text = generate_latest(metrics.registry).decode()
    assert "_created" not in text
    exposed = {
        f.name + "_total" if f.type == "counter" else f.name for f in text_string_to_metric_families(text)
    }
    ours = {name for name in exposed if name.startswith("runbook_")}
    assert ours == set(documented())
    others = exposed - ours
    assert others and all(name.startswith(("process_", "python_")) for name in others), others
    doc = DOC.read_text()
    assert "process metrics come too" in doc and "`python_info`" in doc
