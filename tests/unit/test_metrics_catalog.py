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
