"""Build frozen dataclasses from YAML nodes, driven only by their type hints.

Supported field types: str, int, float, bool, Any, `X | None`, Literal, `tuple[X, ...]`, `Mapping[str, X]`,
nested dataclasses, unions of dataclasses told apart by a `Literal` field (`type:`), and the `Duration` and
`Size` markers of `runbook.model`. Types with a convention of their own (a check, a soak written as a bare
duration) are handled by `special` handlers; single fields by `field_hooks`. Every problem is recorded as
an issue and the converter carries on, so one run reports as many issues as it can.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runbook.spec.leaves import INVALID, LeafConverter
from runbook.spec.typehints import (
    LOCATION,
    NONE,
    discriminator,
    has_location,
    hints,
    marker,
    union_args,
    user_fields,
)
from runbook.spec.yamlnodes import NULL, Issues, join, location, mapping_items

Handler = Callable[["Converter", Node, str], Any]
Items = list[tuple[str, ScalarNode, Node]]


class Converter(LeafConverter):
    """Converts nodes of one file into typed values, recording issues in `issues`."""

    def __init__(self, issues: Issues, env: Mapping[str, str], time_scale: float = 1.0) -> None:
        super().__init__(issues, env, time_scale)
        self.special: dict[Any, Handler] = {}
        self.field_hooks: dict[tuple[type, str], Handler] = {}
        self.nonnegative: set[type] = set()
        """Dataclasses whose int fields must be 0 or more (limits)."""

    # --- entry points ---------------------------------------------------------------------------------

    def convert(self, node: Node, tp: Any, path: str) -> Any:
        """`node` as a value of type `tp`, or INVALID after recording why not."""
        if not isinstance(node, MappingNode | SequenceNode):
            return self._dispatch(node, tp, path)
        if not self.enter(node, path):
            return INVALID
        try:
            return self._dispatch(node, tp, path)
        finally:
            self.leave(node)

    def _dispatch(self, node: Node, tp: Any, path: str) -> Any:
        handler = self.special.get(tp)
        if handler is not None:
            return handler(self, node, path)
        mark = marker(tp)
        if mark == "duration":
            return self.duration(node, path)
        if mark == "timeout":
            return self.duration(node, path, scaled=False)
        if mark == "size":
            return self.size(node, path)
        if mark == "threshold":
            return self.threshold(node, path)
        if mark == "identifier":
            return self.identifier(node, path)
        if get_origin(tp) is Annotated:
            return self._dispatch(node, get_args(tp)[0], path)
        if tp is Any:
            return self.plain_inside(node, path)
        members = union_args(tp)
        if members is not None:
            return self.union(node, members, path)
        origin = get_origin(tp)
        if origin is Literal:
            return self.literal(node, get_args(tp), path)
        if origin is tuple:
            return self.sequence(node, get_args(tp)[0], path)
        if origin is dict or origin is Mapping:
            return self.mapping(node, get_args(tp)[1], path)
        if tp in (str, int, float, bool):
            return self.simple(node, tp, path)
        if dataclasses.is_dataclass(tp):
            return self.dataclass(node, typing.cast(type, tp), path)
        self.issues.add(node, path, f"the loader cannot read fields of type {tp!r} (a bug in this kind)")
        return INVALID

    def identifier(self, node: Node, path: str) -> Any:
        """A PostgreSQL name: 1 to 63 bytes (longer ones PostgreSQL cuts, or refuses in NOTIFY)."""
        value = self.simple(node, str, path)
        if value is INVALID:
            return INVALID
        size = len(str(value).encode("utf-8"))
        if not 1 <= size <= 63 or "\x00" in str(value):
            self.issues.add(
                node, path, f"a PostgreSQL name must be 1 to 63 bytes without NUL, got {size} bytes"
            )
            return INVALID
        return value

    # --- collections ----------------------------------------------------------------------------------

    def union(self, node: Node, members: tuple[Any, ...], path: str) -> Any:
        """`X | None` (null and "" mean None), or a union of dataclasses told apart by a Literal field."""
        rest = tuple(m for m in members if m is not NONE)
        if len(rest) < len(members) and isinstance(node, ScalarNode):
            if node.tag == NULL or node.value == "":
                return None
            if "${" in node.value:
                sc = self.scalar(node, path, "a value")
                if sc is None:
                    return INVALID
                if sc.text == "" or sc.value is None:
                    return None
        if len(rest) == 1:
            return self._dispatch(node, rest[0], path)
        found = discriminator(rest)
        if found is None:
            self.issues.add(node, path, f"the loader cannot read fields of type {members!r} (a bug)")
            return INVALID
        field, table = found
        if isinstance(node, ScalarNode):  # `flags: dotenv` is `flags: {type: dotenv}`
            chosen = self.literal(node, tuple(table), path)
            return INVALID if chosen is INVALID else self.empty(table[chosen])
        if not isinstance(node, MappingNode):
            self.issues.add(node, path, f"expected a mapping with {field}: {' | '.join(table)}, got a list")
            return INVALID
        for name, _, value in mapping_items(node, path, Issues("")):
            if name == field:
                chosen = self.literal(value, tuple(table), join(path, field))
                return INVALID if chosen is INVALID else self.dataclass(node, table[chosen], path)
        self.issues.missing(node, path, field, f" (one of: {', '.join(table)})")
        return INVALID

    def sequence(self, node: Node, item: Any, path: str) -> Any:
        """A tuple from a list; a lone scalar is a one-item list when items are scalars."""
        if isinstance(node, ScalarNode):
            if node.tag == NULL:
                return ()
            if not dataclasses.is_dataclass(item) and item not in self.special:
                value = self.convert(node, item, path)
                return INVALID if value is INVALID else (value,)
        if not isinstance(node, SequenceNode):
            self.issues.add(node, path, f"expected a list, got {self.got(node)}")
            return INVALID
        out = tuple(self.convert(v, item, f"{path}[{i}]") for i, v in enumerate(node.value))
        return INVALID if any(v is INVALID for v in out) else out

    def mapping(self, node: Node, value_type: Any, path: str) -> Any:
        """A dict with string keys."""
        if isinstance(node, ScalarNode) and node.tag == NULL:
            return {}
        if not isinstance(node, MappingNode):
            self.issues.add(node, path, f"expected a mapping (NAME: VALUE), got {self.got(node)}")
            return INVALID
        out = {
            k: self.convert(v, value_type, join(path, k))
            for k, _, v in mapping_items(node, path, self.issues)
        }
        return INVALID if any(v is INVALID for v in out.values()) else out

    # --- dataclasses ----------------------------------------------------------------------------------

    def dataclass(self, node: Node, cls: type, path: str) -> Any:
        """An instance of `cls` from a mapping (null means all defaults)."""
        if isinstance(node, ScalarNode) and node.tag == NULL:
            return self.construct(cls, [], node, path)
        if not isinstance(node, MappingNode):
            self.issues.add(node, path, f"expected a mapping, got {self.got(node)}")
            return INVALID
        items: Items = []
        known = user_fields(cls)
        for name, key, value in mapping_items(node, path, self.issues):
            if name in known:
                items.append((name, key, value))
            else:
                self.issues.unknown(key, path, name, known)
                items.append(("", key, value))
        return self.construct(cls, items, node, path)

    def construct(self, cls: type, items: Items, node: Node, path: str) -> Any:
        """Build `cls` from checked items (name "" marks an unknown key already reported)."""
        try:
            types_ = hints(cls)
        except Exception as exc:  # an annotation that cannot be resolved at run time (TYPE_CHECKING import)
            self.issues.add(node, path, f"the loader cannot read the fields of {cls.__name__}: {exc} (a bug)")
            return INVALID
        fields = user_fields(cls)
        kwargs: dict[str, Any] = {}
        ok = True
        for name, _key, value in items:
            if not name:
                ok = False
                continue
            sub = join(path, name)
            hook = self.field_hooks.get((cls, name))
            v = hook(self, value, sub) if hook else self.convert(value, types_[name], sub)
            if v is not INVALID and cls in self.nonnegative and isinstance(v, int) and v < 0:
                self.issues.add(value, sub, f"must be 0 or more, got {v}")
                v = INVALID
            if v is INVALID:
                ok = False
            else:
                kwargs[name] = v
        given = {n for n, _, _ in items}
        for name, f in fields.items():
            if name in given:
                continue
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.issues.missing(node, path, name)
                ok = False
            elif self.time_scale != 1.0:
                default = self.scaled_default(f, types_[name])
                if default is not INVALID:
                    kwargs[name] = default
        if not ok:
            return INVALID
        if has_location(cls):
            kwargs[LOCATION] = location(self.issues.source, node)
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            self.issues.add(*_blamed(node, path, str(exc)), str(exc))
            return INVALID

    def empty(self, cls: type) -> Any:
        """`cls` with every default (durations scaled), as when its key is absent."""
        return self.construct(cls, [], ScalarNode(NULL, ""), "")

    def scaled_default(self, f: dataclasses.Field[Any], tp: Any) -> Any:
        """The default of a missing field with its durations scaled; INVALID means: use the class default."""
        members = union_args(tp)
        if members is not None and len(members) == 2 and NONE in members:
            tp = members[0] if members[1] is NONE else members[1]
        if marker(tp) == "duration" and isinstance(f.default, int | float):
            return f.default * self.time_scale
        if f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                return self.empty(type(value))
        return INVALID


def _blamed(node: Node, path: str, message: str) -> tuple[Node, str]:
    """Where a constructor's complaint belongs: the key its message starts with (`confidence must be ...`),
    when the mapping has it, else the mapping itself."""
    first = message.split(" ", 1)[0].rstrip(":,")
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == first:
                return value, join(path, first)
    return node, path
