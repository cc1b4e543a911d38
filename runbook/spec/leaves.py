"""Convert leaf values: strings, numbers, booleans, Literal choices, durations, sizes and `Any` values.

`LeafConverter` is the base of `Converter`; it owns the issue list, the scalar reader and the time scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runbook.spec.budget import check_bytes, check_seconds
from runbook.spec.scalars import Scalar, ScalarReader, render, what
from runbook.spec.typehints import close_match
from runbook.spec.yamlnodes import Issues, join, mapping_items
from runbook.units import parse_duration, parse_quantity, parse_size

T = TypeVar("T")


class _Invalid:
    """Marker returned when a value could not be converted (its issue is already recorded)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


class LeafConverter:
    """Converts scalar nodes (and `Any` values) of one file, recording issues in `issues`."""

    def __init__(self, issues: Issues, env: Mapping[str, str], time_scale: float = 1.0) -> None:
        self.issues = issues
        self.scalars = ScalarReader(env)
        self.time_scale = time_scale
        self._active: set[int] = set()

    def scalar(self, node: Node, path: str, expected: str) -> Scalar | None:
        """The scalar at `node`, or None after an issue (`expected` names what was wanted)."""
        if not isinstance(node, ScalarNode):
            kind = "a mapping" if isinstance(node, MappingNode) else "a list"
            self.issues.add(node, path, f"expected {expected}, got {kind}")
            return None
        try:
            return self.scalars.read(node)
        except ValueError as exc:
            self.issues.add(node, path, str(exc))
            return None

    def got(self, node: Node) -> str:
        """What a node holds, for `expected X, got ...`."""
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        try:
            return self.scalars.read(node).shown() if isinstance(node, ScalarNode) else "a value"
        except ValueError:
            return render(node.value)

    # --- scalars --------------------------------------------------------------------------------------

    def simple(self, node: Node, tp: type, path: str) -> Any:
        """A str, int, float or bool."""
        expected = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[tp]
        sc = self.scalar(node, path, expected)
        if sc is None:
            return INVALID
        v = sc.value
        if tp in (int, float) and sc.expanded is not None and isinstance(v, str):
            v = self.scalars.typed(v)  # a quoted "${VAR:-0.95}" holding a number is one, as for max/min
        if tp is str:
            if sc.expanded is not None or isinstance(v, str):
                return sc.text
            if v is not None:
                self.issues.add(
                    node,
                    path,
                    f'expected a string, got {what(v)} {render(v)}; quote it ("{sc.text}") if it is text',
                )
                return INVALID
        elif isinstance(v, bool):
            if tp is bool:
                return v
        elif (tp is int and isinstance(v, int)) or (tp is float and isinstance(v, int | float)):
            return tp(v)
        self.issues.add(node, path, f"expected {expected}, got {sc.shown()}")
        return INVALID

    def duration(self, node: Node, path: str, *, scaled: bool = True) -> Any:
        """Seconds from `90s`, `5m`, `24h`, `2d` or a number, times the time scale (not for timeouts);
        bounded (`runbook.spec.budget.MAX_SECONDS`: a timeout is `scaled=False`)."""
        expected = "a duration like 90s, 5m, 24h or 2d"

        def convert(sc: Scalar) -> float:
            seconds = parsed(sc, parse_duration, expected, "duration")
            check_seconds(seconds, "duration" if scaled else "timeout", sc.shown())
            return seconds * (self.time_scale if scaled else 1.0)

        return self.checked(node, path, expected, convert)

    def size(self, node: Node, path: str) -> Any:
        """Bytes from `100MB`, `1GiB` or a number, at most `runbook.spec.budget.MAX_BYTES`."""
        expected = "a size like 100MB or 1GiB"

        def convert(sc: Scalar) -> int:
            size = parsed(sc, parse_size, expected, "size")
            check_bytes(size, sc.shown())
            return size

        return self.checked(node, path, expected, convert)

    def threshold(self, node: Node, path: str) -> Any:
        """A max/min: a number, a duration like 1d (seconds) or a size like 100MB (bytes), as a Quantity."""
        expected = "a number, a duration like 1d or a size like 100MB"

        def convert(sc: Scalar) -> Any:
            q = parsed(sc, parse_quantity, expected, "number", signed=True)
            if q.unit == "duration":
                check_seconds(q, "duration", sc.shown())
            elif q.unit == "size":
                check_bytes(int(q), sc.shown())
            return q

        return self.checked(node, path, expected, convert)

    def checked(self, node: Node, path: str, expected: str, convert: Callable[[Scalar], Any]) -> Any:
        """`convert` the scalar at `node` (read as `expected`); INVALID when it is not one or `convert` raises
        ValueError (recorded as the issue)."""
        sc = self.scalar(node, path, expected)
        if sc is None:
            return INVALID
        try:
            return convert(sc)
        except ValueError as exc:
            self.issues.add(node, path, str(exc))
            return INVALID

    def literal(self, node: Node, allowed: tuple[Any, ...], path: str) -> Any:
        """One of the allowed values."""
        listed = ", ".join(render(a) for a in allowed)
        sc = self.scalar(node, path, f"one of {listed}")
        if sc is None:
            return INVALID
        value = sc.text if sc.expanded is not None else sc.value
        if value in allowed:
            return value
        msg = f"expected one of {listed}, got {sc.shown()}"
        close = close_match(value, [str(a) for a in allowed]) if isinstance(value, str) else None
        msg += f'; did you mean "{close}"?' if close else ""
        self.issues.add(node, path, msg)
        return INVALID

    def enter(self, node: Node, path: str) -> bool:
        """Mark a collection as being converted; False (after an issue) if it already is: an alias
        that contains itself (`&a [*a]`). Call `leave` when done."""
        if id(node) in self._active:
            self.issues.add(node, path, "this YAML alias contains itself; a runbook value must be finite")
            return False
        self._active.add(id(node))
        return True

    def leave(self, node: Node) -> None:
        """End what `enter` began."""
        self._active.discard(id(node))

    def plain(self, node: Node, path: str) -> Any:
        """Any YAML value as plain Python (dicts, lists, scalars), interpolated."""
        if isinstance(node, MappingNode | SequenceNode):
            if not self.enter(node, path):
                return INVALID
            try:
                return self.plain_inside(node, path)
            finally:
                self.leave(node)
        return self.plain_inside(node, path)

    def plain_inside(self, node: Node, path: str) -> Any:
        """`plain` of a node already entered (or a scalar)."""
        if isinstance(node, MappingNode):
            pairs = mapping_items(node, path, self.issues)
            out = {k: self.plain(v, join(path, k)) for k, _, v in pairs}
            return INVALID if any(v is INVALID for v in out.values()) else out
        if isinstance(node, SequenceNode):
            items = [self.plain(v, f"{path}[{i}]") for i, v in enumerate(node.value)]
            return INVALID if any(v is INVALID for v in items) else items
        sc = self.scalar(node, path, "a value")
        return INVALID if sc is None else sc.value


def parsed(sc: Scalar, parse: Callable[[Any], T], expected: str, noun: str, *, signed: bool = False) -> T:
    """`parse(sc.value)` for a string or a finite number, non-negative unless `signed` (each refusal a
    ValueError naming `expected` or the `noun`)."""
    if not isinstance(sc.value, str | int | float) or isinstance(sc.value, bool):
        raise ValueError(f"expected {expected}, got {sc.shown()}")
    if isinstance(sc.value, float) and not math.isfinite(sc.value):
        raise ValueError(f"expected a finite {noun}, got {sc.shown()}")
    if not signed and isinstance(sc.value, int | float) and sc.value < 0:
        raise ValueError(f"a {noun} cannot be negative, got {sc.shown()}")
    return quiet(parse, sc, expected)


def quiet(parse: Callable[[Any], T], sc: Scalar, expected: str) -> T:
    """`parse(sc.value)`; its error quotes the text, so for a value read from the environment (which may be a
    secret) it says `got the value of ${VAR}` instead."""
    try:
        return parse(sc.value)
    except ValueError:
        if sc.expanded is None:
            raise
        raise ValueError(f"expected {expected}, got {sc.shown()}") from None
