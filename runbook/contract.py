"""The app contract: what runbook reads from the app, as the JSON Schemas shipped in runbook/data/contract.

`GET /api/health` and `GET /api/admin/pgboss-status` are described by `health.schema.json` and
`pgboss-status.schema.json` (draft 2020-12; docs/app-contract.md explains them). The check kinds that read
the app (http, memory, uptime) call `note` when they cannot read a field or get a 404/405, so that the
failure names the contract field and points at `migrate scaffold`; a URL or a path the contract does not
know gives None (the check's own message stands). `problems` lists a payload's contract problems with a
small walker (type, required, properties, additionalProperties, oneOf, local $ref, minimum, date-time),
so no JSON Schema library is needed at runtime.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

DOC = "docs/app-contract.md"
HINT = "`migrate scaffold` writes these endpoints"
ENDPOINTS = {"/api/health": "health", "/api/admin/pgboss-status": "pgboss-status"}
"""Contract path -> schema name (runbook/data/contract/<name>.schema.json)."""

_ARTICLE = {
    "boolean": "a boolean (true or false)",
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


@cache
def schema(name: str) -> dict[str, Any]:
    """The shipped schema `name` (`health` or `pgboss-status`)."""
    text = resources.files("runbook.data").joinpath("contract", f"{name}.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def endpoint(url: str) -> str | None:
    """The contract path a check URL calls (`/api/health`), or None for a URL the contract does not name."""
    try:
        path = urllib.parse.urlsplit(url).path.rstrip("/")
    except ValueError:  # not a URL Python can parse (`http://[::1/x`): the check's own call says so
        return None
    for known in ENDPOINTS:
        if path == known or path.endswith(known):
            return known
    return None


def json_type(value: Any) -> str:
    """The JSON type of a decoded value: boolean, integer, number, string, array, object or null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list | tuple) else "object"


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for step in ref[2:].split("/"):
            target = target[step]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _types(node: dict[str, Any], root: dict[str, Any]) -> list[str]:
    node = _resolve(node, root)
    if "oneOf" in node:
        return [t for branch in node["oneOf"] for t in _types(branch, root)]
    t = node.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def _fits(value: Any, types: Sequence[str]) -> bool:
    kind = json_type(value)
    return not types or kind in types or (kind == "integer" and "number" in types)


def _child(node: dict[str, Any], root: dict[str, Any], key: str | int) -> dict[str, Any] | None:
    """The schema of `key` inside `node` (a property, an additional property or a oneOf branch's)."""
    node = _resolve(node, root)
    for branch in node.get("oneOf", []):
        found = _child(branch, root, key)
        if found is not None:
            return found
    if isinstance(key, str) and key in node.get("properties", {}):
        return _resolve(node["properties"][key], root)
    extra = node.get("additionalProperties")
    return _resolve(extra, root) if isinstance(key, str) and isinstance(extra, dict) else None


