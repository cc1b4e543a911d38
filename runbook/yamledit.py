"""Minimal, line-based edits of a runbook file that keep its comments and layout: set one key of a block
mapping (a stage, a check) to a new scalar. The mapping is found by the `LINE:COL` the loader records
(`Stage.location`, `CheckSpec.location`); its keys sit at that column. A value written `${VAR:-default}`
keeps its variable and gets the new default; a trailing `# comment` stays. A key the mapping lacks is added
after its last line. A nested block mapping (`soak:` with `duration:` under it) is reached with a dotted
key (`soak.duration`); when the outer key is a scalar or missing, the outer key is set (`soak: 3h`). Flow
mappings (`{...}`) are not edited: `KeyNotEditable` says so.

The caller re-loads the edited text with the real loader before writing it (runbook.commands.calibrate)."""

from __future__ import annotations

import re

__all__ = ["KeyNotEditable", "set_key"]

_VAR = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):-(?P<default>[^}]*)\}$")
_COMMENT = re.compile(r"\s+#.*$")


class KeyNotEditable(ValueError):
    """The key cannot be edited line by line (flow style, a block value, a multi-line scalar)."""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _meaningful(line: str) -> bool:
    text = line.strip()
    return bool(text) and not text.startswith("#")


def _block(lines: list[str], start: int, col: int) -> tuple[int, int]:
    """Lines [start, end) of the block mapping whose keys sit at column `col` (0-based), from `start`; and
    the last meaningful line's index."""
    end, last = start + 1, start
    while end < len(lines):
        line = lines[end]
        if _meaningful(line):
            if _indent(line) < col:
                break
            last = end
        end += 1
    return end, last


def _key_line(lines: list[str], start: int, col: int, key: str) -> int | None:
    end, _ = _block(lines, start, col)
    for i in range(start, end):
        if lines[i][col:].startswith(f"{key}:") and (i == start or _indent(lines[i]) == col):
            return i
    return None


def set_key(text: str, line: int, col: int, key: str, value: str) -> str:
    """`text` with `key` of the mapping at `line`:`col` (1-based, as the loader reports) set to `value`
    (already YAML: `93`, `3h`, `0.05`)."""
    lines = text.split("\n")
    start, at = line - 1, col - 1
    head, _, rest = key.partition(".")
    found = _key_line(lines, start, at, head)
    if rest:
        if found is None:  # `soak: 3h`: the short form of `soak: {duration: 3h}`
            return set_key(text, line, col, head, value)
        scalar = lines[found][at + len(head) + 1 :].strip()
        if _meaningful(scalar):  # `soak: 24h`, a scalar, not a mapping: set it whole
            return set_key(text, line, col, head, value)
        inner = next((i for i in range(found + 1, len(lines)) if _meaningful(lines[i])), None)
        if inner is None or _indent(lines[inner]) <= at:
            raise KeyNotEditable(f"{head} at line {found + 1} has no block mapping under it")
        return set_key(text, inner + 1, _indent(lines[inner]) + 1, rest, value)
    if found is None:
        _, last = _block(lines, start, at)
        if lines[start][at:].rstrip().endswith(("{", "}")):
            raise KeyNotEditable(f"the mapping at line {line} is written in flow style ({{...}})")
        lines.insert(last + 1, " " * at + f"{key}: {value}")
        return "\n".join(lines)
    prefix_len = at + len(key) + 1
    prefix, old = lines[found][:prefix_len], lines[found][prefix_len:]
    comment = _COMMENT.search(old)
    tail = comment.group(0) if comment else ""
    scalar = old[: comment.start()].strip() if comment else old.strip()
    if not scalar or scalar[0] in "{[|>&*!\"'":
        raise KeyNotEditable(f"{key} at line {found + 1} is not a plain scalar ({scalar or 'a block'})")
    var = _VAR.match(scalar)
    new = f"${{{var.group('name')}:-{value}}}" if var else value
    lines[found] = f"{prefix} {new}{tail}"
    return "\n".join(lines)
