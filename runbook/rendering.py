"""Rendering: the one jinja2 environment over the packaged `templates/` folder and the formatting of values
for people. The Output object (command results), JUnit and step summaries, the HTML report, CI configuration,
roles SQL and notifications all render and format through here.

Compiled templates are cached on disk (compiling them costs more than the rest of `migrate status`); the
cache never fails a command."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbook.units import count, format_duration, format_seconds, format_size

if TYPE_CHECKING:  # jinja2 is imported on first render: loading a runbook stays fast
    import jinja2

__all__ = [
    "TEMPLATE_CACHE_ENV",
    "VERDICT_ICONS",
    "format_value",
    "format_when",
    "template_env",
    "threshold_text",
    "threshold_value",
    "to_json_text",
]

TEMPLATE_CACHE_ENV = "RUNBOOK_TEMPLATE_CACHE"
"""Folder for compiled templates (default: $XDG_CACHE_HOME/runbook/templates); `off` disables the cache."""
VERDICT_ICONS = {"pass": "✅", "fail": "❌", "error": "⚠️", "inconclusive": "⏸️"}
_THRESHOLD_KEYS = (("max", "≤"), ("maximum", "≤"), ("min", "≥"), ("minimum", "≥"), ("equals", "="))
SECONDS_UNITS = ("s", "seconds")
"""Units of durations, shown as `3.85s`, `1d 1h`."""
_SECONDS = SECONDS_UNITS
_SETTING_UNITS = {
    "min_jobs": "jobs",
    "min_samples": "samples",
    "max_samples": "samples",
    "max_staleness": "s",
    "min_span": "s",
}
"""The unit of a check setting that is not in its metric's unit (a count of jobs on a latency check)."""


def template_env(
    *,
    autoescape: bool,
    style: Callable[[Any, str], str] | None = None,
    variables: tuple[str, str] = ("{{", "}}"),
    comments: tuple[str, str] = ("{#", "#}"),
) -> jinja2.Environment:
    """The jinja2 environment over `templates/` with every filter (XML/HTML escaping if asked). `style`
    colours text (`style` and `verdict` filters); without it text is left plain. `variables` and `comments`
    are the delimiters (scaffold's app templates write `{= x =}`: JavaScript is full of `{{`)."""
    import jinja2

    import runbook.templates

    syntax = (variables, comments) != (("{{", "}}"), ("{#", "#}"))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(runbook.templates.__file__).parent),
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        variable_start_string=variables[0],
        variable_end_string=variables[1],
        comment_start_string=comments[0],
        comment_end_string=comments[1],
        # escaping and delimiters are compiled into a template: only the default environment shares the cache
        bytecode_cache=None if autoescape or syntax else _bytecode_cache(jinja2),
    )
    paint = style or (lambda text, _style: str(text))
    env.filters["duration"] = lambda s: "-" if s is None else format_duration(float(s))
    env.filters["size"] = lambda n: "-" if n is None else format_size(float(n))
    env.filters["when"] = format_when
    env.filters["value"] = lambda m: format_value(m.get("value"), m.get("unit") or "")
    env.filters["threshold"] = lambda m: threshold_text(m.get("inputs") or {}, m.get("unit") or "")
    env.filters["icon"] = lambda verdict: VERDICT_ICONS.get(str(verdict), "•")
    env.filters["count"] = count
    env.filters["json"] = to_json_text
    env.filters["json_line"] = lambda data: json.dumps(data, default=_json_default, ensure_ascii=False)
    env.filters["style"] = paint
    env.filters["verdict"] = lambda v: paint(str(v).upper(), str(v))
    return env


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json_text(data: Any) -> str:
    """JSON for people and machines: indented, dates as ISO 8601, UTF-8 kept."""
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)


def is_count_unit(unit: str) -> bool:
    """Whether a value in `unit` counts things (`rows`, `jobs`, `instances`): a plural noun, not seconds or
    bytes; such values are shown in English (`1 job`) and charted on whole numbers."""
    return unit.endswith("s") and unit not in (*SECONDS_UNITS, "bytes")


def format_value(value: Any, unit: str = "") -> str:
    """Show a measured value or a limit for people, in the measurement's unit: sizes for bytes (`52.0MB`),
    durations for seconds (`s`, as check explanations show them: `3.85s`, `1d 1h`), percentages for ratios,
    counts in English (`1 job`, `2 jobs`), 4 significant digits otherwise."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = str(value)
    elif unit == "bytes":
        return format_size(value)
    elif unit in _SECONDS:
        return format_seconds(value)
    elif unit == "ratio":
        return f"{value * 100:.3g}%"
    else:
        text = _number(value)
    if unit.endswith("s") and unit not in _SECONDS:
        return count(text, unit[:-1], unit)
    return f"{text} {unit}" if unit else text


def _number(value: int | float) -> str:
    """4 significant digits (`0.0123`, `1234`); from 10,000 whole numbers with thousands separators
    (`90,000`, not `9e+04`)."""
    if isinstance(value, int) or not math.isfinite(value):
        return str(value)
    if 1e4 <= abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def format_when(value: Any) -> str:
    """A time for people, `2026-11-29 13:02:05 UTC` (an ISO 8601 string is parsed; None is `-`)."""
    if value is None:
        return "-"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def threshold_value(inputs: Mapping[str, Any]) -> float | None:
    """Return the numeric threshold of a check (`max`, `min`, `threshold`, `max_*`, `min_*` input), if any."""
    keys = [k for k, _ in _THRESHOLD_KEYS] + ["threshold", "limit"]
    keys += [k for k in inputs if k.startswith(("max_", "min_"))]
    for key in keys:
        v = inputs.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return None


def threshold_text(inputs: Mapping[str, Any], unit: str = "") -> str:
    """Describe what a check compares against, as its value is shown (`format_value` in the measurement's
    `unit`): `≤ 100.0MB`, `≥ 5 jobs`, `≤ 1d`, or its assertions (`expect`). Settings of their own kind
    (`min_jobs`, `max_staleness`) are shown in theirs."""
    parts = [f"{sign} {format_value(inputs[k], unit)}" for k, sign in _THRESHOLD_KEYS if k in inputs]
    parts += [
        f"{k} {format_value(v, _SETTING_UNITS.get(k, unit))}"
        for k, v in inputs.items()
        if k.startswith(("max_", "min_"))
    ]
    for key in ("threshold", "limit"):
        if key in inputs:
            parts.append(format_value(inputs[key], unit))
    expect = inputs.get("expect")
    if isinstance(expect, list | tuple):
        parts += [str(e) for e in expect]
    elif expect:
        parts.append(str(expect))
    return "; ".join(parts) or "-"


def _bytecode_cache(jinja2: Any) -> Any:
    """Return a cache of compiled templates, or None when it is turned off or its folder cannot be made."""
    setting = os.environ.get(TEMPLATE_CACHE_ENV, "")
    if setting.lower() == "off":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = setting or os.path.join(base, "runbook", "templates")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None

    class QuietCache(jinja2.FileSystemBytecodeCache):  # type: ignore[misc]
        def load_bytecode(self, bucket: Any) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:  # a corrupt or unreadable entry: compile again
                bucket.reset()

        def dump_bytecode(self, bucket: Any) -> None:
            with contextlib.suppress(OSError):  # read-only or full disk: just no cache
                super().dump_bytecode(bucket)

    return QuietCache(folder)
