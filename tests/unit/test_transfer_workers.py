"""runbook.transfer.workers: the shared --limit (reserved per batch, given back when unused), batch numbers,
and a worker's failure stopping the others, raised only after every item they emitted was added."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from runbook.transfer.workers import Workers


def test_the_limit_is_reserved_per_batch_and_given_back() -> None:
    w: Workers[int] = Workers(7)
    assert w.take(3) == (3, 1)
    assert w.take(3) == (3, 2)
    assert w.take(3) == (1, 3)  # only 1 left
    assert w.take(3) == (0, 0)
    w.give_back(2)  # batch 1 claimed only 1 of its 3
    assert w.take(3) == (2, 4)
    assert Workers[int](None).take(500) == (500, 1)


def test_a_stopped_pool_hands_out_nothing() -> None:
    w: Workers[int] = Workers(None)
    w.stop()
    assert w.take(10) == (0, 0)


def test_items_are_added_in_the_calling_thread_until_the_limit() -> None:
    w: Workers[int] = Workers(100)
    added: list[tuple[int, str]] = []

    def work(emit: Callable[[int], None]) -> None:
        while True:
            rows, _ = w.take(7)
            if rows == 0:
                return
            emit(rows)

    w.run(3, work, lambda rows: added.append((rows, threading.current_thread().name)))
    assert sum(r for r, _ in added) == 100
    assert {name for _, name in added} == {threading.current_thread().name}


def test_a_failure_stops_the_others_after_their_item_and_is_raised() -> None:
    w: Workers[str] = Workers(None)
    added: list[str] = []

    def work(emit: Callable[[str], None]) -> None:
        while True:
            rows, number = w.take(1)
            if rows == 0:
                return
            if number == 3:
                raise RuntimeError("batch 3 refused")
            if number > 3:
                time.sleep(0.2)  # in flight while batch 3 fails: it still ends and is counted
            emit(f"batch {number}")

    with pytest.raises(RuntimeError, match="batch 3 refused"):
        w.run(2, work, added.append)
    assert "batch 3" not in added
    assert {"batch 1", "batch 2"} <= set(added)
    assert len(added) <= 3  # at most the one batch in flight beside the failing one
