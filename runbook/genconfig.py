"""Options of the files `migrate init` generates (CI pipelines, Kubernetes manifests): one checked shape.

Every generator has a frozen dataclass of options with working defaults. `options_from` builds it from a
mapping (unknown keys are errors naming the known ones); `check_one_line`, `check_cron` and `check_variable`
refuse what would break the generated file or let a value escape its field, each naming the fix (exit 2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from typing import Any, TypeVar

from runbook.errors import ConfigError
from runbook.units import count

T = TypeVar("T")

VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""An environment variable name as every shell and CI accepts it."""
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (  # name, lowest, highest, names
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_CRON_PART = re.compile(r"^(?P<range>\*|\?|(?P<a>\w+)(?:-(?P<b>\w+))?)(?:/(?P<step>[0-9]+))?$")
CRON_HINT = 'five fields in UTC: minute hour day-of-month month day-of-week, e.g. "*/15 * * * *"'


def options_from(cls: type[T], value: T | Mapping[str, Any] | None, what: str) -> T:
    """`cls()` with the keys of `value` (tuples for list values); `what` names the options in errors."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    assert isinstance(value, Mapping) and is_dataclass(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(
            f"{count(len(unknown), f'unknown {what} option')}: {', '.join(unknown)}",
            hint=f"known: {', '.join(sorted(known))}",
        )
    data = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return replace(cls(), **data)


def check_one_line(opts: Any, what: str) -> None:
    """Every string option of the dataclass `opts` (and of its tuples) is one line."""
    for f in fields(opts):
        value = getattr(opts, f.name)
        if any("\n" in str(v) or "\r" in str(v) for v in (value if isinstance(value, tuple) else (value,))):
            raise ConfigError(f"{what} option {f.name} must be one line", hint="remove the line break")


def check_cron(cron: str, what: str) -> str:
    """`cron` when it is a 5-field cron whose every value is in its field's range; else a ConfigError."""
    parts = cron.split()
    if len(parts) != 5:
        raise ConfigError(f"{what} cron {cron!r} is not a 5-field cron", hint=CRON_HINT)
    for part, (name, low, high, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            m = _CRON_PART.match(item)
            ok = m is not None and (m["range"] != "?" or name.startswith("day"))
            if m is not None and ok:
                values = [_cron_value(v, low, names) for v in (m["a"], m["b"]) if v]
                ok = all(v is not None and low <= v <= high for v in values)
                ok = ok and (m["step"] is None or int(m["step"]) >= 1)
            if not ok:
                raise ConfigError(
                    f"{what} cron {cron!r}: {name} {item!r} is not a value from {low} to {high}"
                    + (f" ({names[0]}-{names[-1]})" if names else ""),
                    hint=CRON_HINT,
                )
    return " ".join(parts)


def _cron_value(text: str, low: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        return int(text)
    upper = text.upper()
    return names.index(upper) + low if upper in names else None


def check_variable(name: str, what: str) -> str:
    """`name` when it is a valid environment variable name; else a ConfigError naming the rule."""
    if not VARIABLE.match(name):
        raise ConfigError(f"{what} {name!r} is not valid", hint="use letters, digits and _ (e.g. APP_TOKEN)")
    return name


def yaml_quote(value: object) -> str:
    """A JSON string is a valid, safely quoted YAML scalar (the `q` filter of the generators' templates)."""
    return json.dumps(str(value))
