"""A stage's `transfer:` action: the same `migrate transfer legacy` (runbook.commands.transfer), run by
`advance` after the flip and the stage's verify, before the stage is recorded; then its own verify, measured
in the database: no claimable row is left for the mapping, and pg-boss holds one new job (carrying
settings.transfer.legacy_id_key, created since the transfer began) for every row it inserted. `preview` is
the dry run `plan` and `advance` show before anything is flipped (a bad mapping blocks there).

A rerun after a crash is safe: committed batches' rows are no longer claimable, a batch cut short rolled
back, and deterministic job ids make a reinsert a no-op."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from runbook import db
from runbook.errors import RunbookError
from runbook.exitcodes import ExitCode
from runbook.measurement import Measurement, Verdict
from runbook.model import Stage, StageTransfer
from runbook.session import Session


@dataclass
class ActionResult:
    spec: StageTransfer
    would_move: int | None = None
    """Dry run: claimable rows now."""
    totals: dict[str, Any] = field(default_factory=dict)
    backlog: dict[str, int] = field(default_factory=dict)
    """The queue's created + retry jobs before and after (measured; live workers take some meanwhile)."""
    verify: list[Measurement] = field(default_factory=list)
    error: str | None = None
    hint: str | None = None
    exit_code: ExitCode = ExitCode.OK

    @property
    def failed(self) -> bool:
        return self.error is not None or any(m.verdict is not Verdict.PASS for m in self.verify)

    def refused(self, exc: RunbookError) -> None:
        """The transfer stopped on `exc`: keep its message, hint and exit code (the caller keeps the flip)."""
        self.error, self.hint, self.exit_code = exc.message, exc.hint, exc.exit_code

    def failure(self) -> str:
        """What went wrong and what to do: the flip stays, what is left can be moved again."""
        failing = self.error or "; ".join(m.explanation for m in self.verify if m.verdict is not Verdict.PASS)
        return (
            f"the transfer to queue {self.spec.queue} failed: {failing}; the stage was entered and its flags "
            f"stay (its verify passed); move what is left with `{self.rerun()}`"
        )

    def rerun(self) -> str:
        """The command that moves what is left by hand."""
        s = self.spec
        parts = ["migrate transfer legacy", f"--queue {s.queue}", f"--batch {s.batch}"]
        parts += [f"--workers {s.workers}"] if s.workers != 1 else []
        parts += [f"--type {s.type}"] if s.type else []
        parts += [f"--filter {_shell(s.filter)}"] if s.filter else []
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        s = self.spec
        return {
            "queue": s.queue,
            "type": s.type,
            "filter": s.filter,
            "batch": s.batch,
            "workers": s.workers,
            "enabled": s.enabled,
            "would_move": self.would_move,
            "totals": self.totals,
            "backlog": self.backlog,
            "verify": [m.to_json() for m in self.verify],
            "error": self.error,
            "hint": self.hint,
            "rerun": self.rerun(),
        }


def _shell(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _source(spec: StageTransfer) -> str:
    where = spec.location.rsplit(":", 2)
    return f"transfer.filter (line {where[1]})" if len(where) == 3 else "transfer.filter"


def preview(session: Session, stage: Stage) -> ActionResult | None:
    """The dry run of the stage's transfer (None: it has none, or it is off); errors are kept, not raised."""
    result = _begun(stage)
    if result is None:
        return None
    try:
        result.would_move = _claimable(session, result.spec)
    except RunbookError as exc:
        result.refused(exc)
    return result


def run(session: Session, stage: Stage) -> ActionResult | None:
    """Move the stage's backlog and verify it; a failure is returned (the caller keeps the flip)."""
    from runbook.commands.transfer import transfer_legacy

    result = _begun(stage)
    if result is None:
        return None
    spec = result.spec
    try:
        started, result.backlog["before"] = _pgboss(session, spec.queue, None)
        moved = transfer_legacy(
            session,
            queue=spec.queue,
            type_value=spec.type,
            batch=spec.batch,
            row_filter=spec.filter,
            filter_source=_source(spec),
            workers=spec.workers,
        )
        result.totals = moved.totals
        left = _claimable(session, spec)
        counted, result.backlog["after"] = _pgboss(session, spec.queue, started)
    except RunbookError as exc:
        result.refused(exc)
        return result
    inserted = int(result.totals.get("inserted", 0))
    key = session.runbook.settings.transfer.legacy_id_key
    result.verify = [
        _measure(
            "transfer-legacy-drained",
            left,
            left == 0,
            f"{left} claimable legacy rows left for queue {spec.queue} (expected 0)",
        ),
        _measure(
            "transfer-jobs-in-pgboss",
            counted,
            counted == inserted,
            f"{counted} jobs with data.{key} created in queue {spec.queue} since the transfer began; "
            f"it inserted {inserted}",
        ),
    ]
    if result.failed:
        result.exit_code = ExitCode.NOT_READY
    return result


def _begun(stage: Stage) -> ActionResult | None:
    """The result of the stage's transfer, not yet run; None when the stage has none or it is off."""
    spec = stage.transfer
    return ActionResult(spec) if spec is not None and spec.enabled else None


def _measure(name: str, value: int, ok: bool, explanation: str) -> Measurement:
    return Measurement(
        Verdict.PASS if ok else Verdict.FAIL, value, explanation, unit="rows", check=name, kind="transfer"
    )


def _claimable(session: Session, spec: StageTransfer) -> int:
    from runbook.commands.transfer import transfer_legacy

    dry = transfer_legacy(
        session,
        queue=spec.queue,
        type_value=spec.type,
        batch=spec.batch,
        dry_run=True,
        row_filter=spec.filter,
        filter_source=_source(spec),
    )
    return int(dry.totals.get("claimable", 0))


def _pgboss(session: Session, queue: str, since: dt.datetime | None) -> tuple[Any, int]:
    """(the database's now(), or the count of jobs moved since `since`; the queue's backlog)."""
    s = session.runbook.settings
    job = sql.Identifier(s.pgboss.schema, "job")
    with db.connect(
        s.pgboss.url or s.database.url,
        what="the pg-boss database",
        read_only=True,
        connect_timeout=s.database.connect_timeout,
        autocommit=True,
        application_name="runbook-transfer",
    ) as conn:
        backlog = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE name = %s AND state IN ('created', 'retry')").format(job),
            (queue,),
        ).fetchone()
        if since is None:
            first = conn.execute("SELECT now()").fetchone()
        else:
            first = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE name = %s AND created_on >= %s AND data ? %s").format(
                    job
                ),
                (queue, since, s.transfer.legacy_id_key),
            ).fetchone()
    assert backlog is not None and first is not None
    return first[0], int(backlog[0])
