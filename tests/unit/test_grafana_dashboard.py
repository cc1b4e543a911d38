"""examples/grafana/runbook-dashboard.json uses exactly the watcher's metrics: every metric name in every
panel and variable query is one `migrate watch --metrics-port` exposes, every catalogued family appears on the
board, and every runbook series is filtered by the `$runbook` variable. (tests/cli/test_watch_prometheus.py
runs each query on a real Prometheus scraping a real watcher.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from runbook.metricnames import CATALOG, exposed_names
from runbook.metrics import WatchMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana" / "runbook-dashboard.json"
KEYWORDS = {
    "by",
    "without",
    "and",
    "or",
    "unless",
    "on",
    "ignoring",
    "bool",
    "offset",
    "group_left",
    "group_right",
}


def expressions(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the panels."""
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def variable_selectors(board: dict[str, Any]) -> list[str]:
    """The series selector of every `label_values(SELECTOR, label)` variable query."""
    out = []
    for var in board["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            out.append(re.sub(r"^label_values\((.*), \w+\)$", r"\1", query["query"]))
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels and numbers dropped)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label values)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # groupings
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[m.end() :].lstrip()
        if following.startswith("(") or m.group() in KEYWORDS:
            continue  # a function or an operator keyword
        names.add(m.group())
    return names


def test_the_tokenizer_finds_metric_names_only() -> None:
    got = metric_names(
        'histogram_quantile(0.95, sum by (runbook, le) (rate(a_seconds_bucket{runbook=~"$runbook"}[5m])))'
        " / on(runbook) group_left b_total > bool 1 and c"
    )
    assert got == {"a_seconds_bucket", "b_total", "c"}


def exposed() -> set[str]:
    """What a watcher's registry exposes: the catalogue's series and the client's process metrics."""
    names = exposed_names()
    for family in WatchMetrics().registry.collect():
        names |= {s.name for s in family.samples}
    return names


def test_every_dashboard_metric_is_exposed_and_every_family_is_shown() -> None:
    board = json.loads(DASHBOARD.read_text())
    exprs = expressions(board)
    assert len(exprs) >= 25
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        unknown = names - exposed()
        assert not unknown, f"{expr!r} uses {unknown}, which the watcher does not expose"
        used |= names
        if any(n.startswith("runbook_") for n in names):
            assert 'runbook=~"$runbook"' in expr, f"{expr!r} ignores the runbook variable"
        else:
            assert 'job=~"$job"' in expr, f"{expr!r} ignores the job variable"
    for selector in variable_selectors(board):
        assert metric_names(selector) == {"runbook_stage"}, selector
    shown = {n.removesuffix("_total").removesuffix("_bucket") for n in used}
    assert set(CATALOG) - shown == set(), "families the board does not show"
    assert "process_resident_memory_bytes" in used


def test_the_board_is_importable_grafana_json() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "runbook-watch" and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "job", "runbook"}
    for p in board["panels"]:
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        for t in p.get("targets", []):
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
