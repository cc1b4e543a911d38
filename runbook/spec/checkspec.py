"""The check convention: a check is one flat mapping of common keys and its kind's parameters.

    - name: backlog            # common: name, kind, description, timeout and the three limits
      kind: sql
      query: SELECT count(*) FROM "Job" WHERE status = 'PENDING'
      expect: value == 0       # every other key is a parameter of the kind (its params dataclass)

Timeout and limits default from `settings.defaults`. A kind's params dataclass may validate itself in
`__post_init__`; its ValueError becomes an issue at the check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from yaml.nodes import MappingNode, Node

from runbook.model import CheckSpec, Defaults, Timeout
from runbook.spec.convert import Converter, Items
from runbook.spec.leaves import INVALID
from runbook.spec.typehints import close_match, suggest, user_fields
from runbook.spec.yamlnodes import join, location, mapping_items

COMMON: dict[str, Any] = {
    "name": str,
    "kind": str,
    "description": str,
    "timeout": Timeout,
    "failure_limit": int,
    "consecutive_error_limit": int,
    "consecutive_failure_limit": int | None,
}
LIMIT_KEYS = ("failure_limit", "consecutive_error_limit", "consecutive_failure_limit")


class CheckConvention:
    """Converts a check mapping into a `CheckSpec`, given the kinds and the settings' defaults."""

    def __init__(self, kinds: Mapping[str, type], defaults: Defaults) -> None:
        self.kinds = kinds
        self.defaults = defaults

    def __call__(self, conv: Converter, node: Node, path: str) -> Any:
        """The `CheckSpec` at `node`, or INVALID after recording issues."""
        if not isinstance(node, MappingNode):
            conv.issues.add(
                node, path, f"expected a check (a mapping with name, kind, ...), got {conv.got(node)}"
            )
            return INVALID
        items = list(mapping_items(node, path, conv.issues))
        kind, params_cls = self._kind(conv, node, items, path)
        common: dict[str, Any] = {}
        params: Items = []
        ok = params_cls is not None
        unknown = False
        fields = user_fields(params_cls) if params_cls is not None else {}
        for name, key, value in items:
            sub = join(path, name)
            if name in COMMON:
                v = kind if name == "kind" else conv.convert(value, COMMON[name], sub)
                if isinstance(v, int) and not isinstance(v, bool) and name in LIMIT_KEYS and v < 0:
                    conv.issues.add(value, sub, f"must be 0 or more, got {v}")
                    v = INVALID
                ok = ok and v is not INVALID
                common[name] = v
            elif name in fields:
                params.append((name, key, value))
            elif params_cls is not None:
                conv.issues.unknown(key, path, name, [*fields, *COMMON], where=f" for kind {kind}")
                unknown = True
        if "name" not in common:
            conv.issues.missing(node, path, "name")
            ok = False
        elif common["name"] == "":
            conv.issues.add(node, path, "a check needs a non-empty name")
            ok = False
        # With a misspelt parameter the kind's own validation would only repeat the problem.
        built = INVALID if unknown or params_cls is None else conv.construct(params_cls, params, node, path)
        if not ok or built is INVALID:
            return INVALID
        given = {k: common[k] for k in LIMIT_KEYS if k in common}
        return CheckSpec(
            name=common["name"],
            kind=kind,
            params=built,
            limits=dataclasses.replace(self.defaults.limits, **given) if given else self.defaults.limits,
            timeout=common.get("timeout", self.defaults.timeout),
            description=common.get("description", ""),
            location=location(conv.issues.source, node),
        )

    def _kind(self, conv: Converter, node: Node, items: Items, path: str) -> tuple[str, type | None]:
        """The check's kind and its params dataclass (None after an issue)."""
        for name, _, value in items:
            if name != "kind":
                continue
            kind = conv.convert(value, str, join(path, "kind"))
            if kind is INVALID:
                return "", None
            try:
                return kind, self.kinds[kind]
            except KeyError:
                conv.issues.add(value, join(path, "kind"), suggest(kind, self.kinds, "check kind"))
                return kind, None
            except Exception as exc:  # a kind module that fails to import is reported, not raised
                conv.issues.add(value, join(path, "kind"), f"check kind {kind} cannot be loaded: {exc}")
                return kind, None
        for name, key, _ in items:
            if name not in COMMON and close_match(name, ["kind"]):
                conv.issues.unknown(key, path, name, ["kind"])
        conv.issues.missing(node, path, "kind", " (a check kind such as http, sql or command)")
        return "", None
