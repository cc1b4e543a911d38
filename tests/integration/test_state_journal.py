"""The local journal: rollbacks recorded while the state database is unreachable, synced later."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from runbook.errors import UnreachableError
from runbook.state import Journal, NewEvent, StateStore, append_journal, read_journal, sync_journal
from tests.integration.statehelp import FLAGS0, FLAGS1, actor, advance, open_store

DOWN = "postgresql://u:pw-s3cret@127.0.0.1:1/x"


def rollback_event(from_stage: str = "b", to_stage: str = "a", **kw: object) -> NewEvent:
    return NewEvent(
        "auto-rollback",
        actor("watcher"),
        from_stage=from_stage,
        to_stage=to_stage,
        flags_before=FLAGS1,
        flags_after=FLAGS0,
        reason="error rate 40% > 5% (db postgresql://app:pw-s3cret@db/x)",
        **kw,  # type: ignore[arg-type]
    )


def test_unreachable_store_then_journal_then_sync(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(UnreachableError) as err:
        StateStore.open(DOWN)
    assert "127.0.0.1:1/x" in err.value.message and "s3cret" not in str(err.value)
    path = tmp_path / "journal.jsonl"
    entry = append_journal(path, "rb", rollback_event(), expected_version=2)
    assert entry.applies_state and entry.expected_version == 2 and entry.event.at is not None
    text = path.read_text()
    assert "s3cret" not in text and "app:***@db" in text and text.endswith("\n")
    assert [e.event.uuid for e in read_journal(path)] == [entry.event.uuid]

    store = open_store(pg_url)
    store.initialize("rb", "a", FLAGS0, actor())
    v2 = advance(store, "rb", "b", FLAGS1)
    assert v2 == 2
    assert sync_journal(store, path) == 1
    assert path.read_text() == ""
    state = store.current("rb")
    assert state is not None
    assert (state.stage, state.version, state.flags) == ("a", 3, FLAGS0)
    assert state.entered_at == entry.event.at  # the soak clock starts when the flags really flipped
    ev = store.last_event("rb")
    assert ev is not None and ev.uuid == entry.event.uuid and ev.operation == "auto-rollback"
    assert ev.data["journal"]["applied"] is True and ev.version == 3 and ev.at == entry.event.at
    assert sync_journal(store, path) == 0


def test_sync_is_idempotent_after_a_crash_before_truncating(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    store.initialize("rb", "a", FLAGS0, actor())
    advance(store, "rb", "b", FLAGS1)
    path = tmp_path / "j.jsonl"
    Journal(path).append("rb", rollback_event(), expected_version=2)
    saved = path.read_text()
    assert Journal(path).sync(store) == 1
    path.write_text(saved)  # as if the process died after inserting, before emptying the file
    assert Journal(path).sync(store) == 0
    assert store.current("rb").version == 3  # type: ignore[union-attr]
    assert [e.operation for e in store.events("rb")] == ["init", "advance", "auto-rollback"]


def test_a_moved_state_is_not_overwritten(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    store.initialize("rb", "a", FLAGS0, actor())
    advance(store, "rb", "b", FLAGS1)
    path = tmp_path / "j.jsonl"
    append_journal(path, "rb", rollback_event(), expected_version=2)
    advance(store, "rb", "c", FLAGS1, who="bob")  # someone else moved on while we could not record
    assert sync_journal(store, path) == 1
    state = store.current("rb")
    assert state is not None and (state.stage, state.version) == ("c", 3)
    ev = store.last_event("rb")
    assert ev is not None and ev.operation == "auto-rollback"
    assert ev.data["journal"]["applied"] is False
    assert ev.data["journal"]["note"] == "the state moved on (version 3, rollback decided on 2)"


def test_unknown_expected_version_and_chained_rollbacks(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    store.initialize("rb", "a", FLAGS0, actor())
    advance(store, "rb", "b", FLAGS1)
    advance(store, "rb", "c", FLAGS1)
    path = tmp_path / "j.jsonl"
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    first = append_journal(path, "rb", rollback_event("c", "b", at=now))  # base not known
    second = append_journal(path, "rb", rollback_event("b", "a", at=now + dt.timedelta(seconds=1)))
    assert first.expected_version is None and second.expected_version is None
    assert sync_journal(store, path) == 2
    state = store.current("rb")
    assert state is not None and (state.stage, state.version) == ("a", 5)
    # with a known base, later entries chain on the version the earlier ones produce
    path2 = tmp_path / "j2.jsonl"
    e1 = append_journal(path2, "rb", rollback_event("a", "a"), expected_version=5)
    e2 = append_journal(path2, "rb", rollback_event("a", "a"), expected_version=5)
    note = append_journal(path2, "rb", NewEvent("note", actor(), reason="while offline"))
    assert (e1.expected_version, e2.expected_version, note.applies_state) == (5, 6, False)
    assert sync_journal(store, path2) == 3
    assert store.current("rb").version == 7  # type: ignore[union-attr]


def test_a_line_cut_by_a_crash_is_kept_aside(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    store.initialize("rb", "a", FLAGS0, actor())
    path = tmp_path / "j.jsonl"
    append_journal(path, "rb", NewEvent("note", actor(), reason="one"))
    with open(path, "a") as f:
        f.write('{"runbook": "rb", "event": {"oper')  # no newline: the process died mid-write
    append_journal(path, "rb", NewEvent("note", actor(), reason="two"))
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["event"]["reason"] == "two"
    assert sync_journal(store, path) == 2
    assert [e.reason for e in store.events("rb", operation="note")] == ["one", "two"]
    [rejected] = [json.loads(x) for x in Path(f"{path}.rejected").read_text().splitlines()]
    assert (rejected["line"], rejected["text"]) == (2, '{"runbook": "rb", "event": {"oper')
    assert rejected["reason"].startswith("not JSON")


def test_no_journal_means_nothing_to_sync(pg_url: str, tmp_path: Path) -> None:
    store = open_store(pg_url)
    assert sync_journal(store, tmp_path / "missing.jsonl") == 0
    assert read_journal(tmp_path / "missing.jsonl") == []


def test_a_connection_lost_mid_session_is_unreachable(pg_url: str) -> None:
    store = open_store(pg_url)
    store.initialize("rb", "a", FLAGS0, actor())
    with StateStore.open(pg_url) as admin:
        admin.conn.execute("SELECT pg_terminate_backend(%s)", (store.conn.info.backend_pid,))
    with pytest.raises(UnreachableError, match="lost the connection to the state database at") as err:
        store.current("rb")
    assert err.value.exit_code == 5
    with pytest.raises(UnreachableError):
        store.append_event("rb", NewEvent("note", actor()))
