"""`memory`: a worker's memory, and its growth over the stage (leak detection).

Sources (exactly one): a process's RSS via psutil (`pid`, `pid_file` or a `cmdline` pattern; several
matches are summed or the largest taken, per `aggregate`), a JSON field over HTTP (`url` + `field`, e.g.
the app's /api/health `memory.rss`), or a Prometheus query (`prometheus` + `query`). The value is bytes.

`max` fails when the value is above it. `growth_per_hour` fails when the least-squares slope over the
stage's stored samples of this check (plus this measurement) is above it; until `min_samples` samples
spanning `min_span` exist, the check is INCONCLUSIVE (it cannot tell a leak from noise yet). An "hour" is
the runbook's hour: under a time scale of 0.001 it lasts 3.6 s, like every other duration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from runbook import contract
from runbook.checks import expect as ex
from runbook.checks import processes
from runbook.checks.base import CheckContext, CheckKind, Measurement, Sample, Verdict
from runbook.checks.http import failure_reason, request, shown
from runbook.checks.prometheus import PrometheusError, instant_query
from runbook.checks.transient import current
from runbook.model import Duration, Size, doc
from runbook.units import format_duration, format_size, parse_duration, parse_size


class Unmeasurable(Exception):
    """The source could not give a value (no process, no field, unreachable): an ERROR verdict."""


@dataclass(frozen=True)
class MemoryParams:
    pid: int | None = doc("process id to watch", None)
    pid_file: str | None = doc("file holding the pid to watch", None)
    cmdline: str | None = doc("regular expression matched against each process's command line", None)
    aggregate: Literal["sum", "max"] = doc("several matching processes: sum or the largest RSS", "sum")
    children: bool = doc("add the RSS of each process's descendants", False)
    url: str | None = doc("HTTP source: URL (or app path) of a JSON document holding the figure", None)
    field: str = doc("HTTP source: JSON path of the figure", "memory.rss")
    prometheus: str | None = doc("Prometheus source: base URL", None)
    query: str | None = doc("Prometheus source: PromQL query giving bytes", None)
    headers: Mapping[str, str] = doc("HTTP/Prometheus headers; values are secrets", factory=dict)
    field_unit: Size = doc("bytes per unit of the HTTP/Prometheus figure (1MiB if it reports MiB)", 1)
    max: Size | None = doc("fail when memory is above this, e.g. 100MB", None)
    growth_per_hour: Size | None = doc("fail when memory grows faster than this per hour, e.g. 5MB", None)
    min_samples: int = doc("samples needed before judging growth", 5)
    min_span: Duration = doc("time the samples must span before judging growth", 600.0)

    def __post_init__(self) -> None:
        for name in ("max", "growth_per_hour", "field_unit"):  # human strings when built in code
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, parse_size(getattr(self, name)))
        if isinstance(self.min_span, str):
            object.__setattr__(self, "min_span", parse_duration(self.min_span))
        self.selector.validate()
        sources = [self.selector.given, self.url is not None, self.query is not None]
        if sum(sources) != 1:
            raise ValueError(
                "give exactly one source: pid, pid_file or cmdline (a process), url (a JSON field over HTTP) "
                "or query (with prometheus: its base URL)"
            )
        if (self.query is None) != (self.prometheus is None):
            raise ValueError("query and prometheus go together: the PromQL query and the Prometheus base URL")
        if self.url is not None:
            ex.parse_path(self.field)
        if self.min_samples < 2:
            raise ValueError("min_samples: at least 2 samples are needed to measure growth")

    @property
    def selector(self) -> processes.Selector:
        return processes.Selector(self.pid, self.pid_file, self.cmdline)


def read(params: MemoryParams, ctx: CheckContext) -> tuple[int, str]:
    """The memory figure in bytes and where it came from. Raises Unmeasurable."""
    import httpx  # on first use: loading a runbook imports every kind module

    if params.selector.given:
        try:
            procs = processes.find(params.selector)
        except processes.NoProcess as exc:
            raise Unmeasurable(str(exc)) from None
        sizes = [processes.rss(p, params.children) for p in procs]
        total = sum(sizes) if params.aggregate == "sum" else max(sizes)
        pids = ", ".join(str(p.pid) for p in procs[:5]) + (", ..." if len(procs) > 5 else "")
        how = f"{params.aggregate} of {len(procs)} processes" if len(procs) > 1 else "process"
        return total, f"RSS of {how} (pid {pids})"
    if params.url is not None:
        try:
            resp = request(ctx, params.url, headers=params.headers)
        except (httpx.HTTPError, ValueError) as exc:
            why = failure_reason(exc) if isinstance(exc, httpx.HTTPError) else str(exc)
            raise Unmeasurable(f"GET {shown(ctx, params.url)} failed: {why}") from None
        where, path, document = shown(ctx, params.url), ex.parse_path(params.field), None
        if resp.status_code != 200:
            note = contract.note(where, status=resp.status_code)
            raise Unmeasurable(f"GET {where} -> {resp.status_code}, expected 200" + contract.tail(note))
        try:
            document = resp.json()
            figure = ex.resolve(document, path, params.field)
        except (ValueError, ex.MissingValue) as exc:
            note = contract.note(where, document=document, paths=[path])
            raise Unmeasurable(f"GET {where}: {exc}" + contract.tail(note)) from None
        if isinstance(figure, bool) or not isinstance(figure, int | float):
            note = contract.note(where, document=document, paths=[path])
            raise Unmeasurable(f"{params.field} is {ex.show(figure)}, not a number" + contract.tail(note))
        return round(figure * params.field_unit), f"{params.field} from {shown(ctx, params.url)}"
    try:
        series = instant_query(ctx, str(params.prometheus), str(params.query), params.headers)
    except (PrometheusError, httpx.HTTPError) as exc:
        why = failure_reason(exc) if isinstance(exc, httpx.HTTPError) else str(exc)
        raise Unmeasurable(f"Prometheus query failed: {why}") from None
    if not series:
        raise Unmeasurable("the Prometheus query returned no data")
    return round(max(v for _, v in series) * params.field_unit), "Prometheus query"


def slope_per_second(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, bytes) points."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / var


def growth(
    samples: Sequence[Sample], now: Any, value: int, params: MemoryParams, hour: float
) -> tuple[float | None, str]:
    """Growth per (runbook) hour over the samples and now, or None with why it cannot be judged yet."""
    points = [
        (s.at, float(s.value))
        for s in samples
        if s.verdict is not Verdict.ERROR
        and isinstance(s.value, int | float)
        and not isinstance(s.value, bool)
    ]
    points.append((now, float(value)))
    t0 = min(at for at, _ in points)
    xy = [((at - t0).total_seconds(), v) for at, v in points]
    span = max(x for x, _ in xy)
    if len(xy) < params.min_samples or span < params.min_span:
        return None, (
            f"growth not judged yet: {len(xy)} of {params.min_samples} samples over "
            f"{format_duration(span)} of {format_duration(params.min_span)}"
        )
    per_hour = slope_per_second(xy) * hour
    sign = "+" if per_hour >= 0 else "-"
    return (
        per_hour,
        f"growth {sign}{format_size(abs(per_hour))}/h over {len(xy)} samples in {format_duration(span)}",
    )


def measure(params: MemoryParams, ctx: CheckContext) -> Measurement:
    """Read the memory figure and judge it against `max` and `growth_per_hour`."""
    inputs: dict[str, Any] = {}
    for key in ("pid", "pid_file", "cmdline", "field", "prometheus", "query", "max", "growth_per_hour"):
        v = getattr(params, key)
        if v is not None and (key != "field" or params.url is not None):
            inputs[key] = v
    if params.url is not None:
        inputs["url"] = shown(ctx, params.url)
    try:
        value, source = read(params, ctx)
    except Unmeasurable as exc:
        return Measurement(Verdict.ERROR, None, str(exc), inputs, unit="bytes")
    notes = [f"{source}: {format_size(value)}"]
    verdict = Verdict.PASS
    if params.max is not None:
        over = value > params.max
        notes[0] += f", {'above the' if over else 'within'} max {format_size(params.max)}"
        verdict = Verdict.FAIL if over else verdict
    if params.growth_per_hour is not None:
        scope = current()
        samples = ctx.samples(scope.check) if scope is not None else ()
        hour = 3600.0 * ctx.runbook.time_scale
        per_hour, text = growth(samples, ctx.now(), value, params, hour)
        inputs["samples"] = len(samples) + 1
        if per_hour is None:
            verdict = Verdict.INCONCLUSIVE if verdict is Verdict.PASS else verdict
        else:
            inputs["growth_per_hour_measured"] = round(per_hour)
            fast = per_hour > params.growth_per_hour
            text += f", {'above the' if fast else 'within'} limit {format_size(params.growth_per_hour)}/h"
            verdict = Verdict.FAIL if fast else verdict
        notes.append(text)
    return Measurement(verdict, value, "; ".join(notes), inputs, unit="bytes")


KIND = CheckKind(name="memory", params=MemoryParams, measure=measure, summary="RSS and its growth (leaks)")
