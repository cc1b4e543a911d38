"""The operations the audit log records (the `operation` of an event): one list, read by `history --operation`
(its choices) and by tests/unit/test_operations.py, which finds every operation the code records in it. No
imports: the command line reads it when it starts."""

from __future__ import annotations

OPERATIONS = (
    "init",
    "advance",
    "confirm",
    "intent",
    "reconcile",
    "preempted",
    "rollback",
    "auto-rollback",
    "sample-breach",
    "verify-failed",
    "breach",
    "conflict",
    "unlock",
    "transfer",
    "note",
)
"""Every operation an event may carry: the transitions (runbook.state.records.TRANSITIONS), what advance,
rollback, gate and watch record around them, and what a journal synced from a blind rollback may carry."""
