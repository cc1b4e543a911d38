"""Build a `Runbook` from the root node: the top-level keys, the flag declarations and the stages, in the
order that lets later parts use earlier ones (settings' defaults, declared flags)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runbook.model import CheckSpec, Defaults, FlagDecl, Limits, Runbook, Settings, StageTransfer
from runbook.spec.checkspec import CheckConvention
from runbook.spec.convert import Converter
from runbook.spec.leaves import INVALID
from runbook.spec.stageforms import StageForms, flag_value, positive_interval
from runbook.spec.transferform import TransferForm
from runbook.spec.yamlnodes import NULL, join, mapping_items

TOP_KEYS = ("version", "name", "settings", "flags", "stages")
FLAG_KEYS = ("safe", "description")
FLAG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
VERSION = 1


def build_runbook(root: Node | None, conv: Converter, kinds: Mapping[str, type]) -> Any:
    """The runbook at `root`, or INVALID; every issue is in `conv.issues`."""
    if root is None or (isinstance(root, ScalarNode) and root.tag == NULL):
        conv.issues.add(root, "", "the file is empty; a runbook needs version, name, flags and stages")
        return INVALID
    if not isinstance(root, MappingNode):
        conv.issues.add(root, "", f"expected a mapping with {', '.join(TOP_KEYS)}, got {conv.got(root)}")
        return INVALID
    conv.nonnegative.add(Limits)
    top: dict[str, Node] = {}
    for name, key, value in mapping_items(root, "", conv.issues):
        if name in TOP_KEYS:
            top[name] = value
        elif not name.startswith("x-"):  # `x-...` keys hold YAML anchors for reuse, as in compose files
            conv.issues.unknown(key, "", name, TOP_KEYS)
    version = _version(conv, root, top.get("version"))
    name = _required(conv, root, top, "name", 'add name: "..." (what this migration is)')
    conv.field_hooks[(Defaults, "interval")] = positive_interval
    settings = (
        conv.convert(top["settings"], Settings, "settings") if "settings" in top else conv.empty(Settings)
    )
    defaults = settings.defaults if settings is not INVALID else conv.empty(Defaults)
    conv.special[CheckSpec] = CheckConvention(kinds, defaults)
    flags = _flags(conv, root, top.get("flags"))
    if settings is not INVALID:
        written = _has_key(top.get("settings"), "transfer")
        conv.special[StageTransfer] = TransferForm(
            settings.transfer if written else None, settings.legacy.type_column
        )
    forms = StageForms({f.name for f in flags} if flags is not INVALID else None, defaults)
    forms.install(conv)
    stages = _stages(conv, root, top.get("stages"), forms)
    forms.finish(conv)
    parts = (version, name, settings, flags, stages)
    if len(conv.issues) or any(p is INVALID for p in parts):
        return INVALID
    return Runbook(
        version=version,
        name=name,
        settings=settings,
        flags=flags,
        stages=stages,
        source=conv.issues.source,
        time_scale=conv.time_scale,
    )


def _has_key(node: Node | None, key: str) -> bool:
    """Whether a mapping node writes `key` (settings whose defaults would otherwise hide its absence)."""
    return isinstance(node, MappingNode) and any(
        isinstance(k, ScalarNode) and k.value == key for k, _ in node.value
    )


def _required(conv: Converter, root: Node, top: dict[str, Node], key: str, fix: str) -> Any:
    """Read a required, non-empty top-level string."""
    if key not in top:
        conv.issues.missing(root, "", key, f"; {fix}")
        return INVALID
    value = conv.convert(top[key], str, key)
    if value == "":
        conv.issues.add(top[key], key, f"must not be empty; {fix}")
        return INVALID
    return value


def _version(conv: Converter, root: Node, node: Node | None) -> Any:
    """Read `version:`, which must be the one this loader reads."""
    if node is None:
        conv.issues.missing(root, "", "version", f"; add version: {VERSION}")
        return INVALID
    value = conv.convert(node, int, "version")
    if value is not INVALID and value != VERSION:
        conv.issues.add(node, "version", f"unsupported version {value}; this migrate reads version {VERSION}")
        return INVALID
    return value


def _flags(conv: Converter, root: Node, node: Node | None) -> Any:
    """`flags:` as NAME: SAFE_VALUE or NAME: {safe: VALUE, description: TEXT}."""
    fix = "declare each flag with its safe value, e.g. flags: {PGBOSS_ENABLED: false}"
    if node is None:
        conv.issues.missing(root, "", "flags", f"; {fix}")
        return INVALID
    if not isinstance(node, MappingNode):
        conv.issues.add(node, "flags", f"expected a mapping of flag names, got {conv.got(node)}; {fix}")
        return INVALID
    out: list[Any] = []
    for name, key, value in mapping_items(node, "flags", conv.issues):
        path = join("flags", name)
        if not FLAG_NAME.fullmatch(name):
            conv.issues.add(
                key, "flags", f'flag name "{name}" must be letters, digits, _ . or - (e.g. PGBOSS_ENABLED)'
            )
            out.append(INVALID)
        elif isinstance(value, MappingNode):
            out.append(_flag_decl(conv, name, value, path))
        else:
            safe = flag_value(conv, value, path)
            out.append(INVALID if safe is INVALID else FlagDecl(name=name, safe=safe))
    if not out:
        conv.issues.add(node, "flags", f"declare at least one flag; {fix}")
        return INVALID
    return INVALID if any(f is INVALID for f in out) else tuple(out)


def _flag_decl(conv: Converter, name: str, node: MappingNode, path: str) -> Any:
    """Read the long form of a flag: {safe: VALUE, description: TEXT}."""
    found: dict[str, Any] = {}
    for key_name, key, value in mapping_items(node, path, conv.issues):
        if key_name == "safe":
            found["safe"] = flag_value(conv, value, join(path, "safe"))
        elif key_name == "description":
            found["description"] = conv.convert(value, str, join(path, "description"))
        else:
            conv.issues.unknown(key, path, key_name, FLAG_KEYS)
            found[key_name] = INVALID
    if "safe" not in found:
        conv.issues.missing(node, path, "safe", " (the value of the legacy path, e.g. false)")
        return INVALID
    if any(v is INVALID for v in found.values()):
        return INVALID
    return FlagDecl(name=name, safe=found["safe"], description=found.get("description", ""))


def _stages(conv: Converter, root: Node, node: Node | None, forms: StageForms) -> Any:
    """Read `stages:`, a non-empty list, in order (rules that need earlier stages rely on it)."""
    if node is None:
        conv.issues.missing(root, "", "stages", "; list the stages in order")
        return INVALID
    if not isinstance(node, SequenceNode):
        conv.issues.add(node, "stages", f"expected a list of stages, got {conv.got(node)}")
        return INVALID
    if not node.value:
        conv.issues.add(
            node, "stages", "at least one stage is needed (the first is usually every flag at its safe value)"
        )
        return INVALID
    out = [forms.stage(conv, item, f"stages[{i}]", i) for i, item in enumerate(node.value)]
    return INVALID if any(s is INVALID for s in out) else tuple(out)
