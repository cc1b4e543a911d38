"""Render the migration's story as one self-contained HTML file: timeline, decisions, charts.

Inputs (plain data, as the state store returns it):

- `stages`: `[{"id": ..., "title": ...}]` in runbook order.
- `events`: dicts with `at` (datetime or ISO string), `user`, `host`, `ci_url` (or these three under
  `actor`, as `Event.to_json()` has them), `operation`, `from_stage`,
  `to_stage`, `flags_before`, `flags_after`, `verdicts` (list of `Measurement.to_json()` dicts), `reason`,
  `outcome`. An event moves the migration to `to_stage` when its operation is one of `MOVES` and its
  outcome is not one of `FAILED_OUTCOMES`.
- `samples`: dicts with `at`, `stage`, `check`, `verdict`, `value` (number or None), `unit`, `threshold`
  (number or None), and `lower` and `upper` for a rate judged with confidence (drawn as a band).

The page has no scripts and no external assets: CSS is inline and charts are inline SVG computed here
(`report/` templates draw them); everything shown is escaped by jinja2's autoescape.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runbook.rendering import SECONDS_UNITS, format_value, is_count_unit, template_env, threshold_text
from runbook.units import format_duration

MOVES = frozenset({"init", "advance", "rollback", "auto-rollback", "reconcile"})
FAILED_OUTCOMES = frozenset({"failed", "fail", "error", "aborted", "refused", "blocked", "denied"})
MARKED = frozenset({"rollback", "auto-rollback", "sample-breach", "verify-failed"})
"""Operations drawn as red marks on the timeline."""
PALETTE = ("#4c78a8", "#59a14f", "#b07aa1", "#f28e2b", "#76b7b2", "#edc948", "#9c755f", "#ff9da7")
CHART_BOX = {"W": 880, "H": 230, "LEFT": 70, "RIGHT": 20, "TOP": 14, "BOTTOM": 34}
"""A chart's SVG geometry (user units: width, height, the plot's margins), under the names this module and the
`report/chart.svg.j2` template both use."""
W, H, LEFT, RIGHT, TOP, BOTTOM = CHART_BOX.values()
_STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)


@dataclass(frozen=True)
class Span:
    """A stay in one stage: from `start` to `end` (None while it is the current stage)."""

    stage: str
    title: str
    start: dt.datetime
    end: dt.datetime | None
    color: str
    seconds: float
    x: float = 0.0
    width: float = 0.0


@dataclass
class Chart:
    """Geometry of one check's chart, in SVG user units (`W` x `H`)."""

    check: str
    unit: str
    lines: list[str] = field(default_factory=list)
    points: list[tuple[float, float, str, str]] = field(default_factory=list)
    errors: list[tuple[float, str]] = field(default_factory=list)
    thresholds: list[tuple[float, float, float, str]] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    bands: list[tuple[float, float, str, str]] = field(default_factory=list)
    intervals: list[str] = field(default_factory=list)
    """Closed SVG paths: the confidence interval of each run of samples that has one (clipped to the axis)."""
    latest: str = "-"
    count: int = 0
    breaches: int = 0


def _time(value: Any) -> dt.datetime:
    t = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def when(t: dt.datetime | None) -> str:
    """Format a time for the report: `2026-11-29 13:02 UTC`."""
    return "-" if t is None else t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def stage_spans(stages: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]) -> list[Span]:
    """Derive the stays in each stage from the events, oldest first."""
    titles = {s["id"]: s.get("title") or s["id"] for s in stages}
    colors = {s["id"]: PALETTE[i % len(PALETTE)] for i, s in enumerate(stages)}
    spans: list[Span] = []
    for e in sorted(events, key=lambda e: _time(e["at"])):
        to = e.get("to_stage")
        moved = e.get("operation") in MOVES and str(e.get("outcome") or "").lower() not in FAILED_OUTCOMES
        if not to or not moved or (spans and spans[-1].stage == to):
            continue
        at = _time(e["at"])
        if spans:
            last = spans[-1]
            spans[-1] = Span(last.stage, last.title, last.start, at, last.color, 0.0)
        spans.append(Span(to, titles.get(to, to), at, None, colors.get(to, "#999999"), 0.0))
    return spans


