"""`migrate watch` over several runbooks in one process (a fleet): each runbook is watched by the one watch
loop (runbook/commands/watch.py) in a thread of its own, with its own Session (state store, connections) and
its own lease, so a runbook whose database or app is down only slows its own thread (every round is bounded
by its checks' timeouts). The process exits when every thread has ended (a stop signal ends them all, and
each releases its lease); its exit code is the worst of theirs (`WORST`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.commands.replicas import share_out
from runbook.commands.watch import WatchResult, WatchView, watch
from runbook.errors import LockedError, RunbookError, UsageError
from runbook.exitcodes import ExitCode
from runbook.session import Session

SUFFIXES = (".yaml", ".yml")
WORST = (
    ExitCode.ROLLED_BACK,
    ExitCode.NOT_READY,
    ExitCode.UNREACHABLE,
    ExitCode.LOCKED,
    ExitCode.USAGE,
    ExitCode.OK,
)
"""Exit codes from worst to best: a rollback anywhere outranks a breach left in place, which outranks a
database that could not be reached, a lease another watcher holds, a bad runbook, and success."""


def runbook_paths(paths: Sequence[str]) -> list[str]:
    """The runbook files `paths` name: a file as given, a folder as its *.yaml and *.yml files (sorted; not
    its subfolders). Each file once."""
    found: list[str] = []
    for p in paths:
        folder = Path(p)
        try:
            is_folder = folder.is_dir()
        except OSError:  # a name too long for the file system, say: the loader says what is wrong with it
            is_folder = False
        if not is_folder:
            found.append(p)
            continue
        try:
            inside = sorted(str(f) for f in folder.iterdir() if f.suffix in SUFFIXES and f.is_file())
        except OSError as exc:
            raise UsageError(
                f"-f {p}: the folder cannot be read: {exc.strerror}", hint="name a folder you can read"
            ) from None
        if not inside:
            raise UsageError(
                f"-f {p}: the folder holds no runbook file (*.yaml, *.yml)",
                hint="name a folder of runbook files, or the files themselves with -f",
            )
        found.extend(inside)
    return list(dict.fromkeys(found))


def distinct_names(sessions: Sequence[Session], paths: Sequence[str]) -> None:
    """Refuse two runbooks of one name: the lease, the state rows and the metrics are keyed by it."""
    seen: dict[str, str] = {}
    for s, path in zip(sessions, paths, strict=True):
        if s.name in seen:
            raise UsageError(
                f"{seen[s.name]} and {path} are both runbook {s.name!r}",
                hint="give every runbook its own `name:` (one lease and one set of state rows each)",
            )
        seen[s.name] = path


@dataclass
class FleetResult:
    """How each runbook's watch ended (a watch result, the error that ended its thread, or None: never
    watched here, another replica holds it)."""

    results: list[WatchResult | RunbookError | None] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    template: str = "watch_fleet"

    @property
    def exit_code(self) -> ExitCode:
        codes = {r.exit_code for r in self.results if r is not None}
        return next((c for c in WORST if c in codes), ExitCode.OK)

    def to_json(self) -> dict[str, Any]:
        runbooks = []
        for name, r in zip(self.names, self.results, strict=True):
            if isinstance(r, WatchResult):
                runbooks.append(r.to_json())
            elif r is None:
                runbooks.append(
                    {"runbook": name, "outcome": "elsewhere", "reason": "watched by another replica"}
                )
            else:
                body = {
                    "outcome": "error",
                    "reason": r.message,
                    "hint": r.hint,
                    "exit_code": int(r.exit_code),
                }
                runbooks.append({"runbook": name, **body})
        return {"runbooks": runbooks, "exit_code": int(self.exit_code)}


def watch_fleet(
    sessions: Sequence[Session],
    *,
    stop: threading.Event,
    on_round: Callable[[Session], Callable[[WatchView], None]],
    coordinator: Session | None = None,
    ended: Callable[[str], None] = lambda _name: None,
    beat: Callable[[bool], None] = lambda _ok: None,
    **options: Any,
) -> FleetResult:
    """Watch every session's runbook in a thread of its own (`options` as `watch` takes them) until each
    ended; `on_round(session)` is that runbook's round callback, `ended(name)` is called as its watch ends.
    With a `coordinator` (a session of its own: replicas, runbook/commands/replicas.py) this process
    watches only its share of the runbooks, until `stop`."""
    result = FleetResult([None] * len(sessions), [s.name for s in sessions])
    callbacks = [on_round(s) for s in sessions]
    done: set[int] = set()  # watches that ended by themselves, not stopped and not refused a lease

    tick = options.get("interval") or min(s.runbook.settings.defaults.interval for s in sessions)

    def one(i: int, own_stop: threading.Event) -> None:
        session = sessions[i]
        if own_stop.wait(tick * i / len(sessions)):  # spread over an interval: rounds never all at once
            ended(session.name)
            return
        try:
            result.results[i] = watch(session, stop=own_stop, on_round=callbacks[i], **options)
            if not own_stop.is_set():
                done.add(i)
        except LockedError as exc:
            if coordinator is None:  # a replica that lost the race for a lease simply has not got it
                result.results[i] = exc
        except RunbookError as exc:
            result.results[i] = exc
            done.add(i)
        except Exception as exc:  # a bug in one runbook's thread never takes the others down
            result.results[i] = RunbookError(f"watch failed: {type(exc).__name__}: {exc}")
            done.add(i)
        finally:
            ended(session.name)
            if coordinator is not None:
                session.reset_store()  # given back: its connection goes too, until taken again

    def start(i: int, own_stop: threading.Event) -> threading.Thread:
        t = threading.Thread(target=one, args=(i, own_stop), name=f"watch {sessions[i].name}", daemon=True)
        t.start()
        return t

    if coordinator is not None:
        # the share decides what to wait for; a runbook taken over keeps its pace (a sample an interval after
        # the last one of the replica that gave it up)
        options = {**options, "wait_for_lease": False, "keep_pace": True}
        share_out(sessions, coordinator, stop=stop, start=start, tick=tick, beat=beat, done=done.__contains__)
        return result
    threads = [start(i, stop) for i in range(len(sessions))]
    for t in threads:
        while t.is_alive():
            t.join(0.5)  # in slices: the main thread stays free to take SIGTERM and Ctrl-C
    return result
