"""The app contract of one runbook: the shipped schemas (runbook.contract) with the runbook's own names.

`GET /api/health` names nothing of the runbook. `GET /api/admin/pgboss-status` does: `flags.<NAME>` for every
flag, `enabled` for the flag that switches pg-boss on, a `queues.<name>` entry and a `<word>_jobs` brief per
queue (the keys `migrate scaffold` writes, runbook.scaffold_names). A runbook that renames a queue or a flag
therefore has another contract than the shipped file's; `schema` builds it, `read_fields` lists what the
runbook's http checks read from the app, and `stale_reads` finds the fields a check reads under names this
runbook's app does not serve (a queue renamed in settings, its status check left as it was). For the shipped
runbook's names `schema` gives the shipped file; for others, descriptions say what the field is, not which
shipped check reads it. Pure: no I/O."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runbook import contract
from runbook.checks import expect as ex
from runbook.errors import UsageError
from runbook.model import CheckSpec, Runbook
from runbook.scaffold_names import AppNames, app_names

STATUS = "pgboss-status"
_SHIPPED_QUEUES = {"import-article": "import_jobs", "evaluation": "evaluation_jobs"}
PHASES = ("preflight", "verify", "soak work", "monitor")


@dataclass(frozen=True)
class Read:
    """A field an http check of the runbook reads from a contract endpoint."""

    where: str
    """`stages.yaml:181:9: increment-2 preflight `status-endpoint-reports-imports``"""
    stage: str
    phase: str
    """One of PHASES."""
    check: str
    endpoint: str
    """The contract schema's name: health or pgboss-status."""
    path: tuple[str | int, ...]
    url: str
    """The check's URL (a path joined to settings.app.url, or a full URL)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """The check's own headers (secrets: never shown)."""

    @property
    def shown(self) -> str:
        return ".".join(str(p) for p in self.path)


def names_of(rb: Runbook) -> AppNames | None:
    """The app names of `rb`, or None when it switches no flag (then the shipped contract stands)."""
    try:
        return app_names(rb)
    except UsageError:
        return None


def schema(rb: Runbook | None, name: str) -> dict[str, Any]:
    """The JSON Schema of endpoint `name` for an app of runbook `rb` (None: the shipped one)."""
    shipped = contract.schema(name)
    names = names_of(rb) if rb is not None and name == STATUS else None
    if rb is None or names is None:
        return shipped
    out = _plain(copy.deepcopy(shipped))
    out["description"] = (
        f"the plan's monitoring endpoint for runbook {rb.name!r}; docs/app-contract.md. Other fields are "
        "allowed and ignored."
    )
    props: dict[str, Any] = out["properties"]
    flags = props["flags"]
    flags["required"] = list(names.flags)
    flags["properties"] = {
        f: {"type": "boolean", "description": "the flag is on" + _role(names, f)} for f in names.flags
    }
    props["enabled"] = {
        "type": "boolean",
        "description": f"{names.enabled_flag} as the running app sees it, true when on",
    }
    kept = {k: v for k, v in props.items() if k not in _SHIPPED_QUEUES.values()}
    briefs = {
        q.status_key: {
            "description": f"counts of the {q.name} queue; null until the queue exists",
            "oneOf": [{"$ref": "#/$defs/jobCounts"}, {"type": "null"}],
        }
        for q in names.queues
    }
    legacy = kept.pop("legacy", None)  # the shipped order: ..., queues, the briefs, legacy
    out["properties"] = {**kept, **briefs, **({"legacy": legacy} if legacy is not None else {})}
    read = {r.path[0] for r in read_fields(rb) if r.endpoint == STATUS and r.path}
    out["required"] = ["enabled", "flags", *(k for k in briefs if k in read)]
    return shipped if _shape(shipped) == _shape(out) and _shipped_names(names) else out


def _shipped_names(names: AppNames) -> bool:
    return {q.name: q.status_key for q in names.queues} == _SHIPPED_QUEUES and names.enabled_flag == (
        "PGBOSS_ENABLED"
    )


def _shape(node: Any) -> Any:
    """`node` without its descriptions."""
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items() if k != "description"}
    return [_shape(v) for v in node] if isinstance(node, list) else node


