"""Bounded input: how much a runbook file may hold and ask for, checked before any value is converted.

- the file is read at most `MAX_FILE_BYTES` (a runbook is a few kB; `-f /dev/zero` must not fill memory);
- the document, with every YAML alias expanded (as the converter walks it), has at most `MAX_VALUES` nodes
  and nests at most `MAX_DEPTH` deep: an alias bomb (`&a [*b, *b, ...]`) is refused in milliseconds,
  whatever field holds it, instead of being expanded for minutes;
- durations, timeouts and sizes have an upper bound (`MAX_SECONDS`, `MAX_BYTES`), so that an absurd value
  (`99999999999999999999999d`) is a located error at load time, not an `OverflowError` in a command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not imported at run time: a cached load reads MAX_FILE_BYTES without loading yaml
    from yaml.nodes import Node

    from runbook.spec.yamlnodes import Issues

MAX_FILE_BYTES = 2 * 1024 * 1024
"""A runbook file larger than this is refused unread (the shipped stages.yaml is 14 kB)."""
MAX_VALUES = 50_000
"""Nodes of the document with its aliases expanded (the shipped stages.yaml has about 750)."""
MAX_DEPTH = 64
"""Nesting of the document with its aliases expanded (the shipped stages.yaml nests 7 deep)."""
MAX_SECONDS = {"duration": 365 * 86400.0, "timeout": 86400.0}
"""The longest duration (soak, window, interval, retention) and timeout (a connection, a query, a verify)."""
_LABELS = {"duration": "365d", "timeout": "24h"}
MAX_BYTES = 1024**4
"""The largest size (1TiB)."""


def check_document(root: Node, issues: Issues) -> bool:
    """Whether `root`, aliases expanded, fits `MAX_VALUES` and `MAX_DEPTH`; if not, an issue located at
    the smallest value that does not fit. Linear in the document as written (each node is counted once)."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, expanded depth)
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if not done:
            if key in sizes or key in active:  # counted, or an alias inside itself (the converter says so)
                continue
            active.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        active.discard(key)
        count, depth = 1, 1
        for child in children:
            got = sizes.get(id(child), (1, 1))
            count, depth = count + got[0], max(depth, got[1] + 1)
        if count > MAX_VALUES:
            issues.add(node, "", _too_many(count))
            return False
        if depth > MAX_DEPTH:
            issues.add(node, "", f"nested more than {MAX_DEPTH} levels deep; flatten this value")
            return False
        sizes[key] = (count, depth)
    return True


def _children(node: Node) -> list[Node]:
    """The nodes inside a mapping (keys and values) or a sequence; none inside a scalar."""
    value = node.value
    if not isinstance(value, list):
        return []
    return [n for item in value for n in (item if isinstance(item, tuple) else (item,))]


def _too_many(count: int) -> str:
    return (
        f"this value holds more than {MAX_VALUES:,} values ({count:,} with its YAML aliases *name expanded); "
        "a runbook is far smaller: repeat less through aliases, or split the value"
    )


def check_seconds(seconds: float, kind: str, shown: str) -> None:
    """Raise ValueError when a duration (`kind` "duration") or a timeout ("timeout") is out of bounds;
    `shown` is the value as written, for the message."""
    top = MAX_SECONDS[kind]
    if not seconds <= top:  # also NaN
        word = "a timeout" if kind == "timeout" else "a duration"
        raise ValueError(f"{word} can be at most {_LABELS[kind]}, got {shown}")


def check_bytes(size: float, shown: str) -> None:
    """Raise ValueError when a size is out of bounds; `shown` is the value as written."""
    if not size <= MAX_BYTES:
        raise ValueError(f"a size can be at most 1TiB, got {shown}")
