"""The small assertion language of checks: `enabled == true`, `import_jobs.failed <= 0`, `value < 100MB`.

An assertion is `PATH OP LITERAL`. PATH is dotted keys with optional list indexes (`queues[0].name`,
`[1]` alone indexes a top-level list); OP is one of `== != < <= > >=`; LITERAL is a number, `true`, `false`,
`null`, a quoted string, a size (`100MB`, `1GiB`, in bytes) or a duration (`90s`, `5m`, in seconds).
Assertions are parsed when the runbook is loaded (`parse` raises ValueError with the reason) and evaluated
against a JSON document, a SQL row (column names as keys) or `{"value": ...}`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from runbook.units import parse_duration, parse_size

__all__ = ["Assertion", "MissingValue", "parse", "parse_all", "resolve", "show"]

_OPS = ("==", "!=", "<=", ">=", "<", ">")
_ASSERTION = re.compile(r"^\s*(?P<path>[^\s=!<>]+)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<lit>.+?)\s*$")
_SEGMENT = re.compile(r"(?P<key>[^.\[\]]+)?(?P<idx>(?:\[-?\d+\])*)$")
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_FORMS = 'write PATH OP VALUE, e.g. "enabled == true", "import_jobs.failed <= 0" or "value < 100MB"'


class MissingValue(LookupError):
    """The document has no value at the assertion's path (a different shape than expected)."""


@dataclass(frozen=True)
class Assertion:
    """One parsed assertion. `evaluate` compares the value at `path` in a document with `expected`."""

    text: str
    path: str
    parts: tuple[str | int, ...]
    op: str
    expected: Any

    def evaluate(self, document: Any) -> tuple[bool, Any, str]:
        """Return (ok, actual, explanation). Raises MissingValue when the path is absent."""
        actual = resolve(document, self.parts, self.path)
        ok = compare(actual, self.op, self.expected)
        verb = "" if ok else "expected "
        return ok, actual, f"{self.path} = {show(actual)}, {verb}{self.op} {show(self.expected)}"


def parse(text: str) -> Assertion:
    """Parse one assertion. Raises ValueError naming what is wrong and the accepted form."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"empty assertion: {_FORMS}")
    m = _ASSERTION.match(text)
    if not m:
        if not any(op in text for op in _OPS) or "=" in text.replace("==", "").replace("!=", ""):
            raise ValueError(f'no comparison operator (== != < <= > >=) in "{text}": {_FORMS}')
        raise ValueError(f'cannot read "{text}": {_FORMS}')
    path, op, lit = m["path"], m["op"], m["lit"]
    if lit[:1] in "=<>!":
        raise ValueError(f'unknown operator in "{text}": use one of == != < <= > >=')
    return Assertion(text=text.strip(), path=path, parts=parse_path(path), op=op, expected=literal(lit))


def parse_all(texts: Iterable[str]) -> tuple[Assertion, ...]:
    """Parse several assertions; the error names the one that is wrong (`expect[1]: ...`)."""
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(parse(text))
        except ValueError as exc:
            raise ValueError(f"expect[{i}]: {exc}") from None
    return tuple(out)


def parse_path(path: str) -> tuple[str | int, ...]:
    """`a.b[0].c` -> ("a", "b", 0, "c"). Raises ValueError on an empty segment or a bad index."""
    parts: list[str | int] = []
    for segment in path.split("."):
        m = _SEGMENT.match(segment)
        if not segment or not m or (not m["key"] and not m["idx"]):
            raise ValueError(f'bad path "{path}": use dotted keys and [N] indexes, e.g. queues[0].name')
        if m["key"]:
            parts.append(m["key"])
        parts.extend(int(i) for i in re.findall(r"-?\d+", m["idx"] or ""))
    return tuple(parts)


def literal(text: str) -> Any:
    """The value of a literal: number, true/false/null, quoted string, size (bytes) or duration (s)."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if _NUMBER.match(text):
        number = float(text)
        return int(number) if number.is_integer() and not any(c in text for c in ".eE") else number
    if low.endswith("b"):
        try:
            return parse_size(text)
        except ValueError:
            pass
    try:
        return parse_duration(text)
    except ValueError:
        pass
    raise ValueError(
        f'cannot read the value "{text}": use a number, true, false, null, a quoted string, '
        "a size like 100MB or a duration like 5m"
    )


def resolve(document: Any, parts: Sequence[str | int], path: str = "") -> Any:
    """The value at `parts` in a JSON-like document. Raises MissingValue naming the missing step."""
    current = document
    for i, part in enumerate(parts):
        here = path or ".".join(str(p) for p in parts[: i + 1])
        if isinstance(part, int):
            if not isinstance(current, list | tuple) or not -len(current) <= part < len(current):
                raise MissingValue(f"{here}: no item [{part}]")
            current = current[part]
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            raise MissingValue(f'{here}: no field "{part}"')
    return current


def compare(actual: Any, op: str, expected: Any) -> bool:
    """Compare with JSON semantics: booleans are not numbers, numbers compare by value, null only equals
    null; an ordering between different types is false (never an exception)."""
    a, e = _normal(actual), _normal(expected)
    if op in ("==", "!="):
        same = type(a) is type(e) and a == e
        return same if op == "==" else not same
    if type(a) is not type(e) or a is None or isinstance(a, bool):
        return False
    if isinstance(a, float) and math.isnan(a):
        return False
    if op == "<":
        return bool(a < e)
    if op == "<=":
        return bool(a <= e)
    if op == ">":
        return bool(a > e)
    return bool(a >= e)


def _normal(v: Any) -> Any:
    """Numbers (int, float, Decimal) as float so that 1 == 1.0; everything else as is."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int | float | Decimal):
        return float(v)
    return v


def show(v: Any) -> str:
    """A value as the assertion language writes it (`true`, `null`, `"x"`, `12`, `0.25`)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"' if len(v) <= 60 else f'"{v[:57]}..."'
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, float | Decimal):
        return f"{float(v):.4g}"
    if isinstance(v, dict | list):
        text = repr(v)
        return text if len(text) <= 60 else text[:57] + "..."
    return str(v)
