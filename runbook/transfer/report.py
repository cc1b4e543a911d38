"""What both transfers (`migrate transfer legacy` and `migrate transfer pgboss`) say and record: a batch's
progress line, the totals, the audited 'transfer' event (finished or failed, `migrate history` shows its
counts), and the one mapping of a batch's database error to the error the user sees."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import psycopg

from runbook import engine
from runbook.errors import RunbookError, UnreachableError
from runbook.meter import Meter
from runbook.session import Session
from runbook.transfer import audit, legacy_sql
from runbook.transfer.batch import Batch, Totals, TransferError
from runbook.units import count


def line(b: Batch, moved: str = "marked") -> str:
    """One batch: `batch 3: claimed 500, inserted 500, already in pg-boss 0, marked 500 (41 ms)`."""
    return (
        f"batch {b.number}: claimed {b.claimed}, inserted {b.inserted}, already in pg-boss {b.already}, "
        f"{moved} {b.marked} ({b.seconds * 1000:.0f} ms)"
    )


class Progress:
    """Each batch as it commits: a bar redrawn in place on a terminal (rows moved, rate, time left), else
    one line per batch (logs, CI). `total` may be a function giving what is left after the first batch: it
    is then asked once, and only when a bar is drawn (a count costs a scan of the pending rows)."""

    def __init__(
        self, session: Session, total: int | Callable[[], int] | None, unit: str, moved: str = "marked"
    ) -> None:
        self.session, self.moved, self.done, self.drawn = session, moved, 0, False
        self.left = total if callable(total) else None
        self.meter = Meter(None if callable(total) else total, unit)

    def batch(self, b: Batch, prefix: str = "") -> None:
        self.done += b.marked
        if self.left is not None and self.session.meter(
            f"{self.done:,} {self.meter.unit} moved, counting the rest"
        ):
            self.meter.total, self.left = self.done + self.left(), None
        if self.session.meter(self.meter.line(self.done)):
            self.drawn = True
            return
        self.left = None
        self.session.progress(prefix + line(b, self.moved))

    def end(self) -> None:
        if self.drawn:
            self.session.meter(None)


def totals(t: Totals) -> dict[str, Any]:
    moved = t.total("marked")
    return {
        "batches": len(t.batches),
        "claimed": t.total("claimed"),
        "inserted": t.total("inserted"),
        "already_present": t.total("already"),
        "moved": moved,
        "seconds": round(t.seconds, 3),
        "rows_per_second": round(moved / t.seconds, 1) if t.seconds > 0 else None,
        "longest_batch_ms": t.longest_ms,
    }


def record(
    session: Session,
    t: Totals,
    *,
    subject: str,
    noun: str,
    data: dict[str, Any],
    error: str | None,
    run: audit.Run | None = None,
) -> None:
    """Append the 'transfer' event (with `run`'s id, then marked audited: runbook.transfer.audit); a
    failure to record never hides the transfer's own failure."""
    counts = totals(t)
    if run is not None:
        data = {**data, "run_id": run.id}
    reason = (
        f"{subject}: moved {count(counts['moved'], noun)} in {count(counts['batches'], 'batch', 'batches')}"
        f" (inserted {counts['inserted']}, already present {counts['already_present']})"
        + (f"; stopped: {error}" if error else "")
    )
    ev = engine.event(
        session, "transfer", from_stage=None, to_stage=None, reason=reason,
        outcome="failed" if error else "done", data={**data, **counts},
    )  # fmt: skip
    if error is None:
        session.store().append_event(session.runbook.name, ev)
    else:
        try:
            session.store().append_event(session.runbook.name, ev)
        except RunbookError:
            return  # unaudited: the next run records it from the ledger
    if run is not None:
        run.finish()


@contextlib.contextmanager
def failures(
    on_error: Callable[[str], None],
    *,
    lost: str,
    lost_hint: str,
    refused_hint: str,
    refused: str = "PostgreSQL refused a batch",
) -> Iterator[None]:
    """Record a failed transfer (`on_error(message)`) and raise what the user sees: our own errors as they
    are, a lost connection as unreachable (exit 5), anything else PostgreSQL refused as a TransferError."""
    try:
        yield
    except RunbookError as exc:
        on_error(exc.message)
        raise
    except psycopg.OperationalError as exc:
        on_error(str(exc).strip())
        raise UnreachableError(f"{lost}: {str(exc).strip()}", hint=lost_hint) from None
    except psycopg.Error as exc:
        reason = misfit(exc) or str(exc).strip()
        on_error(reason)
        raise TransferError(f"{refused}: {reason}", hint=refused_hint) from None


def misfit(exc: psycopg.Error) -> str | None:
    """The text of a row the mapping refused in SQL (legacy_sql.MISFIT), without the cast that raised it."""
    primary = exc.diag.message_primary or ""
    start = primary.find(f'"{legacy_sql.MISFIT}')
    if start < 0:
        return None
    return primary[start + 1 + len(legacy_sql.MISFIT) :].removesuffix('"')
