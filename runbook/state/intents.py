"""Intents (a flip recorded before the flags are touched, for crash safety) and confirmations of manual items.

An intent is an `intent` event plus a pointer to it in the state row (`pending_intent`), written in one
transaction. The transition that completes the flip, or `resolve_intent`, clears the pointer in the same
transaction as its own event; a command that finds a pending intent knows a flip may be half done.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runbook.actor import Actor
from runbook.errors import ConflictError
from runbook.state.aborts import AbortsMixin
from runbook.state.base import EVENT_COLUMNS, event_from_row
from runbook.state.records import Confirmation, Event, Intent, NewEvent


def intent_from_event(ev: Event) -> Intent:
    """Return the intent an `intent` event describes."""
    return Intent(
        id=ev.id,
        runbook=ev.runbook,
        operation=str(ev.data.get("operation") or ""),
        from_stage=ev.from_stage,
        to_stage=ev.to_stage,
        flags_before=dict(ev.flags_before or {}),
        flags_target=dict(ev.flags_after or {}),
        version=ev.version or 0,
        actor=ev.actor,
        at=ev.at,
        reason=ev.reason,
    )


class IntentsMixin(AbortsMixin):
    """Intents and confirmations (an intent may be refused by an abort request)."""

    def begin_intent(
        self,
        runbook: str,
        *,
        expected_version: int,
        operation: str,
        to_stage: str | None,
        flags_target: Mapping[str, str],
        actor: Actor,
        flags_before: Mapping[str, str] | None = None,
        reason: str | None = None,
        data: Mapping[str, Any] | None = None,
        supersede: bool = False,
        unless_aborted_since: int | None = None,
    ) -> Intent:
        """Record that `operation` is about to flip the flags to `flags_target`; return the pending intent.

        `flags_before` defaults to the state's desired flags (pass the backend's actual values when known).
        Raises ConflictError if the version moved, or if another intent is pending and `supersede` is false
        (a rollback supersedes; the superseded intent's id is kept in this event's data). With
        `unless_aborted_since`, raises PreemptedError when a rollback asked to abort after that request id."""
        with self.tx() as conn:
            cur = self.lock_row(conn, runbook)
            self.refuse_if_aborted(conn, runbook, unless_aborted_since)
            if cur.version != expected_version:
                raise self.conflict(conn, cur, expected_version)
            extra: dict[str, Any] = {**(data or {}), "operation": operation}
            if cur.pending_intent is not None:
                if not supersede:
                    raise ConflictError(
                        f'runbook "{runbook}" has an unfinished intent (event {cur.pending_intent}): a flip '
                        "was started and never completed",
                        hint="let the next command reconcile it (`migrate status` shows it), or roll back",
                    )
                extra["superseded"] = cur.pending_intent
            ev = NewEvent(
                "intent",
                actor,
                reason=reason,
                from_stage=cur.stage,
                to_stage=to_stage,
                flags_before=flags_before if flags_before is not None else cur.flags,
                flags_after=flags_target,
                data=extra,
            )
            stored = self.insert_event(conn, runbook, ev, version=cur.version)
            assert stored is not None
            conn.execute(
                self.sql("UPDATE {state} SET pending_intent = %s, updated_at = now() WHERE runbook = %s"),
                (stored.id, runbook),
            )
        return intent_from_event(stored)

    def pending_intent(self, runbook: str) -> Intent | None:
        """Return the unfinished intent of `runbook`, if any."""
        with self.tx() as conn:
            row = conn.execute(
                self.sql(
                    "SELECT " + EVENT_COLUMNS + " FROM {events} WHERE id = "
                    "(SELECT pending_intent FROM {state} WHERE runbook = %s)"
                ),
                (runbook,),
            ).fetchone()
        return intent_from_event(event_from_row(row)) if row else None

    def resolve_intent(self, runbook: str, intent_id: int, event: NewEvent) -> Event:
        """Close a pending intent without a transition (reverted, or found already done); append `event`."""
        with self.tx() as conn:
            cur = self.lock_row(conn, runbook)
            if cur.pending_intent != intent_id:
                raise ConflictError(
                    f'intent {intent_id} of "{runbook}" is no longer pending (resolved or replaced)',
                    hint="run the command again; `migrate history` shows what happened",
                )
            stored = self.insert_event(conn, runbook, event, version=cur.version, intent_id=intent_id)
            conn.execute(
                self.sql("UPDATE {state} SET pending_intent = NULL, updated_at = now() WHERE runbook = %s"),
                (runbook,),
            )
        assert stored is not None
        return stored

    def confirm(
        self,
        runbook: str,
        stage: str,
        item: str,
        actor: Actor,
        entered_version: int,
        *,
        note: str | None = None,
    ) -> Event:
        """Record that `actor` confirmed manual `item` of `stage` during the stage entry `entered_version`.

        Raises ConflictError when the runbook is no longer in that stage entry."""
        with self.tx() as conn:
            cur = self.lock_row(conn, runbook)
            if cur.stage != stage or cur.version != entered_version:
                raise ConflictError(
                    f'cannot confirm "{item}" for stage "{stage}" (version {entered_version}): '
                    f'"{runbook}" is now at stage "{cur.stage}" (version {cur.version})',
                    hint="check `migrate status` and confirm again for the current stage",
                )
            ev = NewEvent("confirm", actor, reason=note, to_stage=stage, outcome="ok", data={"item": item})
            stored = self.insert_event(conn, runbook, ev, version=entered_version)
        assert stored is not None
        return stored

    def confirmations(self, runbook: str, stage: str, since_version: int) -> list[Confirmation]:
        """List the items confirmed for `stage` in entries since `since_version` (first one per item)."""
        with self.tx() as conn:
            rows = conn.execute(
                self.sql(
                    "SELECT " + EVENT_COLUMNS + " FROM {events} WHERE runbook = %s AND operation = 'confirm' "
                    "AND to_stage = %s AND version >= %s ORDER BY id"
                ),
                (runbook, stage, since_version),
            ).fetchall()
        out: dict[str, Confirmation] = {}
        for ev in map(event_from_row, rows):
            item = str(ev.data.get("item"))
            out.setdefault(item, Confirmation(item, stage, ev.actor, ev.at, ev.version or 0, ev.id))
        return list(out.values())
