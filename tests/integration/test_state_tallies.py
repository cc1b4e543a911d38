"""Each check's tally in a stage, kept by the statement that stores its sample (no history read per round),
equals what runbook.limits counts from the stored history: over random verdict sequences (hypothesis), after
an upgrade from a release that stored samples without tallies, with a late sample (an older `now()` than the
tally's last: counted again from the history), per stage entry, and for concurrent writers (a gate beside a
watcher). A round's samples are one transaction: a failure stores none of them."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.errors import RunbookError
from runbook.limits import Tally, tally
from runbook.measurement import Verdict
from runbook.state.samples import NewSample
from tests.integration.statehelp import open_store

VERDICTS = list(Verdict)


def sample(check: str, v: Verdict) -> NewSample:
    return NewSample(check, {"check": check, "verdict": v.value}, v, 1)


def history(store: Any, stage: str, check: str, since: dt.datetime | None) -> Tally:
    return tally(store.verdicts("rb", stage, check, since=since))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rounds=st.lists(st.lists(st.sampled_from(VERDICTS), min_size=2, max_size=2), min_size=1, max_size=30))
def test_tallies_equal_the_history_count(pg_url: str, rounds: list[list[Verdict]]) -> None:
    store = open_store(pg_url)
    stage = f"s{abs(hash(str(rounds))) % 10**9}-{threading.get_ident()}"
    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    got: dict[str, Tally] = {}
    for a, b in rounds:
        got = store.record_round("rb", stage, since, [sample("a", a), sample("b", b)])
    assert got["a"] == tally(r[0] for r in rounds) == history(store, stage, "a", since)
    assert got["b"] == tally(r[1] for r in rounds) == history(store, stage, "b", since)


def test_samples_of_an_older_release_are_counted_once(pg_url: str) -> None:
    store = open_store(pg_url)
    for v in ("fail", "error", "fail", "error"):
        store.add_sample("rb", "old", "c", {"v": v}, v, None)  # written before tallies existed
    got = store.record_round("rb", "old", None, [sample("c", Verdict.ERROR)])
    assert got["c"] == Tally(5, 2, 2, 2, Verdict.ERROR) == history(store, "old", "c", None)
    got = store.record_round("rb", "old", None, [sample("c", Verdict.PASS)])
    assert got["c"] == Tally(6, 2, 0, 0, Verdict.PASS) == history(store, "old", "c", None)


def test_a_late_sample_is_counted_from_the_history(pg_url: str) -> None:
    store = open_store(pg_url)
    store.record_round("rb", "late", None, [sample("c", Verdict.FAIL)])
    with psycopg.connect(pg_url, autocommit=True) as conn:  # another writer's tally ran ahead of our now()
        conn.execute("UPDATE runbook.tallies SET last_at = now() + interval '1 hour' WHERE stage = 'late'")
    got = store.record_round("rb", "late", None, [sample("c", Verdict.PASS)])
    assert got["c"] == Tally(2, 1, 0, 0, Verdict.PASS)


def test_each_stage_entry_has_its_own_tally(pg_url: str) -> None:
    store = open_store(pg_url)
    first = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    store.record_round("rb", "again", first, [sample("c", Verdict.FAIL)])
    second = dt.datetime.now(dt.UTC)
    got = store.record_round("rb", "again", second, [sample("c", Verdict.PASS)])
    assert got["c"] == Tally(1, 0, 0, 0, Verdict.PASS)
    assert store.record_round("rb", "again", first, [sample("c", Verdict.PASS)])["c"].failures == 1


def test_one_check_twice_in_a_round_is_counted_twice(pg_url: str) -> None:
    store = open_store(pg_url)
    got = store.record_round("rb", "twice", None, [sample("c", Verdict.FAIL), sample("c", Verdict.PASS)])
    assert got["c"] == Tally(2, 1, 0, 0, Verdict.PASS) == history(store, "twice", "c", None)


def test_concurrent_writers_keep_every_sample(pg_url: str) -> None:
    stores = [open_store(pg_url) for _ in range(4)]
    barrier = threading.Barrier(4)

    def write(store: Any) -> None:
        barrier.wait()
        for i in range(15):
            store.record_round("rb", "busy", None, [sample("c", Verdict.FAIL if i % 3 else Verdict.PASS)])

    threads = [threading.Thread(target=write, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = stores[0].record_round("rb", "busy", None, [sample("c", Verdict.ERROR)])["c"]
    assert final == history(stores[0], "busy", "c", None)
    assert (final.measurements, final.failures) == (61, 40)


def test_a_round_is_one_transaction(pg_url: str) -> None:
    store = open_store(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION public.refuse_c2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.check_name = 'c2' THEN RAISE EXCEPTION 'no c2'; END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_c2 BEFORE INSERT ON runbook.samples FOR EACH ROW"
            " EXECUTE FUNCTION public.refuse_c2()"
        )
    try:
        with pytest.raises((RunbookError, psycopg.Error)):
            store.record_round("rb", "tx", None, [sample("c1", Verdict.PASS), sample("c2", Verdict.PASS)])
        with psycopg.connect(pg_url, autocommit=True) as conn:
            rows = conn.execute("SELECT count(*) FROM runbook.samples WHERE stage = 'tx'").fetchall()
            tallies = conn.execute("SELECT count(*) FROM runbook.tallies WHERE stage = 'tx'").fetchall()
        assert rows == [(0,)] and tallies == [(0,)]
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse_c2 ON runbook.samples")
            conn.execute("DROP FUNCTION public.refuse_c2()")
