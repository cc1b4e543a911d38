"""`plan --check`'s look at the app contract: every field the runbook's http checks will read from the app,
in any stage, against what the app answers now.

A check reads its fields only when its stage comes: an app whose status endpoint lacks
`flags.PGBOSS_FOR_ALL_JOBS`, or serves `enabled` as a string, would pass increments 1 and 2 and fail the
verify of increment 4, days later, after a flip. `problems` calls each contract endpoint the runbook reads
once (GET, read-only, the app's headers, one try of at most 5 s) and explains each field that is absent or
of the wrong type with the runbook's own contract (runbook.contract_runbook). An endpoint that cannot be
reached or does not answer 200 with JSON gives nothing here: the checks that call it report that."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from typing import Any

from runbook import contract, contract_runbook
from runbook.model import Runbook

_TIMEOUT = 5.0


def problems(
    rb: Runbook,
    current: str,
    env: Mapping[str, str] | None = None,
    measured: Collection[tuple[str, str]] = (),
) -> list[str]:
    """`increment-4 verify `app-reports-flag` will read flags.PGBOSS_FOR_ALL_JOBS: GET /api/... has no ...`.
    The reads still to come from stage `current`: its monitors and soak work, and every check of the stages
    after it. The checks in `measured` ((stage id, check name): measured in this run, their lines explain)
    are left out."""
    import httpx

    from runbook.checkrun import CheckRunContext
    from runbook.checks.http import client, resolve_url

    order = {stage.id: i for i, stage in enumerate(rb.stages)}
    now = order.get(current, -1)

    def to_come(r: contract_runbook.Read) -> bool:
        at = order[r.stage]
        return at > now or (at == now and r.phase in ("soak work", "monitor"))

    reads = [r for r in contract_runbook.read_fields(rb) if to_come(r) and (r.stage, r.check) not in measured]
    if not reads:
        return []
    schemas = functools.partial(contract_runbook.schema, rb)
    documents: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
    out: list[str] = []
    with CheckRunContext(rb, env=env) as ctx:
        for read in reads:
            key = (read.url, tuple(sorted(read.headers.items())))
            if key not in documents:
                try:  # one try, no retries: the checks of this run have just waited on a down app
                    full, is_app = resolve_url(ctx, read.url)
                    headers = {**(rb.settings.app.headers if is_app else {}), **read.headers}  # as the check
                    resp = client().get(full, headers=headers, timeout=_TIMEOUT)
                    documents[key] = resp.json() if resp.status_code == 200 else None
                except (httpx.HTTPError, ValueError):  # unreachable, a bad URL, a body that is not JSON
                    documents[key] = None
            document = documents[key]
            if document is None:
                continue
            note = contract.note(read.url, document=document, paths=[read.path], schemas=schemas)
            if note is not None:
                out.append(f"{read.where} will read {read.shown}: {note}")
    return out
