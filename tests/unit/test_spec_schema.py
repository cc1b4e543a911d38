"""The exported JSON Schema: generated from the model and the kinds, and in agreement with the loader.

`jsonschema` is not a dependency, so a small validator for the keywords the schema uses lives here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook.checks import get_kind
from runbook.model import Duration, Size, doc
from runbook.spec import RegistryKinds, load_runbook
from runbook.spec import json_schema as full_schema

REAL = ("http", "sql", "command")


def json_schema(kinds: dict[str, type] | None = None) -> dict[str, Any]:
    """The schema of the given kinds, by default the three first real kinds (others come and go)."""
    return full_schema(kinds if kinds is not None else {k: get_kind(k).params for k in REAL})


GOOD = Path(__file__).resolve().parent.parent / "data" / "runbooks" / "good"
_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def errors(schema: Any, value: Any, root: dict[str, Any], path: str = "$") -> list[str]:
    """Violations of `schema` by `value` (the subset of draft 2020-12 that json_schema() emits)."""
    if schema is True or schema == {}:
        return []
    if "$ref" in schema:
        found = errors(root["$defs"][schema["$ref"].rsplit("/", 1)[1]], value, root, path)
        return found + errors({k: v for k, v in schema.items() if k != "$ref"}, value, root, path)
    out: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            return [f"{path}: not {schema['type']}"]
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: not {schema['const']}")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: not in {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        out.append(f"{path}: does not match {schema['pattern']}")
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        out.append(f"{path}: below {schema['minimum']}")
    if "anyOf" in schema and all(errors(s, value, root, path) for s in schema["anyOf"]):
        out.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema and sum(not errors(s, value, root, path) for s in schema["oneOf"]) != 1:
        out.append(f"{path}: does not match exactly one of oneOf")
    for sub in schema.get("allOf", []):
        out += errors(sub, value, root, path)
    if "if" in schema and not errors(schema["if"], value, root, path):
        out += errors(schema.get("then", {}), value, root, path)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [f"{path}: missing {k}" for k in schema.get("required", []) if k not in value]
        if len(value) < schema.get("minProperties", 0):
            out.append(f"{path}: too few properties")
        for key, item in value.items():
            if "propertyNames" in schema:
                out += errors(schema["propertyNames"], key, root, f"{path}.{key}")
            if key in props:
                out += errors(props[key], item, root, f"{path}.{key}")
            elif any(re.search(p, key) for p in schema.get("patternProperties", {})):
                continue
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: unexpected {key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += errors(schema["additionalProperties"], item, root, f"{path}.{key}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(f"{path}: too few items")
        if "items" in schema:
            for i, item in enumerate(value):
                out += errors(schema["items"], item, root, f"{path}[{i}]")
    return out


def validate(doc_: Any, schema: dict[str, Any] | None = None) -> list[str]:
    schema = schema or json_schema()
    return errors(schema, doc_, schema)


def test_real_registry_schema_has_every_loadable_kind() -> None:
    schema = full_schema()
    kinds = schema["$defs"]["Check"]["properties"]["kind"]["enum"]
    assert set(REAL) <= set(kinds)
    left_out = schema.get("$comment", "")
    assert all(f"{k} (" in left_out or k in kinds for k in RegistryKinds())


def test_schema_header_and_top_level() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["version", "name", "flags", "stages"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["version"] == {"const": 1, "description": "format version; 1"}
    assert schema["properties"]["stages"]["minItems"] == 1
    json.dumps(schema)  # plain JSON


def test_every_object_is_closed_and_fields_are_documented() -> None:
    defs = json_schema()["$defs"]
    for name in ("Stage", "Settings", "DatabaseSettings", "LegacySettings", "Defaults", "Limits", "Soak"):
        assert defs[name]["additionalProperties"] is False, name
    legacy = defs["LegacySettings"]["properties"]
    assert legacy["table"] == {"type": "string", "description": "legacy job table", "default": "Job"}
    assert legacy["stale_after"]["$ref"] == "#/$defs/Duration"
    assert "location" not in defs["Stage"]["properties"]
    assert defs["Stage"]["required"] == ["id"]
    assert defs["Settings"]["properties"]["flags"] == {
        "anyOf": [
            {"$ref": "#/$defs/DotenvFlags"},
            {"$ref": "#/$defs/PostgresFlags"},
            {"$ref": "#/$defs/CommandFlags"},
            {"enum": ["dotenv", "postgres", "command"]},
        ]
    }
    assert defs["DotenvFlags"]["required"] == ["type"]


def test_checks_are_one_branch_per_kind() -> None:
    check = json_schema()["$defs"]["Check"]
    assert check["required"] == ["name", "kind"]
    kinds = [branch["if"]["properties"]["kind"]["const"] for branch in check["allOf"]]
    assert {"http", "sql", "command"} <= set(kinds)
    assert kinds == sorted(kinds) == check["properties"]["kind"]["enum"]
    sql = next(b["then"] for b in check["allOf"] if b["if"]["properties"]["kind"]["const"] == "sql")
    assert sql["additionalProperties"] is False
    assert {"name", "kind", "timeout", "failure_limit", "query", "expect"} <= set(sql["properties"])


def test_durations_and_sizes() -> None:
    defs = json_schema()["$defs"]
    for good in ["90s", "5m", "1h30m", "250ms", 10, 0.5, "${SOAK}"]:
        assert errors({"$ref": "#/$defs/Duration"}, good, {"$defs": defs}) == [], good
    for bad in ["soon", "5x", -1, True]:
        assert errors({"$ref": "#/$defs/Duration"}, bad, {"$defs": defs}) != [], bad
    for good in ["100MB", "1.5GiB", 512, "2kb"]:
        assert errors({"$ref": "#/$defs/Size"}, good, {"$defs": defs}) == [], good
    for bad in ["lots", -5]:
        assert errors({"$ref": "#/$defs/Size"}, bad, {"$defs": defs}) != [], bad


@pytest.mark.parametrize("name", ["minimal.yaml", "full.yaml"])
def test_good_runbooks_validate(name: str) -> None:
    assert validate(yaml.safe_load((GOOD / name).read_text())) == []


def test_shipped_runbook_loads_and_validates() -> None:
    shipped = Path(__file__).resolve().parents[2] / "runbook" / "data" / "stages.yaml"
    load_runbook(shipped, env={}, time_scale=1.0)
    schema = full_schema()
    assert validate(yaml.safe_load(shipped.read_text()), schema) == []


def test_bad_documents_do_not_validate() -> None:
    base = yaml.safe_load((GOOD / "minimal.yaml").read_text())
    monitor = base["stages"][1]["monitor"][0]
    assert validate({**base, "stage": []}) == ["$: unexpected stage"]
    assert validate({**base, "stages": []}) == ["$.stages: too few items"]
    monitor["qurey"] = "x"
    assert "$.stages[1].monitor[0]: unexpected qurey" in validate(base)
    del monitor["qurey"]
    monitor["failure_limit"] = -1
    assert validate(base) != []
    monitor["failure_limit"] = 1
    base["stages"][0]["soak"] = "3 days"
    assert validate(base) != []


@dataclass(frozen=True)
class FakeParams:
    process: str = field(metadata={"doc": "process name"})
    max: Size = doc("maximum RSS", 0)
    window: Duration = doc("window of the growth", 60.0)


def test_schema_of_passed_kinds() -> None:
    schema = json_schema({"fake": FakeParams})
    check = schema["$defs"]["Check"]
    assert check["properties"]["kind"] == {
        "enum": ["fake"],
        "description": "the check kind; the other keys are its parameters",
    }
    then = check["allOf"][0]["then"]
    assert then["required"] == ["process"]
    assert then["properties"]["max"] == {"$ref": "#/$defs/Size", "description": "maximum RSS"}
    doc_: dict[str, Any] = {"version": 1, "name": "n", "flags": {"F": False}, "stages": [{"id": "a"}]}
    doc_["stages"][0]["monitor"] = [{"name": "m", "kind": "fake", "process": "node", "max": "100MB"}]
    assert validate(doc_, schema) == []
    doc_["stages"][0]["monitor"][0]["kind"] = "other"
    assert validate(doc_, schema) != []
