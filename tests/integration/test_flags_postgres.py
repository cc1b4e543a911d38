"""The postgres flag backend on a real server: table created, one transaction, NOTIFY to a listener."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest

from runbook.errors import ConfigError, FlagWriteError, UnreachableError
from runbook.flags.postgres import PostgresFlagBackend


def test_write_creates_the_table_and_reads_back(pg_url: str) -> None:
    backend = PostgresFlagBackend(pg_url, schema="app_flags", table="flags")
    assert backend.read(["PGBOSS_ENABLED"]) == {"PGBOSS_ENABLED": None}  # no table yet: nothing set
    backend.write({"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"}, actor="ops@box pid 1")
    assert backend.read(["PGBOSS_ENABLED", "PGBOSS_FOR_NEW_EVALS", "X"]) == {
        "PGBOSS_ENABLED": "true",
        "PGBOSS_FOR_NEW_EVALS": "false",
        "X": None,
    }
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT name, value, updated_by FROM app_flags.flags ORDER BY name").fetchall()
        first = conn.execute(
            "SELECT updated_at FROM app_flags.flags WHERE name = 'PGBOSS_ENABLED'"
        ).fetchone()
    assert rows == [
        ("PGBOSS_ENABLED", "true", "ops@box pid 1"),
        ("PGBOSS_FOR_NEW_EVALS", "false", "ops@box pid 1"),
    ]
    backend.write({"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "true"}, actor="ann@box pid 2")
    with psycopg.connect(pg_url) as conn:
        again = {
            r[0]: r[1:] for r in conn.execute("SELECT name, updated_by, updated_at FROM app_flags.flags")
        }
    assert again["PGBOSS_ENABLED"] == ("ops@box pid 1", first[0])  # type: ignore[index]  # unchanged value
    assert again["PGBOSS_FOR_NEW_EVALS"][0] == "ann@box pid 2"
    assert backend.describe().endswith("app_flags.flags (NOTIFY runbook_flags)")


def test_listener_receives_the_payload(pg_url: str) -> None:
    backend = PostgresFlagBackend(pg_url, channel="flags_changed")
    with psycopg.connect(pg_url, autocommit=True) as listener:
        listener.execute("LISTEN flags_changed")
        backend.write({"PGBOSS_ENABLED": "false"}, actor="watcher@box pid 9")
        notes = list(listener.notifies(timeout=10, stop_after=1))
    assert len(notes) == 1 and notes[0].channel == "flags_changed"
    assert json.loads(notes[0].payload) == {"flags": {"PGBOSS_ENABLED": "false"}, "by": "watcher@box pid 9"}


def test_a_failed_write_changes_nothing(pg_url: str) -> None:
    backend = PostgresFlagBackend(pg_url)
    backend.write({"A": "1"})
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a constraint makes the second row fail
        conn.execute("ALTER TABLE runbook.flags ADD CONSTRAINT short CHECK (length(value) < 5)")
    with pytest.raises(FlagWriteError, match=r"writing runbook.flags failed"):
        backend.write({"A": "2", "B": "too long"})
    assert backend.read(["A", "B"]) == {"A": "1", "B": None}


def test_a_trigger_that_rewrites_is_a_read_back_mismatch(pg_url: str) -> None:
    backend = PostgresFlagBackend(pg_url)
    backend.write({"A": "false"})
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION pin() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.value := 'false'; "
            "RETURN NEW; END $$"
        )
        conn.execute("CREATE TRIGGER pin BEFORE UPDATE ON runbook.flags FOR EACH ROW EXECUTE FUNCTION pin()")
    with pytest.raises(FlagWriteError, match=r'did not stick .*: A: wrote "true", read back "false"'):
        backend.write({"A": "true"})


def test_unreachable_and_missing_url_never_show_the_password() -> None:
    backend = PostgresFlagBackend("postgresql://u:pw-s3cret@127.0.0.1:1/x")
    assert "s3cret" not in backend.describe()
    for call in (lambda: backend.read(["A"]), lambda: backend.write({"A": "1"})):
        with pytest.raises(UnreachableError) as err:
            call()
        assert "127.0.0.1:1/x" in str(err.value) and "s3cret" not in str(err.value)
    with pytest.raises(ConfigError, match="no database URL for the flags database"):
        PostgresFlagBackend(None).read(["A"])


READER_LOG = """
CREATE SCHEMA obs;
CREATE TABLE obs.values (name text PRIMARY KEY, value text NOT NULL);
CREATE TABLE obs.readers (n serial, pid int NOT NULL);
CREATE FUNCTION obs.read_flags() RETURNS SETOF obs.values LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO obs.readers (pid) VALUES (pg_backend_pid());
  RETURN QUERY SELECT * FROM obs.values;
END $$;
CREATE VIEW obs.flags AS SELECT * FROM obs.read_flags();
INSERT INTO obs.values VALUES ('A', 'on');
"""
"""A flags "table" that records, on the server, the backend (connection) of every read of it."""


def readers(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT pid FROM obs.readers ORDER BY n")]


def test_reads_share_an_open_connection_and_fall_back_when_it_is_gone(pg_url: str) -> None:
    """`status` reads the flags on the state store's connection when both live in one database: one
    connection fewer. A broken shared connection is not an error: the read opens its own. Which connection
    read is recorded by the server itself (the view logs pg_backend_pid())."""
    shared = psycopg.connect(pg_url, autocommit=True)
    backend = PostgresFlagBackend(pg_url, schema="obs", table="flags", shared=lambda: shared)
    assert backend.read(["A"]) == {"A": None}  # no table yet, on the shared connection
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(READER_LOG)
    pid = shared.info.backend_pid
    assert backend.read(["A", "B"]) == {"A": "on", "B": None}
    assert readers(pg_url) == [pid]  # read on the shared connection
    assert shared.execute("SHOW statement_timeout").fetchone() == ("0",)  # its SET LOCAL did not leak
    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert backend.read(["A"]) == {"A": "on"}
    first, second = readers(pg_url)
    assert first == pid and second != pid  # the shared one was gone: a connection of its own
    shared.close()
    assert backend.read(["A"]) == {"A": "on"}
    assert len(readers(pg_url)) == 3 and readers(pg_url)[2] not in (pid, second)  # closed: its own again


def test_a_locked_table_is_not_waited_for_twice(pg_url: str) -> None:
    """A read that times out on a lock is an error at once: no second read on a connection of its own,
    which would wait as long again. Every backend that waits for the lock is seen in pg_stat_activity."""
    PostgresFlagBackend(pg_url).write({"A": "on"})
    waiting: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while not done.is_set():
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE %s",
                    ('%"runbook"."flags"%',),
                )
                waiting.update(r[0] for r in rows)
                time.sleep(0.01)

    with psycopg.connect(pg_url, autocommit=True) as shared, psycopg.connect(pg_url) as locker:
        locker.execute("LOCK TABLE runbook.flags IN ACCESS EXCLUSIVE MODE")
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            backend = PostgresFlagBackend(pg_url, statement_timeout=0.5, shared=lambda: shared)
            with pytest.raises(UnreachableError, match=r"reading runbook.flags did not finish within 0.5s"):
                backend.read(["A"])
            time.sleep(0.2)  # a second read, had there been one, would be waiting now
        finally:
            done.set()
            watcher.join()
        assert waiting == {shared.info.backend_pid}
