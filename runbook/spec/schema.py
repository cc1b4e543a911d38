"""Generate the JSON Schema (draft 2020-12) of the runbook format from the same dataclasses the loader reads.

Each field's `doc` metadata becomes its description; every object has `additionalProperties: false`;
durations and sizes are a number or a human string; a check is an object whose allowed keys depend on its
`kind` (one `if`/`then` per kind). Any string may also be a `${VAR}` reference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args, get_origin

from runbook.model import CheckSpec, Limits, ManualItem, Soak, Stage
from runbook.spec.build import FLAG_NAME
from runbook.spec.checkspec import COMMON, LIMIT_KEYS
from runbook.spec.stageforms import STAGE_ID
from runbook.spec.typehints import discriminator, hints, marker, union_args, user_fields

DURATION = r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d|w)\s*)+$"
SIZE = r"^\s*\d+(\.\d+)?\s*([kKmMgGtT][iI]?[bB]|[bB])?\s*$"
SCHEMA_ID = "https://json-schema.org/draft/2020-12/schema"
_NONE = type(None)

_COMMON_DOCS = {
    "name": "unique within the stage; names the check in output, history and samples",
    "kind": "the check kind; the other keys are its parameters",
    "description": "what the check proves, for people",
    "timeout": "how long one measurement may take (default: settings.defaults.timeout)",
}


def interpolable(description: str, *forms: dict[str, Any]) -> dict[str, Any]:
    """A value given in one of `forms`, or as a ${VAR} reference (read when the runbook is loaded)."""
    return {"description": description, "anyOf": [*forms, {"$ref": "#/$defs/Interpolated"}]}


class SchemaGen:
    """Turns type hints into schemas, collecting named dataclass schemas in `defs`."""

    def __init__(self, kinds: Mapping[str, type]) -> None:
        self.kinds = kinds
        self.defs: dict[str, Any] = {
            "Interpolated": {"type": "string", "pattern": r"\$\{", "description": "a ${VAR} reference"},
            "Duration": interpolable(
                "seconds, or a human duration: 90s, 5m, 24h, 2d, 1h30m",
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": DURATION},
            ),
            "Size": interpolable(
                "bytes, or a human size: 100MB, 1.5GiB",
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": SIZE},
            ),
            "Threshold": interpolable(
                "a number in the metric's unit, or a duration (1d) on a duration metric, a size (100MB) on a "
                "size metric",
                {"type": "number"},
                {"type": "string", "pattern": DURATION},
                {"type": "string", "pattern": SIZE},
            ),
            "FlagValue": {
                "description": "a flag value; true/false and numbers are written as text",
                "type": ["string", "boolean", "number"],
            },
        }
        self.overrides: dict[tuple[type, str], Any] = {}
        self.overrides = {
            (Stage, "soak"): {"anyOf": [{"$ref": "#/$defs/Duration"}, self.ref(Soak)]},
            (Stage, "set"): {"type": "object", "additionalProperties": {"$ref": "#/$defs/FlagValue"}},
            (Stage, "id"): {"type": "string", "pattern": f"^{STAGE_ID.pattern}$"},
            (Stage, "manual"): {
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, self.ref(ManualItem)]},
            },
        }

    def of(self, tp: Any) -> dict[str, Any]:
        """The schema of one type hint."""
        if tp is CheckSpec:
            return self.check_ref()
        mark = marker(tp)
        if mark in ("duration", "size", "timeout"):
            return {"$ref": "#/$defs/Size" if mark == "size" else "#/$defs/Duration"}
        if mark == "identifier":
            return {"type": "string", "minLength": 1, "maxLength": 63}
        if mark == "threshold":
            return {"$ref": "#/$defs/Threshold"}
        if get_origin(tp) is Annotated:
            return self.of(get_args(tp)[0])
        if tp is Any:
            return {}
        members = union_args(tp)
        if members is not None:
            rest = [m for m in members if m is not _NONE]
            inner = self.of(rest[0]) if len(rest) == 1 else self.tagged_union(tuple(rest))
            return {"anyOf": [inner, {"type": "null"}]} if len(rest) < len(members) else inner
        origin = get_origin(tp)
        if origin is Literal:
            return {"anyOf": [{"enum": list(get_args(tp))}, {"$ref": "#/$defs/Interpolated"}]}
        if origin is tuple:
            item = get_args(tp)[0]
            array = {"type": "array", "items": self.of(item)}
            scalar = not dataclasses.is_dataclass(item) and item is not CheckSpec
            return {"anyOf": [array, self.of(item)]} if scalar else array
        if origin is dict or origin is Mapping:
            return {"type": "object", "additionalProperties": self.of(get_args(tp)[1])}
        simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
        if tp in simple:
            base = {"type": simple[tp]}
            return base if tp is str else {"anyOf": [base, {"$ref": "#/$defs/Interpolated"}]}
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self.ref(tp)
        return {}

    def tagged_union(self, members: tuple[Any, ...]) -> dict[str, Any]:
        """Dataclasses told apart by a Literal field, or that field's value alone (`flags: dotenv`).
        `anyOf`, not `oneOf`: with `type: ${VAR}` several members may match."""
        found = discriminator(members)
        shorthand = [{"enum": list(found[1])}] if found else []
        return {"anyOf": [self.ref(m, union=True) for m in members] + shorthand}

    def ref(self, cls: type, *, union: bool = False) -> dict[str, Any]:
        """A `$ref` to the schema of dataclass `cls` (generated once)."""
        name = cls.__name__
        if name not in self.defs:
            self.defs[name] = {}
            found = discriminator((cls,)) if union else None
            self.defs[name] = self.object(cls, require=found[0] if found else None)
        return {"$ref": f"#/$defs/{name}"}

    def object(self, cls: type, require: str | None = None) -> dict[str, Any]:
        """The object schema of a dataclass: its fields, required ones, no other keys."""
        types_ = hints(cls)
        props: dict[str, Any] = {}
        required: list[str] = [require] if require else []
        for name, f in user_fields(cls).items():
            override = self.overrides.get((cls, name))
            props[name] = dict(override) if override is not None else self.of(types_[name])
            if cls is Limits:
                props[name] = _nonnegative(props[name])
            _describe(props[name], f)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(name)
        out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
        if required:
            out["required"] = required
        if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
            out["description"] = cls.__doc__.strip().splitlines()[0]
        return out

    def check_ref(self) -> dict[str, Any]:
        """A `$ref` to the check schema: common keys, then one `if kind == K then K's keys` per kind."""
        if "Check" not in self.defs:
            self.defs["Check"] = {}
            common = {name: self.of(tp) for name, tp in COMMON.items()}
            common["kind"] = {"enum": sorted(self.kinds)}
            common.update({k: _nonnegative(common[k]) for k in LIMIT_KEYS})
            limit_docs = {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(Limits)}
            for name, schema in common.items():
                text = _COMMON_DOCS.get(name) or limit_docs.get(name)
                if text:
                    schema["description"] = text
            branches = []
            for kind in sorted(self.kinds):
                params = self.object(self.kinds[kind])
                then = {
                    "properties": {**{k: {} for k in common}, **params["properties"]},
                    "additionalProperties": False,
                }
                if "required" in params:
                    then["required"] = params["required"]
                cond = {"properties": {"kind": {"const": kind}}, "required": ["kind"]}
                branches.append({"if": cond, "then": then})
            self.defs["Check"] = {
                "type": "object",
                "description": "a check: name, kind and the kind's parameters as flat keys",
                "required": ["name", "kind"],
                "properties": common,
                "allOf": branches,
            }
        return {"$ref": "#/$defs/Check"}


def _nonnegative(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of an optional or interpolatable integer, with `minimum: 0` on the integer."""
    if schema.get("type") == "integer":
        return {**schema, "minimum": 0}
    if "anyOf" in schema:
        return {**schema, "anyOf": [_nonnegative(s) for s in schema["anyOf"]]}
    return schema


