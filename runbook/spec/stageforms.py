"""The format rules of stages beyond their types: shorthands (`soak: 24h`, `manual: [text]`), flag values,
stage ids, and the checks between stages (unique ids and check names, `set` only declared flags,
`rollback_to` an earlier stage). Defaults for `verify_deadline` and `interval` come from settings.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from runbook.model import CheckSpec, Defaults, ManualItem, Soak, Stage
from runbook.spec.convert import Converter
from runbook.spec.leaves import INVALID
from runbook.spec.scalars import render
from runbook.spec.typehints import close_match, suggest
from runbook.spec.yamlnodes import NULL, join, mapping_items

STAGE_ID = re.compile(r"[a-z][a-z0-9_-]*")
MANUAL_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


def flag_value(conv: Converter, node: Node, path: str) -> Any:
    """A flag value as text: YAML true/false/3 become "true"/"false"/"3"."""
    sc = conv.scalar(node, path, "a flag value (text, a number or true/false)")
    if sc is None:
        return INVALID
    v = sc.value
    if sc.expanded is not None or isinstance(v, str):
        return sc.text
    if v is None:
        conv.issues.add(node, path, 'a flag value cannot be empty; write "" for an empty value')
        return INVALID
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def slug(text: str) -> str:
    """`Check the dashboard!` -> `check-the-dashboard` (at most 40 characters, cut at a dash)."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(s) > 40:
        s = s[:41].rsplit("-", 1)[0] if "-" in s[:41] else s[:40]
    return s