def field(name: str, parts: Sequence[str | int], root: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The schema of the field at `parts` in schema `name` (or in `root`, a runbook's own schema of it:
    runbook.contract_runbook), or None when the contract does not name it."""
    root = schema(name) if root is None else root
    node: dict[str, Any] | None = root
    for part in parts:
        node = _child(node, root, part) if node is not None else None
    return node if parts else None


def summary(node: dict[str, Any], root: dict[str, Any]) -> str:
    """`an integer, bytes of resident memory (process.memoryUsage().rss)`: its type and meaning."""
    types = _types(node, root)
    what = " or ".join(_ARTICLE.get(t, t) for t in types) or "any value"
    meaning = str(node.get("description", "")).split(";")[0].strip()
    return f"{what}, {meaning}" if meaning else what


def _timestamp_ok(value: str) -> bool:
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return at.tzinfo is not None


def note(
    url: str,
    method: str = "GET",
    *,
    status: int | None = None,
    document: Any = None,
    paths: Iterable[Sequence[str | int]] = (),
    schemas: Callable[[str], dict[str, Any]] = schema,
) -> str | None:
    """Explain the first contract problem a check met: the endpoint missing (404/405), or a field it reads
    absent or of the wrong type. None when the URL or the fields are not the contract's, or all is well.
    `schemas` gives the schema of an endpoint (the runbook's own: runbook.contract_runbook), called only
    when there are fields to explain."""
    where = endpoint(url)
    if where is None:
        return None
    lead = f"{method} {where}"
    if status in (404, 405):
        return f"the app does not serve {lead} (the app contract; {DOC}); {HINT}"
    paths = list(paths)
    root = schemas(ENDPOINTS[where]) if paths else {}
    for parts in paths:
        problem = _path_problem(root, document, parts)
        if problem is not None:
            return f"{lead} {problem}; {DOC}); {HINT}"
    return None


def tail(note: str | None) -> str:
    """`; <note>` to append to a check's explanation, or "" when there is no note."""
    return f"; {note}" if note else ""


def _path_problem(root: dict[str, Any], document: Any, parts: Sequence[str | int]) -> str | None:
    nodes: list[dict[str, Any]] = []
    node: dict[str, Any] | None = root
    for part in parts:
        node = _child(node, root, part) if node is not None else None
        if node is None:  # a path the contract does not know
            return None
        nodes.append(node)
    value = document
    for i, part in enumerate(parts):
        node, shown = nodes[i], ".".join(str(p) for p in parts[: i + 1])
        if not isinstance(value, dict):  # the parent's type, checked one step earlier, allows no fields
            return None
        if part not in value:
            return f"has no `{'.'.join(str(p) for p in parts)}` (the app contract: {summary(nodes[-1], root)}"
        value = value[part]
        has, says = f"has `{shown}` = {json.dumps(value)[:60]}", f"(the app contract: {summary(node, root)}"
        if not _fits(value, _types(node, root)):
            return f"{has}, {_ARTICLE[json_type(value)]} {says}"
        if node.get("format") == "date-time" and isinstance(value, str) and not _timestamp_ok(value):
            return f"{has}, not an ISO 8601 time with a zone {says}"
    return None


def problems(name: str, document: Any) -> list[str]:
    """Every contract problem of a payload of endpoint schema `name`: `memory.rss: missing (an integer,
    ...)`, `enabled: "yes" is a string, expected a boolean (true or false)`. Empty when it conforms."""
    root = schema(name)
    out: list[str] = []
    _walk(root, root, document, "", out)
    return out


def _walk(node: dict[str, Any], root: dict[str, Any], value: Any, at: str, out: list[str]) -> None:
    node = _resolve(node, root)
    here = at or "(the document)"
    if "oneOf" in node:  # walk the branch of the value's type (an object, or null)
        branches = [b for b in node["oneOf"] if _fits(value, _types(b, root))]
        if len(branches) != 1:
            out.append(f"{here}: {json.dumps(value)[:60]} is not {summary(node, root)}")
            return
        node = {**node, **_resolve(branches[0], root)}
        del node["oneOf"]
    types = _types(node, root)
    if not _fits(value, types):
        kind = _ARTICLE[json_type(value)]
        out.append(f"{here}: {json.dumps(value)[:60]} is {kind}, expected {summary(node, root)}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float | dict | str):
        return
    if isinstance(value, int | float):
        if "minimum" in node and value < node["minimum"]:
            out.append(f"{here}: {value} is below the minimum {node['minimum']}")
        return
    if isinstance(value, str):
        if node.get("format") == "date-time" and not _timestamp_ok(value):
            out.append(f"{here}: {json.dumps(value)[:60]} is not an ISO 8601 time with a zone")
        return
    prefix = f"{at}." if at else ""
    props = node.get("properties", {})
    for key in node.get("required", []):
        if key not in value:
            out.append(f"{prefix}{key}: missing ({summary(_resolve(props.get(key, {}), root), root)})")
    extra = node.get("additionalProperties")
    for key, item in value.items():
        sub = props.get(key, extra if isinstance(extra, dict) else None)
        if sub is not None:
            _walk(sub, root, item, f"{prefix}{key}", out)