def _describe(schema: dict[str, Any], f: dataclasses.Field[Any]) -> None:
    """Add the field's `doc` and a JSON-able default to its schema."""
    text = f.metadata.get("doc")
    if text:
        schema["description"] = text
    default = list(f.default) if isinstance(f.default, tuple) else f.default
    if (default is None or isinstance(default, str | int | float | bool | list)) and "$ref" not in schema:
        schema["default"] = default


def runbook_schema(kinds: Mapping[str, type]) -> dict[str, Any]:
    """The whole format: top-level keys, settings, flags, stages and checks of the given kinds."""
    from runbook.model import Settings

    gen = SchemaGen(kinds)
    flag_decl = {
        "type": "object",
        "additionalProperties": False,
        "required": ["safe"],
        "properties": {
            "safe": {"$ref": "#/$defs/FlagValue", "description": "the value of the legacy path (rollback)"},
            "description": {"type": "string", "description": "what the flag switches"},
        },
    }
    return {
        "$schema": SCHEMA_ID,
        "title": "runbook (stages.yaml)",
        "description": "A staged, flag-gated migration: flags with safe values and ordered, measured stages.",
        "type": "object",
        "additionalProperties": False,
        "required": ["version", "name", "flags", "stages"],
        "patternProperties": {"^x-": {"description": "ignored; holds YAML anchors to reuse (`<<: *name`)"}},
        "properties": {
            "version": {"const": 1, "description": "format version; 1"},
            "name": {"type": "string", "minLength": 1, "description": "what this migration is"},
            "settings": gen.ref(Settings),
            "flags": {
                "type": "object",
                "description": "every flag the runbook owns: NAME: SAFE_VALUE or NAME: {safe, description}",
                "minProperties": 1,
                "propertyNames": {"pattern": f"^{FLAG_NAME.pattern}$"},
                "additionalProperties": {"anyOf": [{"$ref": "#/$defs/FlagValue"}, flag_decl]},
            },
            "stages": {
                "type": "array",
                "description": "the stages in order; the first is usually every flag at its safe value",
                "minItems": 1,
                "items": gen.ref(Stage),
            },
        },
        "$defs": gen.defs,
    }
