"""Concurrent batches of `migrate transfer legacy --workers N`: each worker moves batches on its own
connection, `FOR UPDATE SKIP LOCKED` keeps their claims disjoint (and the deterministic job ids with
`ON CONFLICT DO NOTHING` would keep a job single even if two claims met). `--limit` is shared: a batch
reserves its rows before it claims and gives back what it did not claim, so N workers never move more than
the limit.
Only the calling thread adds committed batches to the totals and draws the progress, so the totals, the
progress and the audited event stay exact. A failing worker stops the others once their batch in flight has
committed (and is counted); its error is raised when every worker has ended."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()


class Workers(Generic[T]):
    """The shared state of one transfer's workers: the rows --limit leaves, batch numbers, a stop flag."""

    def __init__(self, limit: int | None) -> None:
        self._lock = threading.Lock()
        self._left = limit
        self._started = 0
        self._stopped = False

    def take(self, size: int) -> tuple[int, int]:
        """(rows the next batch may claim, its number), the rows reserved from the limit; (0, 0) once the
        limit is reserved or a worker failed: the caller's worker ends."""
        with self._lock:
            rows = size if self._left is None else min(size, self._left)
            if self._stopped or rows <= 0:
                return 0, 0
            if self._left is not None:
                self._left -= rows
            self._started += 1
            return rows, self._started

    def give_back(self, rows: int) -> None:
        """Return reserved rows a batch did not move (it claimed fewer, or it failed)."""
        with self._lock:
            if self._left is not None:
                self._left += rows

    def stop(self) -> None:
        with self._lock:
            self._stopped = True

    def run(self, count: int, work: Callable[[Callable[[T], None]], None], add: Callable[[T], None]) -> None:
        """Run `work(emit)` in `count` threads; `add` (in this thread) each item a worker emits, as it comes.
        The first error of a worker (or of `add`, or an interrupt here) stops the rest; it is raised once
        every worker ended and every item they emitted was added."""
        out: queue.SimpleQueue[tuple[bool, object]] = queue.SimpleQueue()

        def body() -> None:
            try:
                work(lambda item: out.put((True, item)))
            except BaseException as exc:  # handed to the calling thread, raised there
                self.stop()  # at once: no worker starts another batch
                out.put((False, exc))
            finally:
                out.put((False, _END))

        threads = [
            threading.Thread(target=body, name=f"transfer-worker-{i + 1}", daemon=True) for i in range(count)
        ]
        for t in threads:
            t.start()
        error: BaseException | None = None
        running = count
        while running:
            try:
                ok, item = out.get()
                if ok:
                    add(item)  # type: ignore[arg-type]
                elif item is _END:
                    running -= 1
                elif error is None:
                    error = item  # type: ignore[assignment]
                    self.stop()
            except BaseException as exc:  # an interrupt or a failing `add`: let the batches in flight end
                error = error or exc
                self.stop()
        for t in threads:
            t.join()
        if error is not None:
            raise error
