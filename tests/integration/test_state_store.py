"""The state store on a real PostgreSQL: migrations, compare-and-set, the append-only log, intents,
samples, confirmations and leases."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import psycopg
import pytest

from runbook.checks.base import Verdict
from runbook.errors import ConflictError, NotReadyError
from runbook.state import SCHEMA_VERSION, NewEvent, StateStore
from runbook.state.schema import installed_version, migrate
from tests.integration.statehelp import FLAGS0, FLAGS1, actor, advance, open_store


def _migrate_in_process(url: str, out: Any) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        out.put(migrate(conn, "runbook"))


def test_migrations_are_idempotent(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert migrate(conn) == list(range(1, SCHEMA_VERSION + 1))
        assert migrate(conn) == []
        assert installed_version(conn) == SCHEMA_VERSION
        rows = conn.execute("SELECT version FROM runbook.schema_version ORDER BY version").fetchall()
    assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))


def test_concurrent_migrations_apply_once(pg_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_migrate_in_process, args=(pg_url, out)) for _ in range(12)]
    for p in procs:
        p.start()
    threads_out: list[list[int]] = []

    def in_thread() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            threads_out.append(migrate(conn, "runbook"))

    threads = [threading.Thread(target=in_thread) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    results = [out.get(timeout=5) for _ in procs] + threads_out
    applied = [r for r in results if r]
    assert applied == [list(range(1, SCHEMA_VERSION + 1))]
    assert results.count([]) == 19  # 20 migrators (12 processes, 8 threads), one did the work


def test_initialize_is_idempotent_and_concurrent(pg_url: str) -> None:
    store = open_store(pg_url)
    states = []

    def init(stage: str) -> None:
        with open_store(pg_url) as s:
            states.append(s.initialize("rb", stage, FLAGS0, actor()))

    threads = [threading.Thread(target=init, args=(f"s{i}",)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({(s.stage, s.version) for s in states}) == 1
    assert states[0].version == 1 and states[0].flags == FLAGS0
    assert [e.operation for e in store.events("rb")] == ["init"]
    assert store.current("other") is None


def test_transition_compare_and_set(pg_url: str) -> None:
    store = open_store(pg_url)
    s0 = store.initialize("rb", "baseline", FLAGS0, actor())
    s1, ev = store.transition(
        "rb", s0.version, "minimal", FLAGS1, NewEvent("advance", actor("alice"), reason="go")
    )
    assert (s1.stage, s1.version, s1.flags, s1.pending_intent) == ("minimal", 2, FLAGS1, None)
    assert s1.entered_at >= s0.entered_at
    assert (ev.from_stage, ev.to_stage, ev.flags_before, ev.flags_after) == (
        "baseline",
        "minimal",
        FLAGS0,
        FLAGS1,
    )
    assert ev.version == 2 and ev.reason == "go"
    with pytest.raises(ConflictError) as err:
        store.transition("rb", s0.version, "evals", FLAGS1, NewEvent("advance", actor("bob")))
    msg = str(err.value)
    assert 'at stage "minimal" (version 2, expected 1)' in msg
    assert "last change: advance by alice@box pid 4121" in msg
    assert store.current("rb") == s1
    assert [e.operation for e in store.events("rb")] == ["init", "advance"]


def test_concurrent_transitions_exactly_one_wins(pg_url: str) -> None:
    store = open_store(pg_url)
    s0 = store.initialize("rb", "a", FLAGS0, actor())
    wins: list[int] = []
    conflicts: list[str] = []

    def go(i: int) -> None:
        with open_store(pg_url) as s:
            try:
                s.transition("rb", s0.version, "b", FLAGS1, NewEvent("advance", actor(f"u{i}")))
                wins.append(i)
            except ConflictError as exc:
                conflicts.append(str(exc))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(conflicts) == 9
    assert all(f"advance by u{wins[0]}@box" in c for c in conflicts)
    assert store.current("rb").version == 2  # type: ignore[union-attr]


def test_transition_without_state_is_not_ready(pg_url: str) -> None:
    store = open_store(pg_url)
    with pytest.raises(NotReadyError, match="no state"):
        store.transition("rb", 1, "b", FLAGS1, NewEvent("advance", actor()))


def test_events_are_append_only(pg_url: str) -> None:
    store = open_store(pg_url)
    store.initialize("rb", "a", FLAGS0, actor())
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with pytest.raises(psycopg.Error, match="append-only: UPDATE"):
            conn.execute("UPDATE runbook.events SET reason = 'x'")
        with pytest.raises(psycopg.Error, match="append-only: DELETE"):
            conn.execute("DELETE FROM runbook.events")
        with pytest.raises(psycopg.Error, match="append-only: TRUNCATE"):
            conn.execute("TRUNCATE runbook.events CASCADE")
        assert conn.execute("SELECT count(*) FROM runbook.events").fetchone() == (1,)


def test_events_query_and_redaction(pg_url: str) -> None:
    store = open_store(pg_url)
    store.initialize("rb", "a", FLAGS0, actor())
    store.initialize("other", "a", FLAGS0, actor())
    verdict = {"check": "db", "verdict": "pass", "inputs": {"url": "postgresql://app:hunter2@db/x"}}
    for i in range(5):
        store.append_event(
            "rb",
            NewEvent(
                "verify" if i % 2 else "note",
                actor(),
                reason=f"n{i} postgresql://app:hunter2@db/x",
                data={"dsn": "postgres://u:hunter2@h/d", "n": i},
                verdicts=[verdict],
            ),
        )
    all_rb = store.events("rb")
    assert [e.operation for e in all_rb] == ["init", "note", "verify", "note", "verify", "note"]
    assert [e.operation for e in store.events("other")] == ["init"]
    assert [e.data["n"] for e in store.events("rb", limit=2)] == [3, 4]
    after = store.events("rb", limit=2, since_id=all_rb[1].id)
    assert [e.id for e in after] == [all_rb[2].id, all_rb[3].id]
    assert [e.data["n"] for e in store.events("rb", operation="verify")] == [1, 3]
    assert store.last_event("rb", ["note"]).data["n"] == 4  # type: ignore[union-attr]
    with psycopg.connect(pg_url) as conn:
        dump = str(conn.execute("SELECT json_agg(e) FROM runbook.events e").fetchone())
    assert "hunter2" not in dump and "app:***@db" in dump and all_rb[1].version == 1


def test_intents(pg_url: str) -> None:
    store = open_store(pg_url)
    s0 = store.initialize("rb", "a", FLAGS0, actor())
    assert store.pending_intent("rb") is None
    intent = store.begin_intent(
        "rb", expected_version=1, operation="advance", to_stage="b", flags_target=FLAGS1, actor=actor("ann")
    )
    got = store.pending_intent("rb")
    assert got == intent
    assert (got.operation, got.from_stage, got.to_stage, got.version) == ("advance", "a", "b", 1)
    assert (got.flags_before, got.flags_target, got.actor.user) == (FLAGS0, FLAGS1, "ann")
    assert store.current("rb").pending_intent == intent.id  # type: ignore[union-attr]
    with pytest.raises(ConflictError, match="unfinished intent"):
        store.begin_intent(
            "rb", expected_version=1, operation="advance", to_stage="b", flags_target={}, actor=actor()
        )
    s1, ev = store.transition("rb", s0.version, "b", FLAGS1, NewEvent("advance", actor("ann")))
    assert ev.intent_id == intent.id and s1.pending_intent is None
    assert store.pending_intent("rb") is None
    # resolve without a transition; a superseding rollback intent keeps the id of the one it replaced
    i2 = store.begin_intent(
        "rb", expected_version=2, operation="advance", to_stage="c", flags_target=FLAGS1, actor=actor()
    )
    i3 = store.begin_intent(
        "rb", expected_version=2, operation="rollback", to_stage="a", flags_target=FLAGS0, actor=actor(),
        supersede=True,
    )  # fmt: skip
    with pytest.raises(ConflictError, match="no longer pending"):
        store.resolve_intent("rb", i2.id, NewEvent("reconcile", actor()))
    done = store.resolve_intent("rb", i3.id, NewEvent("reconcile", actor(), outcome="reverted"))
    assert done.intent_id == i3.id and store.pending_intent("rb") is None
    last_intent = store.events("rb", operation="intent")[-1]
    assert last_intent.data == {"operation": "rollback", "superseded": i2.id}
    assert store.current("rb").version == 2  # type: ignore[union-attr]


def test_samples_and_pruning(pg_url: str) -> None:
    store = open_store(pg_url)
    for i in range(5):
        m = {"check": "mem", "value": 50 + i, "verdict": "pass", "inputs": {"url": "http://u:pw12@x"}}
        store.add_sample("rb", "soak", "mem", m, Verdict.PASS, 50 + i)
    store.add_sample("rb", "soak", "mem", {"value": "n/a"}, "inconclusive", "n/a")
    store.add_sample("rb", "soak", "other", {"value": 1}, "fail", 1)
    got = store.samples("rb", "soak", "mem")
    assert [s.value for s in got] == [50, 51, 52, 53, 54, "n/a"]
    assert got[-1].verdict is Verdict.INCONCLUSIVE
    assert got[0].measurement["inputs"]["url"] == "http://u:***@x"
    assert [s.value for s in store.samples("rb", "soak", "mem", limit=2)] == [54, "n/a"]
    assert store.samples("rb", "soak", "mem", since=got[3].at)[0].value == 53
    assert got[0].as_sample().value == 50
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE runbook.samples SET at = now() - interval '3 days' "
            "WHERE check_name = 'mem' AND value < 52"
        )
        conn.execute("SET enable_seqscan = off")  # tiny table: show that an index bounds both statements
        prune = conn.execute(
            "EXPLAIN DELETE FROM runbook.samples WHERE runbook = 'rb' AND at < now()"
        ).fetchall()
        read = conn.execute(
            "EXPLAIN SELECT * FROM runbook.samples WHERE runbook = 'rb' AND stage = 's' AND check_name = 'c' "
            "AND at >= now() ORDER BY at DESC LIMIT 5"
        ).fetchall()
    for plan in (prune, read):  # the time bound is an index condition, not a filter over every row
        cond = next(r[0] for r in plan if "Index Cond" in r[0])
        assert "runbook = 'rb'" in cond and "at " in cond
    assert store.prune_samples("rb", 86400) == 2
    assert store.prune_samples("rb", 86400) == 0
    assert [s.value for s in store.samples("rb", "soak", "mem")] == [52, 53, 54, "n/a"]


def test_confirmations_per_stage_entry(pg_url: str) -> None:
    store = open_store(pg_url)
    store.initialize("rb", "a", FLAGS0, actor())
    v2 = advance(store, "rb", "b", FLAGS1)
    store.confirm("rb", "b", "dashboards", actor("ann"), v2)
    store.confirm("rb", "b", "dashboards", actor("bob"), v2)
    with pytest.raises(ConflictError, match='now at stage "b"'):
        store.confirm("rb", "a", "x", actor(), 1)
    got = store.confirmations("rb", "b", v2)
    assert [(c.item, c.actor.user, c.version) for c in got] == [("dashboards", "ann", v2)]
    advance(store, "rb", "a", FLAGS0)
    v4 = advance(store, "rb", "b", FLAGS1)
    assert store.confirmations("rb", "b", v4) == []  # a new entry needs new confirmations


def test_leases(pg_url: str) -> None:
    store = open_store(pg_url)
    assert store.acquire_lease("rb", "w1", 60)
    assert not store.acquire_lease("rb", "w2", 60)
    assert store.acquire_lease("rb", "w1", 60)  # re-entrant
    assert store.lease("rb").owner == "w1"  # type: ignore[union-attr]
    assert store.renew_lease("rb", "w1", 60) and not store.renew_lease("rb", "w2", 60)
    assert not store.release_lease("rb", "w2") and store.release_lease("rb", "w1")
    assert store.acquire_lease("rb", "w2", 0.05)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # let it expire without sleeping
        conn.execute("UPDATE runbook.leases SET expires_at = now() - interval '1 second'")
    assert store.lease("rb") is None
    assert store.acquire_lease("rb", "w3", 60) and store.lease("rb").owner == "w3"  # type: ignore[union-attr]
    assert not store.renew_lease("rb", "w2", 60)


def test_two_schemas_and_runbooks_are_separate(pg_url: str) -> None:
    a, b = open_store(pg_url, "state_a"), StateStore.open(pg_url, 'we"ird')
    a.initialize("rb", "x", FLAGS0, actor())
    assert b.current("rb") is None
    b.initialize("rb", "y", FLAGS1, actor())
    assert (a.current("rb").stage, b.current("rb").stage) == ("x", "y")  # type: ignore[union-attr]


def test_from_runbook_names_the_setting(pg_url: str) -> None:
    from runbook.errors import ConfigError
    from runbook.model import DatabaseSettings, Runbook, Settings, Stage, StateSettings

    def rb(db: str | None, state: str | None) -> Runbook:
        settings = Settings(database=DatabaseSettings(url=db), state=StateSettings(url=state, schema="st"))
        return Runbook(1, "rb", settings, (), (Stage("a"),))

    with pytest.raises(ConfigError) as err:
        StateStore.from_runbook(rb(None, None))
    assert err.value.hint == "set settings.state.url (or settings.database.url / DATABASE_URL)"
    with StateStore.from_runbook(rb("postgresql://u:pw@127.0.0.1:1/x", pg_url)) as store:
        assert store.schema == "st" and store.initialize("rb", "a", {}, actor()).version == 1
