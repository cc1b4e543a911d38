"""The app contract of one runbook: the shipped schemas (runbook.contract) with the runbook's own names.

`GET /api/health` names nothing of the runbook. `GET /api/admin/pgboss-status` does: `flags.<NAME>` for every
flag, `enabled` for the flag that switches pg-boss on, and one `<word>_jobs` brief per queue (the keys
`migrate scaffold` writes, runbook.scaffold_names). A runbook that renames a queue or a flag therefore has
another contract than the shipped file's; `schema` builds it, `read_fields` lists what the runbook's http
checks read from the app, and `stale_reads` finds the fields a check reads under the shipped names that this
runbook's app does not serve (a queue renamed in settings, its status check left as it was). For the shipped
runbook `schema` gives the shipped file exactly (a test holds it to that). Pure: no I/O."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from runbook import contract
from runbook.checks import expect as ex
from runbook.errors import UsageError
from runbook.model import CheckSpec, Runbook
from runbook.scaffold_names import AppNames, app_names

STATUS = "pgboss-status"
_SHIPPED_QUEUE_KEYS = ("import_jobs", "evaluation_jobs")
_SHIPPED_ROLES = {  # the shipped runbook's flags: the shipped schema's descriptions hold while the role does
    "PGBOSS_ENABLED": "pg-boss is switched on and new import-article jobs go to pg-boss",
    "PGBOSS_FOR_NEW_EVALS": "new evaluation jobs go to pg-boss",
    "PGBOSS_FOR_ALL_JOBS": "every new job goes to pg-boss",
}


@dataclass(frozen=True)
class Read:
    """A field an http check of the runbook reads from a contract endpoint."""

    where: str
    """`stages.yaml:181:9: increment-2 preflight `status-endpoint-reports-imports``"""
    stage: str
    check: str
    endpoint: str
    """The contract schema's name: health or pgboss-status."""
    path: tuple[str | int, ...]
    url: str
    """The check's URL (a path joined to settings.app.url, or a full URL)."""

    @property
    def shown(self) -> str:
        return ".".join(str(p) for p in self.path)


def names_of(rb: Runbook) -> AppNames | None:
    """The app names of `rb`, or None when it switches no flag (then the shipped contract stands)."""
    try:
        return app_names(rb)
    except UsageError:
        return None


def schema(rb: Runbook, name: str) -> dict[str, Any]:
    """The JSON Schema of endpoint `name` for an app of runbook `rb`."""
    shipped = contract.schema(name)
    names = names_of(rb)
    if name != STATUS or names is None:
        return shipped
    out = copy.deepcopy(shipped)
    props: dict[str, Any] = out["properties"]
    flags = props["flags"]
    flags["required"] = list(names.flags)
    flags["properties"] = {
        f: shipped["properties"]["flags"]["properties"][f]
        if _SHIPPED_ROLES.get(f) == _role(names, f)
        else {"type": "boolean", "description": f"the flag is on: {_role(names, f)}"}
        for f in names.flags
    }
    if names.enabled_flag != "PGBOSS_ENABLED":
        props["enabled"] = {
            "type": "boolean",
            "description": f"{names.enabled_flag} as the running app sees it, true when on",
        }
    kept = {k: v for k, v in props.items() if k not in _SHIPPED_QUEUE_KEYS}
    queue_keys = {
        q.status_key: shipped["properties"].get(q.status_key)
        or {
            "description": f"counts of the {q.name} queue; null until the queue exists",
            "oneOf": [{"$ref": "#/$defs/jobCounts"}, {"type": "null"}],
        }
        for q in names.queues
    }
    legacy = kept.pop("legacy", None)  # the shipped order: ..., queues, the briefs, legacy
    out["properties"] = {**kept, **queue_keys, **({"legacy": legacy} if legacy is not None else {})}
    read = {r.path[0] for r in read_fields(rb) if r.endpoint == STATUS and r.path}
    out["required"] = ["enabled", "flags", *(k for k in queue_keys if k in read)]
    return out


def _role(names: AppNames, flag: str) -> str:
    routed = [q.name for q in names.queues if q.flag == (None if flag == names.enabled_flag else flag)]
    jobs = "new " + ", ".join(routed) + " jobs go to pg-boss" if routed else ""
    if flag == names.enabled_flag:
        return "pg-boss is switched on" + (f" and {jobs}" if jobs else "")
    if jobs:
        return jobs
    return "every new job goes to pg-boss" if flag == names.all_jobs_flag else "a flag of the runbook"


def read_fields(rb: Runbook) -> Iterator[Read]:
    """Every field the runbook's http checks read (expect and value) from a contract endpoint."""
    for stage in rb.stages:
        phases = (
            ("preflight", stage.preflight),
            ("verify", stage.verify),
            ("soak work", stage.soak.work),
            ("monitor", stage.monitor),
        )
        for phase, checks in phases:
            for check in checks:
                at = f"{check.location}: " if check.location else ""
                where = f"{at}{stage.id} {phase} `{check.name}`"
                yield from (Read(where, stage.id, check.name, *r) for r in _reads(check))


def _reads(check: CheckSpec) -> Iterator[tuple[str, tuple[str | int, ...], str]]:
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
    for path in paths:
        yield name, tuple(path), url


def stale_reads(rb: Runbook) -> list[str]:
    """Warnings for fields a check reads under the shipped names that an app of this runbook does not serve:
    `increment-2 preflight status-endpoint-reports-imports reads import_jobs.failed, but ...`."""
    names = names_of(rb)
    if names is None:
        return []
    out: list[str] = []
    own = schema(rb, STATUS)
    for read in read_fields(rb):
        if read.endpoint != STATUS or contract.field(STATUS, read.path) is None:
            continue  # not a field of the shipped contract: the app's own, allowed
        is_flag = read.path[0] == "flags" and len(read.path) > 1
        if (read.path[1] in names.flags) if is_flag else contract.field(STATUS, read.path, own) is not None:
            continue  # flags.<NAME>: any name fits the schema's map, but the app reports the runbook's only
        if is_flag:
            serves = "reports its flags as " + ", ".join(f"flags.{f}" for f in names.flags)
        elif names.queues:
            serves = "reports its queues as " + ", ".join(f"{q.status_key} ({q.name})" for q in names.queues)
        else:
            serves = "reports no queue counts: no check of this runbook names a pg-boss queue"
        out.append(
            f"{read.where} reads {read.shown}, which an app scaffolded from this runbook does not serve: it "
            f"{serves}; read one of those (`migrate schema --contract {STATUS}` prints this runbook's "
            "contract)"
        )
    return out
