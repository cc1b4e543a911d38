"""A session's local journal: where it lives (beside the runbook file, not the current folder) and its sync
on the first connection to the state database, which never blocks the command.

What the sync could not do is said on the session's progress channel as warnings: lines quarantined in
`<journal>.rejected` (with the reason there), a journal that cannot be read, and blind rollbacks the state
refused (then the flags are put at their safe values, the first stage's).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from runbook import units
from runbook.errors import RunbookError

if TYPE_CHECKING:
    from runbook.session import Session
    from runbook.state import StateStore
    from runbook.state.journalsync import SyncReport


def journal_path(session: Session) -> Path:
    """settings.state.journal, a relative path taken from the runbook file's folder."""
    from runbook.flags.backends import base_dir

    path = Path(os.path.expanduser(session.runbook.settings.state.journal))
    return path if path.is_absolute() else base_dir(session.runbook) / path


def sync(session: Session, store: StateStore) -> int:
    """Sync the session's journal into `store`; return how many events were inserted. Warns, never raises,
    except when the state database is lost (UnreachableError, as any other use of the store)."""
    from runbook.state.journalsync import sync_report

    path = session.journal_path()
    try:
        report = sync_report(store, path, session.runbook)
    except OSError as exc:
        session.progress(
            f"warning: cannot sync the local journal {path}: {exc.strerror or exc}; "
            "check that this user may read and write it (settings.state.journal)"
        )
        return 0
    _warn_rejected(session, path, report)
    if report.conflicts:
        _safe_flags(session, len(report.conflicts))
    return report.synced


def _warn_rejected(session: Session, path: Path, report: SyncReport) -> None:
    if not report.rejected:
        return
    for number, reason in report.reasons:
        session.progress(f"warning: journal line {number} not synced: {reason}")
    more = report.rejected - len(report.reasons)
    session.progress(
        f"warning: {units.count(report.rejected, 'journal line')} of {path} not synced"
        + (f" ({more} more not listed)" if more else "")
        + f"; kept with the reasons in {report.rejected_path}"
    )


def _safe_flags(session: Session, count: int) -> None:
    """Blind rollbacks not applied: the flags end at their safe values whatever the state says."""
    from runbook import engine

    safe = session.runbook.safe_flags()
    session.progress(
        f"warning: {units.count(count, 'rollback')} made while the state database was unreachable "
        f"{'conflicts' if count == 1 else 'conflict'} with the state "
        "(see `migrate history`); not applied, flags kept at their safe values"
    )
    try:
        actual = session.backend().read(list(safe))
    except RunbookError:  # the write below reports the backend's error
        actual = {}
    if actual == safe:
        return
    f = engine.flip(session, safe)
    if f.error is not None:
        session.progress(f"warning: could not set the flags to their safe values: {f.error.message}")