def _plain(node: Any) -> Any:
    """`node` with every description cut before `; read by` (which shipped check reads the field)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                node[key] = value.split("; read by")[0]
            else:
                _plain(value)
    elif isinstance(node, list):
        for item in node:
            _plain(item)
    return node


def _role(names: AppNames, flag: str) -> str:
    """`: new sync jobs go to pg-boss`, or "" when the flag routes nothing of its own."""
    routed = [q.name for q in names.queues if q.flag == (None if flag == names.enabled_flag else flag)]
    jobs = "new " + ", ".join(routed) + " jobs go to pg-boss" if routed else ""
    if flag == names.enabled_flag:
        return ": pg-boss is switched on" + (f" and {jobs}" if jobs else "")
    if jobs:
        return f": {jobs}"
    return ": every new job goes to pg-boss" if flag == names.all_jobs_flag else ""


def read_fields(rb: Runbook) -> Iterator[Read]:
    """Every field the runbook's http checks (a compare's sides too) read from a contract endpoint."""
    for stage in rb.stages:
        phases = zip(PHASES, (stage.preflight, stage.verify, stage.soak.work, stage.monitor), strict=True)
        for phase, checks in phases:
            for check in checks:
                at = f"{check.location}: " if check.location else ""
                for label, spec in _specs(check, f"`{check.name}`"):
                    where = f"{at}{stage.id} {phase} {label}"
                    for name, path, url, headers in _reads(spec):
                        yield Read(where, stage.id, phase, check.name, name, path, url, headers)


def _specs(check: CheckSpec, label: str) -> Iterator[tuple[str, CheckSpec]]:
    yield label, check
    params = check.params
    for f in dataclasses.fields(params) if dataclasses.is_dataclass(params) else ():
        value = getattr(params, f.name)
        if isinstance(value, CheckSpec):  # compare: its two sides
            yield from _specs(value, f"{label} ({f.name})")


def _reads(check: CheckSpec) -> Iterator[tuple[str, tuple[str | int, ...], str, Mapping[str, str]]]:
    params = check.params
    url = getattr(params, "url", None)
    if check.kind != "http" or not isinstance(url, str):
        return
    known = contract.endpoint(url)
    if known is None:
        return
    name = contract.ENDPOINTS[known]
    value = getattr(params, "value", None)
    paths: list[Sequence[str | int]] = [ex.parse_path(value)] if isinstance(value, str) else []
    paths += [a.parts for a in ex.parse_all(getattr(params, "expect", ()))]
    headers = getattr(params, "headers", None) or {}
    for path in paths:
        yield name, tuple(path), url, headers


def stale_reads(rb: Runbook) -> list[str]:
    """Warnings for fields a check reads under names an app of this runbook does not serve:
    `increment-2 preflight status-endpoint-reports-imports reads import_jobs.failed, but ...`."""
    names = names_of(rb)
    if names is None:
        return []
    out: list[str] = []
    own = schema(rb, STATUS)
    queues = [q.name for q in names.queues]
    for read in read_fields(rb):
        if read.endpoint != STATUS or contract.field(STATUS, read.path) is None:
            continue  # not a field of the shipped contract: the app's own, allowed
        head, named = read.path[0], read.path[1] if len(read.path) > 1 else None
        if head == "flags" and named is not None:  # any name fits the schema's map; the app reports its own
            if named in names.flags:
                continue
            serves = "reports its flags as " + ", ".join(f"flags.{f}" for f in names.flags)
        elif head == "queues" and named is not None:
            if named in queues:
                continue
            serves = "reports " + ", ".join(f"queues.{q}" for q in queues)
        elif contract.field(STATUS, read.path, own) is not None:
            continue
        else:
            serves = "reports its queues as " + ", ".join(f"{q.status_key} ({q.name})" for q in names.queues)
        if head != "flags" and not queues:
            serves = "reports no queue counts: no check of this runbook names a pg-boss queue"
        pick = (
            "read one of those" if head == "flags" or queues else "name the queue in a check (`queue: NAME`)"
        )
        out.append(
            f"{read.where} reads {read.shown}, which an app scaffolded from this runbook does not serve: it "
            f"{serves}; {pick} (`migrate -f {rb.source} schema --contract {STATUS}` prints this runbook's "
            "contract)"
        )
    return out
