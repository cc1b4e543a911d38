"""The HTML report from a synthetic three-day migration: timeline, decisions, charts, escaping."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any

from runbook.report import render_report, stage_spans, time_ticks

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(days=2, hours=6)
STAGES = [
    {"id": "off", "title": "Legacy only"},
    {"id": "imports", "title": "Imports on pg-boss"},
    {"id": "observe", "title": "Monitoring and stability"},
    {"id": "evaluations", "title": "Evaluation jobs"},
    {"id": "all", "title": "Full cut-over"},
]
OFF = {"PGBOSS_ENABLED": "false", "PGBOSS_FOR_NEW_EVALS": "false"}
ON = {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"}
EVALS = {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "true"}
MB = 1_000_000


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def verdict(check: str, v: str, value: Any, unit: str, explanation: str, **inputs: Any) -> dict[str, Any]:
    return {
        "check": check,
        "kind": "pgboss",
        "verdict": v,
        "value": value,
        "unit": unit,
        "explanation": explanation,
        "inputs": inputs,
        "measured_at": T0.isoformat(),
        "duration_ms": 5.0,
    }


def event(hours: float, op: str, src: str | None, dst: str | None, **kw: Any) -> dict[str, Any]:
    return {
        "id": int(hours * 100),
        "at": at(hours),
        "user": "ops",
        "host": "bastion",
        "ci_url": None,
        "operation": op,
        "from_stage": src,
        "to_stage": dst,
        "flags_before": {},
        "flags_after": {},
        "verdicts": [],
        "reason": None,
        "outcome": "ok",
        **kw,
    }


EVENTS = [
    event(0, "init", None, "off"),
    event(
        0.1,
        "advance",
        "off",
        "imports",
        flags_before=OFF,
        flags_after=ON,
        verdicts=[verdict("schema", "pass", 24, "", "pg-boss schema version 24")],
    ),
    event(
        0.2,
        "verify",
        "imports",
        "imports",
        verdicts=[verdict("import-processed", "pass", 12, "jobs", "12 import jobs completed", min=1)],
    ),
    event(1, "advance", "imports", "observe", ci_url="https://ci.example/jobs/41"),
    event(
        25.5,
        "advance",
        "observe",
        "evaluations",
        flags_before=ON,
        flags_after=EVALS,
        verdicts=[verdict("worker-memory", "pass", 71 * MB, "bytes", "71.0MB < 100MB", max=100 * MB)],
    ),
    event(
        29,
        "sample-breach",
        "evaluations",
        "evaluations",
        outcome="breach",
        verdicts=[verdict("worker-memory", "fail", 131 * MB, "bytes", "131.0MB > 100MB", max=100 * MB)],
    ),
    event(
        29.01,
        "auto-rollback",
        "evaluations",
        "off",
        flags_before=EVALS,
        flags_after=OFF,
        reason="worker-memory breached: 131.0MB > 100MB <script>alert(1)</script>",
        verdicts=[verdict("worker-memory", "fail", 131 * MB, "bytes", "131.0MB > 100MB", max=100 * MB)],
    ),
    event(
        48,
        "advance",
        "off",
        "observe",
        flags_before=OFF,
        flags_after=ON,
        user="alice",
        reason="leak fixed in worker v2.3.1 & redeployed",
        ci_url="javascript:alert(1)",
    ),
    event(50, "advance", "observe", "evaluations", outcome="failed", reason="soak not over"),
]


def samples() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, 54 * 6):  # every 10 minutes from hour 0 to hour 54
        h = i / 6
        stage = "imports" if h < 1 else "observe" if h < 25.5 else "evaluations" if h < 29.01 else "off"
        if stage == "off" and h < 48:
            continue
        mem = 62 * MB + 2 * MB * math.sin(h) + (max(0, h - 25.5) * 20 * MB if stage == "evaluations" else 0)
        verdict_mem = "fail" if mem > 100 * MB else "pass"
        out.append(
            {
                "at": at(h),
                "stage": stage,
                "check": "worker-memory",
                "verdict": verdict_mem,
                "value": mem,
                "unit": "bytes",
                "threshold": 100 * MB,
            }
        )
        err = None if 30 <= i % 97 <= 31 else 0.01 + 0.005 * math.cos(h * 3)
        out.append(
            {
                "at": at(h),
                "stage": stage,
                "check": "error-rate & retries",
                "verdict": "error" if err is None else "pass",
                "value": err,
                "unit": "ratio",
                "threshold": 0.05,
            }
        )
        if i % 3 == 0:
            out.append(
                {
                    "at": at(h),
                    "stage": stage,
                    "check": "backlog",
                    "verdict": "pass",
                    "value": int(40 + 30 * math.sin(h / 2) ** 2),
                    "unit": "jobs",
                    "threshold": 500 if stage == "evaluations" else 200,
                }
            )
    return out


def report() -> str:
    return render_report("pgboss <migration>", STAGES, EVENTS, samples(), NOW)


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed() -> Collector:
    c = Collector()
    c.feed(report())
    return c


def test_spans_follow_successful_moves_only() -> None:
    spans = stage_spans(STAGES, EVENTS)
    assert [(s.stage, s.start, s.end) for s in spans] == [
        ("off", at(0), at(0.1)),
        ("imports", at(0.1), at(1)),
        ("observe", at(1), at(25.5)),
        ("evaluations", at(25.5), at(29.01)),
        ("off", at(29.01), at(48)),
        ("observe", at(48), None),
    ]


def test_page_is_self_contained_and_escaped() -> None:
    html = report()
    assert "<script" not in html and "javascript:" not in html.split("<main>")[1].split("href")[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<title>pgboss &lt;migration&gt;: migration report</title>" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html.split('<section id="decisions"')[0])
    links = [a["href"] for tag, a in parsed().tags if tag == "a"]
    assert links == ["https://ci.example/jobs/41"]  # the javascript: CI URL is shown as text, not linked


def test_timeline_and_summary_cards() -> None:
    c = parsed()
    text = " ".join(" ".join(c.text).split())
    assert "current stage observe since 2026-11-29 09:00 UTC" in text
    assert "in this stage for 6h" in text
    assert "decisions 9 1 rollback" in text
    spans = [a for tag, a in c.tags if tag == "rect" and a.get("class") == "span"]
    assert len(spans) == 6
    widths = [float(a["width"] or 0) for a in spans]
    assert abs(sum(widths) - 1000) < 3  # the spans tile the whole period
    rows = re.findall(
        r"<b>(\w+)</b> <span class=\"muted\">[^<]*</span></td>\s*<td>([^<]*(?:<span[^>]*>)?[\w ]+)", report()
    )
    assert [(s, st.split(">")[-1]) for s, st in rows] == [
        ("off", "visited"),
        ("imports", "visited"),
        ("observe", "current"),
        ("evaluations", "visited"),
        ("all", "not reached"),
    ]


def test_decisions_show_measured_values_and_flag_changes() -> None:
    html = report()
    decisions = html.split('<section id="decisions">')[1]
    assert decisions.count('class="decision"') == len(EVENTS)
    assert "evaluations → off" in decisions
    assert '<td class="num">131.0MB</td><td>≤ 100.0MB</td><td>131.0MB &gt; 100MB<details>' in decisions
    assert '<summary>inputs</summary><pre>{\n  "max": 100000000\n}</pre>' in decisions
    assert "<code>PGBOSS_FOR_NEW_EVALS</code> true → <b>false</b>" in decisions
    assert "leak fixed in worker v2.3.1 &amp; redeployed" in decisions
    assert "alice@bastion" in decisions


def test_one_chart_per_check_with_threshold_and_axes() -> None:
    c = parsed()
    charts = [a for tag, a in c.tags if tag == "svg" and a.get("class") == "series"]
    assert [a["aria-label"] for a in charts] == [
        "backlog over time",
        "error-rate & retries over time",
        "worker-memory over time",
    ]
    assert (
        sum(1 for tag, a in c.tags if tag == "line" and a.get("class") == "threshold") == 5
    )  # backlog 200/500/200
    text = c.text
    assert "threshold 100.0MB" in text and "threshold 5%" in text
    assert {"0B", "50.0MB", "100.0MB", "150.0MB", "600 jobs", "6%"} <= set(text)  # y axes labelled in units
    assert "Nov 28 00:00" in text  # x axis labelled with times (dates over multi-day spans)
    assert "time (UTC)" in text
    paths = [a["d"] for tag, a in c.tags if tag == "path" and a.get("class") == "value"]
    assert len(paths) >= 5  # error samples break the error-rate line into pieces
    failed = [a for tag, a in c.tags if tag == "circle" and a.get("fill") == "#d64545"]
    assert len(failed) == sum(1 for s in samples() if s["verdict"] == "fail")


def test_time_ticks_are_aligned() -> None:
    from runbook.report import _Scale

    ticks = time_ticks(at(0.2), at(3), _Scale(at(0.2).timestamp(), at(3).timestamp(), 0, 100))
    assert [label for _, label in ticks] == ["09:30", "10:00", "10:30", "11:00", "11:30", "12:00"]


def test_empty_history_renders() -> None:
    html = render_report("empty", STAGES, [], [], NOW)
    assert "No transition recorded yet." in html
    assert "No monitor samples recorded." in html
    assert "No decision recorded yet." in html


def test_rollbacks_and_breaches_are_marked_on_the_timeline() -> None:
    marks = [a for tag, a in parsed().tags if tag == "path" and a.get("class") == "mark"]
    assert len(marks) == 2  # the sample breach and the auto-rollback


def test_long_series_are_thinned_to_the_pixel_columns() -> None:
    rows = [
        {
            "at": T0 + dt.timedelta(minutes=i),
            "stage": "observe",
            "check": "backlog",
            "verdict": "pass",
            "value": 50 + 10 * math.sin(i / 50),
            "unit": "jobs",
            "threshold": 100,
        }
        for i in range(14 * 24 * 60)  # two weeks, one sample a minute
    ]
    html = render_report("big", STAGES, EVENTS[:1], rows, T0 + dt.timedelta(days=14))
    (d,) = re.findall(r'<path class="value" d="([^"]+)"', html)
    vertices = d.count("L") + 1
    assert 800 <= vertices <= 4 * 800  # at most first/min/max/last of each of the ~790 columns
    assert len(html) < 200_000
    assert "latest 58.7 jobs · 20160 samples" in html


def test_store_event_form_with_actor_and_iso_times() -> None:
    stored = [
        {
            "id": 1,
            "at": at(0).isoformat(),
            "operation": "init",
            "from_stage": None,
            "to_stage": "off",
            "actor": {"user": "ci", "host": "runner-7", "pid": 42, "ci_url": "https://ci.example/run/9"},
            "flags_before": None,
            "flags_after": OFF,
            "verdicts": [],
            "reason": None,
            "outcome": "ok",
        },
        {
            "id": 2,
            "at": at(2).isoformat(),
            "operation": "advance",
            "from_stage": "off",
            "to_stage": "imports",
            "actor": {"user": "ci", "host": "runner-7", "pid": 43, "ci_url": None},
            "flags_before": OFF,
            "flags_after": ON,
            "verdicts": [],
            "reason": "go",
            "outcome": "done",
        },
    ]
    html = render_report("stored", STAGES, stored, [], at(3))
    assert "ci@runner-7" in html
    assert '<a href="https://ci.example/run/9">CI job</a>' in html
    assert [(s.stage, s.end) for s in stage_spans(STAGES, stored)] == [("off", at(2)), ("imports", None)]


def test_a_rate_judged_with_confidence_draws_its_interval_as_a_band() -> None:
    from runbook.report import TOP, build_chart, stage_spans

    rows = [
        {"at": at(h), "stage": "imports", "check": "rate", "verdict": v, "value": val, "unit": "ratio"}
        | {"threshold": 0.05, "lower": lo, "upper": hi}
        for h, v, val, lo, hi in (
            (1, "inconclusive", 0.0, 0.0, 0.95),  # one job: the band reaches past the axis and is clipped
            (2, "inconclusive", 0.02, 0.001, 0.2),
            (3, "pass", 0.01, 0.0005, 0.04),
        )
    ]
    rows.insert(2, {"at": at(1.5), "stage": "imports", "check": "rate", "verdict": "error", "value": None})
    spans = stage_spans(STAGES, [event(0, "init", None, "off"), event(0.5, "advance", "off", "imports")])
    chart = build_chart("rate", rows, spans, T0, at(4))
    assert len(chart.intervals) == 2  # the error sample between them breaks the band
    first, second = chart.intervals
    assert first.startswith("M") and first.endswith(" Z") and f",{float(TOP)}" in first  # clipped at the top
    assert second.count("L") == 3  # two samples: up, up, down, down
    assert any("interval 0.1%-20%" in label for *_, label in chart.points), chart.points
    html = render_report("r", STAGES, [], rows, NOW)
    assert html.count('class="interval"') == 2


def test_the_report_command_reads_the_interval_a_rate_check_stored() -> None:
    from runbook.checks.rates import judge_rate
    from runbook.commands.report import _interval

    m = judge_rate(1, 8, "error rate 0.125", confidence=0.95, max=0.05, min=None)
    band = _interval(m.to_json()["inputs"])
    assert band == {"lower": m.inputs["interval"]["lower"], "upper": m.inputs["interval"]["upper"]}
    assert 0 < band["lower"] < 0.125 < band["upper"] < 1
    assert _interval({"max": 0.05}) == {} and _interval({"interval": {"lower": None}}) == {}


def test_the_axis_makes_room_for_an_interval_a_little_above_the_values() -> None:
    """An interval reaching 0.084 over values and a limit up to 0.05 is drawn whole (the axis used to stop
    at 0.06, cutting the band at the top edge); one reaching far above (0.95) is still clipped, so it does
    not flatten the line."""
    from runbook.report import TOP, build_chart

    def band(upper: float) -> str:
        rows = [
            {"at": at(h), "stage": "imports", "check": "rate", "verdict": "pass", "value": 0.01}
            | {"unit": "ratio", "threshold": 0.05, "lower": 0.001, "upper": upper}
            for h in (1, 2)
        ]
        [path] = build_chart("rate", rows, [], T0, at(3)).intervals
        return path

    assert f",{float(TOP)}" not in band(0.084)
    assert f",{float(TOP)}" in band(0.95)


def test_a_duration_chart_labels_values_and_its_limit_as_durations() -> None:
    """oldest_ready_age with `max: 1d`: `threshold 1d` and `1d 1h`, not `8.64e+04 s` and `9e+04 s`."""
    from runbook.report import build_chart

    rows = [
        {"at": at(h), "stage": "imports", "check": "age", "verdict": v, "value": val, "unit": "s"}
        | {"threshold": 86400.0}
        for h, v, val in ((1, "pass", 3600.0), (2, "fail", 90003.0))
    ]
    chart = build_chart("age", rows, [], T0, at(3))
    assert [label for *_, label in chart.thresholds] == ["threshold 1d"]
    assert chart.latest == "1d 1h"
    assert [label for *_, label in chart.points] == [
        "2026-11-27 10:00 UTC: 1h (pass)",
        "2026-11-27 11:00 UTC: 1d 1h (fail)",
    ]
    assert not any("e+" in label for _, label in chart.y_ticks), chart.y_ticks


def _y_labels(values: Sequence[float], unit: str, threshold: float | None = None) -> list[str]:
    from runbook.report import build_chart

    rows = [
        {"at": at(i + 1), "stage": "imports", "check": "c", "verdict": "pass", "value": v, "unit": unit}
        | {"threshold": threshold}
        for i, v in enumerate(values)
    ]
    return [label for _, label in build_chart("c", rows, [], T0, at(len(values) + 1)).y_ticks]


def test_counts_are_charted_on_whole_numbers_and_a_flat_zero_series_on_0_to_1() -> None:
    """Found by a new-user trial: an all-zero count of stuck rows showed a tick `2.5e-10 rows`; counts get
    whole-number ticks (no `0.5 rows`), and a series at 0 an axis 0 to 1."""
    assert _y_labels([0, 0, 0], "rows") == ["0 rows", "1 row"]
    assert _y_labels([0, 0], "") == ["0", "0.2", "0.4", "0.6", "0.8", "1"]
    assert _y_labels([0, 0], "bytes") == ["0B", "1B"]
    assert _y_labels([0, 1, 3], "jobs") == ["0 jobs", "1 job", "2 jobs", "3 jobs", "4 jobs"]
    assert _y_labels([0, 2, 7], "rows", threshold=10) == ["0 rows", "5 rows", "10 rows", "15 rows"]
    assert _y_labels([0, 1], "jobs") == ["0 jobs", "1 job", "2 jobs"]
    for values in ([0, 1], [0, 0], [2, 3], [0, 7], [0, 12], [0, 40]):
        labels = _y_labels(values, "rows")
        assert all(re.fullmatch(r"-?\d+ rows?", label) for label in labels), labels


def test_duration_ticks_are_round_durations_and_large_plain_numbers_read_in_full() -> None:
    """Seconds on round steps (`6h`, `2m`, `0.5s`), not powers of ten of seconds; a unitless 90000.0 is
    `90,000`, not `9e+04`."""
    assert _y_labels([3600.0, 90003.0], "s", threshold=86400.0) == ["0s", "6h", "12h", "18h", "1d", "1d 6h"]
    assert _y_labels([12.0, 400.0], "s") == ["0s", "2m", "4m", "6m", "8m"]
    assert _y_labels([0.2, 1.3], "s") == ["0s", "0.5s", "1s", "1.5s"]
    assert _y_labels([80000.0, 90000.0], "") == ["0", "20,000", "40,000", "60,000", "80,000", "100,000"]