class _Scale:
    def __init__(self, lo: float, hi: float, out_lo: float, out_hi: float) -> None:
        self.lo, self.hi = lo, (hi if hi > lo else lo + 1)
        self.out_lo, self.out_hi = out_lo, out_hi

    def __call__(self, v: float) -> float:
        return round(self.out_lo + (v - self.lo) / (self.hi - self.lo) * (self.out_hi - self.out_lo), 1)


def _nice_ticks(lo: float, hi: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """About `count` steps of 1, 2, 2.5 or 5 times a power of ten covering `lo`-`hi`; `whole`: steps of at
    least 1 and never 2.5 (counts: a tick at 0.5 or 2.5 rows means nothing)."""
    raw = (hi - lo) / count if hi > lo else 1.0
    if whole:
        raw = max(raw, 1.0)
    mag = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 5, 10) if whole and mag == 1 else (1, 2, 2.5, 5, 10)
    step = next(m * mag for m in steps if m * mag >= raw)
    first = math.floor(lo / step) * step
    return [float(first + i * step) for i in range(math.ceil((hi - first) / step - 1e-9) + 1)]


_DURATION_STEPS = (
    *(1, 2, 5, 10, 15, 30),
    *(60 * m for m in (1, 2, 5, 10, 15, 30)),
    *(3600 * h for h in (1, 2, 3, 6, 12)),
    *(86400 * d for d in (1, 2, 7, 14, 30)),
)