class StageForms:
    """Installs the stage rules into a converter and runs the checks that need every stage."""

    def __init__(self, flag_names: set[str] | None, defaults: Defaults) -> None:
        self.flag_names = flag_names
        self.defaults = defaults
        self.index = 0
        self.ids: dict[int, str] = {}
        self.id_lines: dict[str, int] = {}
        self.rollbacks: list[tuple[int, str, Node, str]] = []

    def install(self, conv: Converter) -> None:
        """Register the shorthands and field rules."""
        conv.special[Soak] = self.soak
        conv.special[ManualItem] = self.manual_item
        conv.field_hooks[(Stage, "id")] = self.stage_id
        conv.field_hooks[(Stage, "set")] = self.set_flags
        conv.field_hooks[(Stage, "rollback_to")] = self.rollback_to
        conv.field_hooks[(Stage, "manual")] = self.manual
        conv.field_hooks[(Stage, "interval")] = functools.partial(positive_interval, optional=True)

    def stage(self, conv: Converter, node: Node, path: str, index: int) -> Any:
        """Stage number `index`, with defaults applied and check names checked."""
        self.index = index
        stage = conv.convert(node, Stage, path)
        if stage is INVALID:
            return INVALID
        self._unique_check_names(conv, stage, path)
        return dataclasses.replace(
            stage,
            verify_deadline=self.defaults.verify_deadline
            if stage.verify_deadline is None
            else stage.verify_deadline,
            interval=self.defaults.interval if stage.interval is None else stage.interval,
        )

    def finish(self, conv: Converter) -> None:
        """Check every `rollback_to` now that all stage ids are known."""
        order = [self.ids[i] for i in sorted(self.ids)]
        for index, target, node, path in self.rollbacks:
            earlier = [self.ids[i] for i in sorted(self.ids) if i < index]
            if target in earlier:
                continue
            if target in order:
                conv.issues.add(
                    node,
                    path,
                    f'rollback_to must point to an earlier stage; "{target}" is not before this one',
                )
            else:
                conv.issues.add(node, path, suggest(target, order, "stage"))

    # --- field rules ----------------------------------------------------------------------------------

    def stage_id(self, conv: Converter, node: Node, path: str) -> Any:
        """Check a stage id: a slug, unique in the file."""
        value = conv.convert(node, str, path)
        if value is INVALID:
            return INVALID
        if not STAGE_ID.fullmatch(value):
            conv.issues.add(
                node, path, f"stage id {render(value)} must match ^{STAGE_ID.pattern}$ (e.g. enable-imports)"
            )
            return INVALID
        if value in self.id_lines:
            conv.issues.add(
                node, path, f'duplicate stage id "{value}"; it is already used at line {self.id_lines[value]}'
            )
            return INVALID
        self.id_lines[value] = node.start_mark.line + 1
        self.ids[self.index] = value
        return value

    def set_flags(self, conv: Converter, node: Node, path: str) -> Any:
        """Read `set:` as FLAG: VALUE of declared flags, values as text."""
        if isinstance(node, ScalarNode) and node.tag == NULL:
            return {}
        if not isinstance(node, MappingNode):
            conv.issues.add(node, path, f"expected a mapping FLAG: VALUE, got {conv.got(node)}")
            return INVALID
        out: dict[str, str] = {}
        ok = True
        for name, key, value in mapping_items(node, path, conv.issues):
            if self.flag_names is not None and name not in self.flag_names:
                close = close_match(name, self.flag_names)
                fix = (
                    f'did you mean "{close}"? Otherwise declare it under flags:'
                    if close
                    else "declare it under flags:"
                )
                conv.issues.add(key, path, f'undeclared flag "{name}"; {fix}')
                ok = False
            v = flag_value(conv, value, join(path, name))
            ok = ok and v is not INVALID
            out[name] = v
        return out if ok else INVALID

    def rollback_to(self, conv: Converter, node: Node, path: str) -> Any:
        """Read `rollback_to`; whether it names an earlier stage is checked in `finish`."""
        value = conv.convert(node, str | None, path)
        if isinstance(value, str):
            self.rollbacks.append((self.index, value, node, path))
        return value

    def soak(self, conv: Converter, node: Node, path: str) -> Any:
        """Read `soak:` as a bare duration or as {duration, work}."""
        if isinstance(node, ScalarNode) and node.tag != NULL:
            duration = conv.duration(node, path)
            return INVALID if duration is INVALID else Soak(duration=duration)
        return conv.dataclass(node, Soak, path)

    def manual_item(self, conv: Converter, node: Node, path: str) -> Any:
        """Read a manual item: plain text (its id is a slug of it) or {id, text}."""
        if isinstance(node, ScalarNode) and node.tag != NULL:
            text = conv.convert(node, str, path)
            return INVALID if text is INVALID else ManualItem(id=slug(text), text=text)
        item = conv.dataclass(node, ManualItem, path)
        if item is INVALID:
            return INVALID
        if not item.text:
            conv.issues.add(node, path, 'a manual item needs "text" (what the person confirms)')
            return INVALID
        if item.id and not MANUAL_ID.fullmatch(item.id):
            at = next((v for k, v in node.value if k.value == "id"), node)
            conv.issues.add(
                at, join(path, "id"), f"manual id {render(item.id)} must match ^[a-z0-9][a-z0-9_-]*$"
            )
            return INVALID
        return item if item.id else dataclasses.replace(item, id=slug(item.text))

    def manual(self, conv: Converter, node: Node, path: str) -> Any:
        """Read `manual:` items and check their ids are unique in the stage."""
        items = conv.convert(node, tuple[ManualItem, ...], path)
        if items is INVALID:
            return INVALID
        seen: set[str] = set()
        nodes = node.value if isinstance(node.value, list) else [node]
        out = []
        for i, item in enumerate(items):
            if not item.id:
                item = dataclasses.replace(item, id=f"item-{i + 1}")
            if item.id in seen:
                conv.issues.add(
                    nodes[i], f"{path}[{i}]", f'duplicate manual id "{item.id}"; give this item its own id:'
                )
                return INVALID
            seen.add(item.id)
            out.append(item)
        return tuple(out)

    # --- cross checks ---------------------------------------------------------------------------------

    def _unique_check_names(self, conv: Converter, stage: Stage, path: str) -> None:
        """Report a check name used twice in one stage (samples and history are keyed by it)."""
        lists: list[tuple[str, tuple[CheckSpec, ...]]] = [
            ("preflight", stage.preflight),
            ("verify", stage.verify),
            ("soak.work", stage.soak.work),
            ("monitor", stage.monitor),
        ]
        seen: dict[str, int] = {}
        for field, checks in lists:
            for i, check in enumerate(checks):
                _, line, col = check.location.rsplit(":", 2)
                if check.name in seen:
                    conv.issues.add_at(
                        int(line),
                        int(col),
                        f"{path}.{field}[{i}]",
                        f'duplicate check name "{check.name}" (also at line {seen[check.name]}); '
                        "check names must be unique within a stage",
                    )
                else:
                    seen[check.name] = int(line)


def positive_interval(conv: Converter, node: Node, path: str, *, optional: bool = False) -> Any:
    """A sampling interval (a stage's, `optional`: null for the default; settings.defaults'): more than 0,
    or a watcher would spin."""
    if optional and isinstance(node, ScalarNode) and node.tag == NULL:
        return None
    seconds = conv.duration(node, path)
    if seconds is not INVALID and seconds <= 0:
        conv.issues.add(node, path, f"must be more than 0, got {render(node.value)}; e.g. interval: 30s")
        return INVALID
    return seconds
