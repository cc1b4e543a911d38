"""Parse YAML text into nodes that keep their marks, and collect every problem as a located `SpecIssue`.

Syntax errors, tab indentation, duplicate keys, non-string keys and unsupported tags are issues like any
other: the loader never lets a PyYAML exception or a traceback reach the user.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runbook.errors import SpecIssue
from runbook.spec.budget import check_document
from runbook.spec.typehints import close_match, suggest

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

TAG = "tag:yaml.org,2002:"
STR, NULL, BOOL, INT, FLOAT = TAG + "str", TAG + "null", TAG + "bool", TAG + "int", TAG + "float"
TIMESTAMP, MERGE, MAP, SEQ = TAG + "timestamp", TAG + "merge", TAG + "map", TAG + "seq"


class Issues:
    """Issues found in one file, each located at a node (or line 1, column 1 when there is none)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[SpecIssue] = []
        self._typos: set[tuple[str, str]] = set()
        self._missing: dict[int, tuple[str, str]] = {}

    def add(self, at: Node | None, path: str, message: str) -> None:
        """Record `message` about `path`, located at the start of node `at`."""
        line, col = position(at)
        self.add_at(line, col, path, message)

    def add_at(self, line: int, col: int, path: str, message: str) -> None:
        """Record `message` at a 1-based line and column (kept on one line: values quoted in it may not)."""
        if not message.isprintable():
            message = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in message)
        self.items.append(SpecIssue(self.source, line, col, path, message))

    def unknown(self, key: Node, path: str, word: str, choices: Iterable[str], where: str = "") -> None:
        """Record an unknown key, with a did-you-mean (which then hides "missing" for the key meant)."""
        message = suggest(word, choices, "key", where)
        close = close_match(word, choices)
        if close:
            self._typos.add((path, close))
        self.add(key, path, message)

    def missing(self, node: Node | None, path: str, key: str, fix: str = "") -> None:
        """Record a missing required key (`fix` follows the message)."""
        self._missing[len(self.items)] = (path, key)
        self.add(node, path, f'missing required key "{key}"{fix}')

    def ordered(self) -> list[SpecIssue]:
        """Issues in file order (stable for issues at the same place); a missing key that an unknown key
        was probably meant to be is not repeated."""
        hidden = {i for i, where in self._missing.items() if where in self._typos}
        kept = [issue for i, issue in enumerate(self.items) if i not in hidden]
        return sorted(kept, key=lambda i: (i.line, i.column))

    def __len__(self) -> int:
        return len(self.items)


def position(node: Node | None) -> tuple[int, int]:
    """1-based line and column where `node` starts."""
    mark = node.start_mark if node is not None else None
    if mark is None:
        return 1, 1
    return mark.line + 1, mark.column + 1


def location(source: str, node: Node | None) -> str:
    """`FILE:LINE:COL` of a node, as stored in `Stage.location` and `CheckSpec.location`."""
    line, col = position(node)
    return f"{source}:{line}:{col}"


def compose(text: str, issues: Issues) -> Node | None:
    """The root node of `text`, or None (after recording an issue) when it is not valid YAML or does not
    fit the budget of `runbook.spec.budget` (an alias bomb, too deep)."""
    loader = _Loader(text)
    try:
        node: Node | None = loader.get_single_node()
        return node if node is None or check_document(node, issues) else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        issues.add_at(line, col, "", _syntax_message(text, exc, line, col))
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow: no mark, only a position
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        issues.add_at(line, col, "", f"YAML syntax error: {exc.reason} (#x{char:04x}); remove it")
    except yaml.YAMLError as exc:  # pragma: no cover - every other PyYAML parse error carries a mark
        issues.add_at(1, 1, "", f"YAML syntax error: {str(exc).splitlines()[0]}")
    finally:
        loader.dispose()
    return None


def _syntax_message(text: str, exc: yaml.MarkedYAMLError, line: int, col: int) -> str:
    """A short, parser-independent message; tabs get their own fix."""
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    if "\t" in here[: max(col, len(here) - len(here.lstrip()))] or "tab" in (exc.problem or ""):
        return "tab characters cannot indent YAML; indent with spaces"
    if exc.context == "expected a single document in the stream":
        return "a runbook is a single YAML document; remove this `---` and what follows, or merge it above"
    problem = (exc.problem or "invalid YAML").replace(" in this context", " here")
    if "${" in here and (exc.context or "").startswith("while parsing a flow"):
        return (
            f"YAML syntax error: {problem}; a `${{VAR}}` inside `{{ }}` or `[ ]` must be quoted, "
            f'as in url: "${{DATABASE_URL}}"'
        )
    if exc.context and exc.context_mark is not None and exc.context_mark is not exc.problem_mark:
        return f"YAML syntax error: {problem} ({exc.context} started at line {exc.context_mark.line + 1})"
    if exc.context:
        return f"YAML syntax error: {exc.context}: {problem}"
    return f"YAML syntax error: {problem}"


def join(path: str, key: str) -> str:
    """`stages[0]` + `monitor` -> `stages[0].monitor`."""
    return f"{path}.{key}" if path else key


def mapping_items(
    node: MappingNode, path: str, issues: Issues, _merging: tuple[int, ...] = ()
) -> Iterator[tuple[str, ScalarNode, Node]]:
    """Yield (key, key node, value node) of a mapping; merge keys (`<<: *anchor`) are expanded, explicit
    keys win over merged ones, and duplicate or non-string keys are issues (the later duplicate is skipped).
    """
    seen: dict[str, ScalarNode] = {}
    merged: list[tuple[ScalarNode, Node]] = []
    for key, value in node.value:
        if isinstance(key, ScalarNode) and key.tag == MERGE:
            merged.extend(_merge_sources(value, path, issues, (*_merging, id(node))))
            continue
        if not isinstance(key, ScalarNode) or key.tag not in (STR, INT, BOOL, FLOAT, NULL):
            issues.add(key, path, "keys must be plain text")
            continue
        name = key.value
        if name in seen:
            first = seen[name].start_mark.line + 1
            issues.add(key, path, f'duplicate key "{name}"; it is already set at line {first}')
            continue
        seen[name] = key
        yield name, key, value
    for key, value in merged:
        if key.value not in seen:
            seen[key.value] = key
            yield key.value, key, value


def _merge_sources(
    value: Node, path: str, issues: Issues, merging: tuple[int, ...]
) -> list[tuple[ScalarNode, Node]]:
    """Items merged by `<<:` (a mapping or a list of mappings; earlier mappings win)."""
    sources = value.value if isinstance(value, SequenceNode) else [value]
    out: list[tuple[ScalarNode, Node]] = []
    names: set[str] = set()
    for src in sources:
        if not isinstance(src, MappingNode):
            issues.add(src, path, "`<<` merges a mapping or a list of mappings")
            continue
        if id(src) in merging:
            issues.add(src, path, "`<<` merges a mapping into itself")
            continue
        for name, key, item in mapping_items(src, path, issues, merging):
            if name not in names:
                names.add(name)
                out.append((key, item))
    return out