def _duration_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Ticks on round durations (`30s`, `5m`, `6h`, `1d`), not on powers of ten of seconds (`2.5e+04s`);
    below 5 seconds (and beyond 150 days) decimal ones."""
    raw = (hi - lo) / count
    step = next((float(s) for s in _DURATION_STEPS if s >= raw), None)
    if hi - lo < 5 or step is None:
        return _nice_ticks(lo, hi, count)
    first = math.floor(lo / step) * step
    return [first + i * step for i in range(math.ceil((hi - first) / step - 1e-9) + 1)]


def _axis_ticks(lo: float, hi: float, unit: str) -> list[float]:
    """The y ticks of a chart in `unit`: whole numbers for counts (`rows`, `jobs`) and bytes, round durations
    for seconds, else 1-2-2.5-5 steps."""
    if unit in SECONDS_UNITS:
        return _duration_ticks(lo, hi)
    return _nice_ticks(lo, hi, whole=is_count_unit(unit) or unit == "bytes")


def time_ticks(start: dt.datetime, end: dt.datetime, scale: _Scale) -> list[tuple[float, str]]:
    """Return aligned time ticks (at most about 8) as (x, label); labels gain the date over a day."""
    span = (end - start).total_seconds()
    step = next((s for s in _STEPS if span / s <= 8), _STEPS[-1])
    t = math.ceil(start.timestamp() / step) * step
    fmt = "%b %d %H:%M" if span > 86400 or step >= 86400 else "%H:%M"
    ticks = []
    while t <= end.timestamp():
        ticks.append((scale(t), dt.datetime.fromtimestamp(t, dt.UTC).strftime(fmt)))
        t += step
    return ticks


def build_chart(
    check: str,
    samples: Sequence[Mapping[str, Any]],
    spans: Sequence[Span],
    start: dt.datetime,
    end: dt.datetime,
) -> Chart:
    """Lay out one check's samples: value line (gaps at errors), points, threshold steps, stage bands."""
    rows = sorted(samples, key=lambda s: _time(s["at"]))
    unit = next((str(s.get("unit")) for s in rows if s.get("unit")), "")
    values = [float(s["value"]) for s in rows if isinstance(s.get("value"), int | float)]
    limits = [float(s["threshold"]) for s in rows if isinstance(s.get("threshold"), int | float)]
    lo, hi = min([0.0, *values, *limits]), max([*values, *limits], default=0.0)
    # the intervals' upper ends too, up to twice the values' and limits' top: early intervals (0-0.95 after
    # one job) would flatten the line, so a band above that is clipped at the axis
    uppers = [float(s["upper"]) for s in rows if isinstance(s.get("upper"), int | float)]
    hi = max(hi, min(max(uppers, default=0.0), 2 * hi))
    # a flat series (all 0: no rows, no errors) gets an axis 0 to 1 above it, not 0 to 2.5e-10
    top = lo + 1 if hi <= lo else hi + (hi - lo) * 0.08
    ticks = _axis_ticks(lo, top, unit)
    x = _Scale(start.timestamp(), end.timestamp(), LEFT, W - RIGHT)
    y = _Scale(ticks[0], ticks[-1], H - BOTTOM, TOP)
    chart = Chart(check, unit, count=len(rows))
    chart.y_ticks = [(y(v), format_value(round(v, 12), unit)) for v in ticks]
    chart.x_ticks = time_ticks(start, end, x)
    for span in spans:
        x0, x1 = x(span.start.timestamp()), x((span.end or end).timestamp())
        chart.bands.append(
            (max(x0, LEFT), max(0.0, min(x1, W - RIGHT) - max(x0, LEFT)), span.stage, span.color)
        )
    path: list[tuple[float, float]] = []
    stamps = [_time(s["at"]).timestamp() for s in rows]
    gaps = sorted(b - a for a, b in itertools.pairwise(stamps))
    max_gap = 3 * gaps[len(gaps) // 2] if gaps else math.inf
    marked: set[tuple[float, float]] = set()
    for i, s in enumerate(rows):
        px, value, verdict = x(stamps[i]), s.get("value"), str(s.get("verdict"))
        label = f"{when(_time(s['at']))}: {format_value(value, unit)} ({verdict}{_interval_text(s, unit)})"
        if path and stamps[i] - stamps[i - 1] > max_gap:  # no samples for a while: do not draw across
            chart.lines.append(_svg_path(path))
            path = []
        if not isinstance(value, int | float):
            if (round(px), -1) not in marked:
                marked.add((round(px), -1))
                chart.errors.append((px, label))
            if path:
                chart.lines.append(_svg_path(path))
            path = []
            continue
        py = y(float(value))
        path.append((px, py))
        chart.breaches += verdict == "fail"
        if (verdict != "pass" or len(rows) <= 120) and (round(px), round(py)) not in marked:
            marked.add((round(px), round(py)))
            chart.points.append((px, py, verdict, label))
    if path:
        chart.lines.append(_svg_path(path))
    chart.intervals = _interval_bands(rows, stamps, x, y, (ticks[0], ticks[-1]))
    runs: list[tuple[float, float, float]] = []
    for s in rows:
        t, px = s.get("threshold"), x(_time(s["at"]).timestamp())
        if not isinstance(t, int | float):
            continue
        if runs and runs[-1][2] == float(t):
            runs[-1] = (runs[-1][0], px, runs[-1][2])
        else:
            runs.append((px, px, float(t)))
    chart.thresholds = [
        (x0, max(x1, x0 + 6), y(t), f"threshold {format_value(t, unit)}") for x0, x1, t in runs
    ]
    last = next((s for s in reversed(rows) if s.get("value") is not None), None)
    chart.latest = format_value(last["value"], unit) if last else "-"
    return chart


def _interval_text(s: Mapping[str, Any], unit: str) -> str:
    if s.get("lower") is None or s.get("upper") is None:
        return ""
    return f", interval {format_value(s['lower'], unit)}-{format_value(s['upper'], unit)}"


def _interval_bands(
    rows: Sequence[Mapping[str, Any]],
    stamps: Sequence[float],
    x: _Scale,
    y: _Scale,
    axis: tuple[float, float],
) -> list[str]:
    """One closed path per run of consecutive samples carrying `lower` and `upper`: along the upper ends,
    back along the lower ones."""
    runs: list[list[tuple[float, float, float]]] = [[]]
    for s, t in zip(rows, stamps, strict=True):
        lo, hi = s.get("lower"), s.get("upper")
        if isinstance(lo, int | float) and isinstance(hi, int | float):
            clip = [y(min(max(float(v), axis[0]), axis[1])) for v in (lo, hi)]
            runs[-1].append((x(t), clip[0], clip[1]))
        elif runs[-1]:
            runs.append([])
    out = []
    for run in (r for r in runs if r):
        top = [(px, hi) for px, _, hi in run]
        bottom = [(px, lo) for px, lo, _ in reversed(run)]
        out.append(
            " ".join(f"{'L' if i else 'M'}{px},{py}" for i, (px, py) in enumerate(top + bottom)) + " Z"
        )
    return out


def _svg_path(points: Sequence[tuple[float, float]]) -> str:
    """Draw a polyline; over a pixel column holding many samples keep only its first, min, max and last."""
    if len(points) > 2 * (W - LEFT - RIGHT):
        columns: dict[int, list[tuple[float, float]]] = {}
        for p in points:
            columns.setdefault(round(p[0]), []).append(p)
        points = [
            q
            for col in columns.values()
            for q in sorted({col[0], min(col, key=lambda p: p[1]), max(col, key=lambda p: p[1]), col[-1]})
        ]
    d = " ".join(f"{'L' if i else 'M'}{px},{py}" for i, (px, py) in enumerate(points))
    return d if len(points) > 1 else d + " h1"


def _decision(e: Mapping[str, Any]) -> dict[str, Any]:
    before, after = dict(e.get("flags_before") or {}), dict(e.get("flags_after") or {})
    changes = [
        (k, before.get(k), after.get(k)) for k in sorted({*before, *after}) if before.get(k) != after.get(k)
    ]
    verdicts = [
        {
            **v,
            "shown": format_value(v.get("value"), v.get("unit") or ""),
            "limit": threshold_text(v.get("inputs") or {}, v.get("unit") or ""),
        }
        for v in e.get("verdicts") or []
    ]
    raw = e.get("actor")
    actor: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    user, host = e.get("user") or actor.get("user"), e.get("host") or actor.get("host")
    ci = str(e.get("ci_url") or actor.get("ci_url") or "")
    return {
        **e,
        "when": when(_time(e["at"])),
        "changes": changes,
        "verdicts": verdicts,
        "ci_url": ci,
        "ci_link": ci.startswith(("https://", "http://")),
        "who": "@".join(str(p) for p in (user, host) if p),
    }


def render_report(
    runbook_name: str,
    stages: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    samples: Sequence[Mapping[str, Any]],
    now: dt.datetime,
) -> str:
    """Render the whole report as one HTML page (no JavaScript, no external assets)."""
    spans = stage_spans(stages, events)
    times = [_time(e["at"]) for e in events] + [_time(s["at"]) for s in samples]
    start = min(times, default=now - dt.timedelta(hours=1))
    end = max([now, *times])
    if end <= start:
        start = end - dt.timedelta(minutes=1)
    scale = _Scale(start.timestamp(), end.timestamp(), 0, 1000)
    timeline = [
        Span(
            s.stage,
            s.title,
            s.start,
            s.end,
            s.color,
            ((s.end or end) - s.start).total_seconds(),
            scale(s.start.timestamp()),
            scale((s.end or end).timestamp()) - scale(s.start.timestamp()),
        )
        for s in spans
    ]
    by_check: dict[str, list[Mapping[str, Any]]] = {}
    for s in samples:
        by_check.setdefault(str(s["check"]), []).append(s)
    charts = [build_chart(c, rows, spans, start, end) for c, rows in sorted(by_check.items())]
    stay = {s["id"]: sum(t.seconds for t in timeline if t.stage == s["id"]) for s in stages}
    current = timeline[-1] if timeline else None
    ordered = sorted(events, key=lambda e: _time(e["at"]))
    env = template_env(autoescape=True)
    env.filters["duration"] = lambda s: format_duration(float(s))
    env.filters["when"] = when
    return env.get_template("report/report.html.j2").render(
        name=runbook_name,
        now=now,
        start=start,
        end=end,
        stages=stages,
        spans=timeline,
        stay=stay,
        current=current,
        decisions=[_decision(e) for e in ordered],
        charts=charts,
        axis=time_ticks(start, end, scale),
        visits={s["id"]: sum(1 for t in timeline if t.stage == s["id"]) for s in stages},
        rollbacks=sum(1 for e in ordered if "rollback" in str(e.get("operation"))),
        marks=[
            (
                scale(_time(e["at"]).timestamp()),
                f"{when(_time(e['at']))}: {e.get('operation')} {e.get('reason') or ''}",
            )
            for e in ordered
            if e.get("operation") in MARKED
        ],
        sample_count=len(samples),
        **CHART_BOX,
    )
