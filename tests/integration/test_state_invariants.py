"""Invariants PostgreSQL keeps for the state store (schema version 3): one transition per state version of a
runbook (a unique index), known verdict values (CHECKs); journal sync cannot break them; an upgrade from
version 2 marks the transitions already in the log."""

from __future__ import annotations

from pathlib import Path
from typing import LiteralString

import psycopg
import pytest
from psycopg.types.json import Jsonb

from runbook.state import NewEvent, StateStore, schema
from runbook.state.journal import append_journal
from runbook.state.journalsync import sync_report
from tests.integration.statehelp import FLAGS0, FLAGS1, actor, advance, open_store


def transitions(store: StateStore, runbook: str = "rb") -> list[tuple[int, str]]:
    """(version, operation) of the events marked as transitions, in order."""
    with store.tx() as conn:
        rows = conn.execute(
            store.sql(
                "SELECT version, operation FROM {events} WHERE runbook = %s AND transition ORDER BY id"
            ),
            (runbook,),
        ).fetchall()
    return [(int(v), str(op)) for v, op in rows]


def check_refusing(store: StateStore, statement: LiteralString, *params: object) -> str:
    """Run `statement` ({events}, {samples}... = the store's tables); return the CHECK that refused it."""
    with pytest.raises(psycopg.errors.CheckViolation) as refused, store.tx() as conn:
        conn.execute(store.sql(statement), params)
    return str(refused.value.diag.constraint_name)


def started(pg_url: str) -> StateStore:
    """A store with runbook `rb` initialized at stage a (version 1) and advanced to b (version 2)."""
    store = open_store(pg_url)
    store.initialize("rb", "a", FLAGS0, actor())
    assert advance(store, "rb", "b", FLAGS1) == 2
    return store


def test_a_second_transition_to_the_same_version_is_refused(pg_url: str) -> None:
    store = started(pg_url)
    assert transitions(store) == [(1, "init"), (2, "advance")]
    with pytest.raises(psycopg.errors.UniqueViolation) as refused, store.tx() as conn:
        store.insert_event(conn, "rb", NewEvent("advance", actor()), version=2, transition=True)
    assert refused.value.diag.constraint_name == "events_one_transition_per_version"
    # Events that do not move the state may carry the version they were recorded at, any number of them.
    store.append_event("rb", NewEvent("note", actor(), reason="one"))
    store.append_event("rb", NewEvent("note", actor(), reason="two"))
    # The same version of another runbook is another transition.
    store.initialize("other", "a", FLAGS0, actor())
    assert transitions(store) == [(1, "init"), (2, "advance")]
    assert transitions(store, "other") == [(1, "init")]


def test_a_transition_has_a_version(pg_url: str) -> None:
    store = started(pg_url)
    with pytest.raises(psycopg.errors.CheckViolation) as refused, store.tx() as conn:
        store.insert_event(conn, "rb", NewEvent("advance", actor()), version=None, transition=True)
    assert refused.value.diag.constraint_name == "events_transition_has_version"


@pytest.mark.parametrize(
    "verdicts",
    [[{"verdict": "ok"}], [{"verdict": "pass"}, {"verdict": "PASS"}], [{"verdict": 1}], {"verdict": "pass"}],
)
def test_an_event_with_an_unknown_verdict_is_refused(pg_url: str, verdicts: object) -> None:
    insert = (
        "INSERT INTO {events} (uuid, runbook, actor, host, pid, operation, verdicts) "
        "VALUES (gen_random_uuid(), 'rb', 'ops', 'box', 1, 'verify', %s)"
    )
    assert check_refusing(started(pg_url), insert, Jsonb(verdicts)) == "events_verdicts_known"


def test_known_verdicts_are_stored(pg_url: str) -> None:
    store = started(pg_url)
    verdicts = [{"verdict": v, "check": v} for v in ("pass", "fail", "inconclusive", "error")]
    stored = store.append_event("rb", NewEvent("verify", actor(), verdicts=verdicts))
    assert [v["verdict"] for v in stored.verdicts] == ["pass", "fail", "inconclusive", "error"]


def test_a_sample_with_an_unknown_verdict_is_refused(pg_url: str) -> None:
    insert = (
        "INSERT INTO {samples} (runbook, stage, check_name, verdict, value, measurement) "
        "VALUES ('rb', 'b', 'backlog', 'maybe', 1, '{{}}')"
    )
    assert check_refusing(started(pg_url), insert) == "samples_verdict_known"


def test_a_journaled_rollback_synced_twice_is_one_transition(pg_url: str, tmp_path: Path) -> None:
    store = started(pg_url)
    journal = tmp_path / "journal.jsonl"
    rollback = NewEvent(
        "rollback", actor(), reason="db down", to_stage="a", from_stage="b", flags_after=FLAGS0
    )
    append_journal(journal, "rb", rollback, expected_version=2)
    # A second rollback journaled in a row chains on the version the first one produces (3).
    again = NewEvent(
        "rollback", actor("bob"), reason="db down", to_stage="a", from_stage="b", flags_after=FLAGS0
    )
    append_journal(journal, "rb", again, expected_version=2)
    text = journal.read_text()

    first = sync_report(store, journal)
    assert (first.synced, first.rejected) == (2, 0)
    journal.write_text(text)  # the same lines again (a crash before the journal was emptied)
    second = sync_report(store, journal)
    assert (second.synced, second.rejected) == (0, 0)

    assert transitions(store) == [(1, "init"), (2, "advance"), (3, "rollback"), (4, "rollback")]
    state = store.current("rb")
    assert state is not None and (state.stage, state.version) == ("a", 4)
    with store.tx() as conn:
        notes = conn.execute(
            store.sql(
                "SELECT actor, version, transition, data->'journal'->>'applied' FROM {events} "
                "WHERE runbook = 'rb' AND operation = 'rollback' ORDER BY id"
            )
        ).fetchall()
    assert [tuple(n) for n in notes] == [("ops", 3, True, "true"), ("bob", 4, True, "true")]


def test_upgrade_from_version_2_marks_the_transitions_in_the_log(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:2])
    monkeypatch.setattr(schema, "LATEST", 2)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert schema.migrate(conn) == [1, 2]
        for op, version in [("init", 1), ("note", 1), ("advance", 2), ("verify", 2), ("note", None)]:
            conn.execute(
                "INSERT INTO runbook.events (uuid, runbook, actor, host, pid, operation, version) "
                "VALUES (gen_random_uuid(), 'rb', 'ops', 'box', 1, %s, %s)",
                (op, version),
            )
        conn.execute(
            "INSERT INTO runbook.samples (runbook, stage, check_name, verdict, value, measurement) "
            "VALUES ('rb', 'b', 'backlog', 'pass', 1, '{}')"
        )
        monkeypatch.undo()
        assert schema.migrate(conn) == [3, 4]
        rows = conn.execute("SELECT operation, transition FROM runbook.events ORDER BY id").fetchall()
        assert [tuple(r) for r in rows] == [
            ("init", True),
            ("note", False),
            ("advance", True),
            ("verify", False),
            ("note", False),
        ]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute("UPDATE runbook.events SET transition = false")  # still append-only
