"""Human durations (`90s`, `5m`, `24h`, `2d`, `1h30m`), sizes (`100MB`, `1.5GiB`) and counts (`1 row`,
`2 rows`), and the one switch that compresses every duration for demos and tests."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sized

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}

TIME_SCALE_ENV = "RUNBOOK_TIME_SCALE"
"""Environment variable read by `time_scale()`; also set by the global `--time-scale` option."""


def parse_duration(text: str | int | float) -> float:
    """Seconds in a human duration. Bare numbers are seconds. Raises ValueError with the accepted forms."""
    if isinstance(text, bool):
        raise ValueError("expected a duration like 90s, 5m, 24h or 2d")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    s = text.strip().lower().replace(" ", "")
    if not s:
        raise ValueError("expected a duration like 90s, 5m, 24h or 2d, got an empty string")
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f'expected a duration like 90s, 5m, 24h or 2d, got "{text}"')
    if not math.isfinite(total):
        raise ValueError(f"a duration too long to count, got {_short(text)}")
    return total


def parse_size(text: str | int | float) -> int:
    """Bytes in a human size (`100MB` = 100 * 1000**2, `100MiB` = 100 * 1024**2). Bare numbers are bytes."""
    if isinstance(text, bool):
        raise ValueError("expected a size like 100MB or 1GiB")
    if isinstance(text, int | float):
        if not math.isfinite(text):
            raise ValueError(f"expected a finite size, got {text}")
        return int(text)
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f'expected a size like 100MB or 1GiB, got "{text}"')
    unit = (m.group(2) or "b").lower()
    size = float(m.group(1)) * _SIZE_UNITS[unit]
    if not math.isfinite(size):
        raise ValueError(f"a size too large to count, got {_short(text)}")
    return int(size)


def _short(text: str) -> str:
    """`text` quoted, at most 40 characters (a value too large to count is a long one)."""
    return '"' + (text if len(text) <= 40 else text[:37] + "...") + '"'


def format_duration(seconds: float) -> str:
    """`1d 2h`, `5m 3s`, `850ms`: two most significant units."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    parts: list[str] = []
    rest = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
        if len(parts) == 2:
            break
    return " ".join(parts) or "0s"


def format_seconds(seconds: float) -> str:
    """A measured duration: `3.85s` below a minute (three decimals at most), `5m 3s` above. What check
    explanations and every rendering of a value or limit in seconds show, so they read alike."""
    if seconds < 60:
        shown = round(seconds, 3) + 0.0  # + 0.0: no "-0s"
        return f"{shown:.3f}".rstrip("0").rstrip(".") + "s"
    return format_duration(seconds)


def format_size(n: float) -> str:
    """`97.3MB` (decimal units, as `parse_size` reads `MB`)."""
    for unit, size in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{int(n)}B"


class Quantity(float):
    """A limit as the runbook wrote it: a plain number (`unit` ""), a duration in seconds (`"duration"`, from
    `1d`) or a size in bytes (`"size"`, from `100MB`), so a check can refuse a size on a duration metric."""

    unit: str

    def __new__(cls, value: float, unit: str = "") -> Quantity:
        q = super().__new__(cls, value)
        q.unit = unit
        return q

    def __reduce__(self) -> tuple[type[Quantity], tuple[float, str]]:
        return (Quantity, (float(self), self.unit))


def parse_quantity(text: str | int | float) -> Quantity:
    """A number, a duration (`1d`: seconds) or a size (`100MB`: bytes), remembering which."""
    if isinstance(text, bool):
        raise ValueError("expected a number, a duration like 1d or a size like 100MB")
    if isinstance(text, int | float):
        return Quantity(float(text))
    try:
        return Quantity(float(text))
    except ValueError:
        pass
    try:
        return Quantity(parse_duration(text), "duration")
    except ValueError:
        pass
    try:
        return Quantity(float(parse_size(text)), "size")
    except ValueError:
        raise ValueError(
            f'expected a number, a duration like 1d or a size like 100MB, got "{text}"'
        ) from None


def count(n: int | float | str | Sized, noun: str, plural: str | None = None) -> str:
    """`n noun` in English: `1 legacy row`, `2 legacy rows`, `at least 500 jobs` (`plural` when not noun+s).
    The one way messages and templates (filter `count`) say how many; a collection counts its items."""
    if isinstance(n, Sized) and not isinstance(n, str):
        n = len(n)
    one = str(n).strip() in ("1", "1.0")
    return f"{n} {noun if one else plural or noun + 's'}"


def time_scale(env: Mapping[str, str] | None = None) -> float:
    """The factor every duration of the runbook is multiplied by (1 = real time; 0.001 = a day in 86 s),
    from `env` if it sets it, else from the process environment."""
    raw = ((env or {}).get(TIME_SCALE_ENV) or os.environ.get(TIME_SCALE_ENV, "")).strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{TIME_SCALE_ENV} must be a number such as 0.001, got {raw!r}") from exc
    if not 0 < value <= 1:
        raise ValueError(f"{TIME_SCALE_ENV} must be in (0, 1], got {raw!r}")
    return value
