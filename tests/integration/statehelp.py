"""Helpers of the state store tests: actors and a store opened on a test database."""

from __future__ import annotations

from runbook.actor import Actor
from runbook.state import NewEvent, StateStore

FLAGS0 = {"PGBOSS_ENABLED": "false", "PGBOSS_FOR_NEW_EVALS": "false"}
FLAGS1 = {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"}


def actor(user: str = "ops", pid: int = 4121) -> Actor:
    """A fixed actor, so messages can be asserted exactly."""
    return Actor(user=user, host="box", pid=pid, ci_url=None)


def open_store(url: str, schema: str = "runbook") -> StateStore:
    """A migrated store on `url`."""
    return StateStore.open(url, schema)


def advance(store: StateStore, runbook: str, to_stage: str, flags: dict[str, str], who: str = "ops") -> int:
    """Transition from the current version; return the new version."""
    cur = store.current(runbook)
    assert cur is not None
    state, _ = store.transition(runbook, cur.version, to_stage, flags, NewEvent("advance", actor(who)))
    return state.version
