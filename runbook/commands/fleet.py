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

from runbook.commands.watch import WatchResult, WatchView, watch
from runbook.errors import RunbookError, UsageError
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
        if not folder.is_dir():
            found.append(p)
            continue
        inside = sorted(str(f) for f in folder.iterdir() if f.suffix in SUFFIXES and f.is_file())
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
    """How each runbook's watch ended (a watch result, or the error that ended its thread)."""

    results: list[WatchResult | RunbookError] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    template: str = "watch_fleet"

    @property
    def exit_code(self) -> ExitCode:
        codes = {r.exit_code for r in self.results}
        return next((c for c in WORST if c in codes), ExitCode.OK)

    def to_json(self) -> dict[str, Any]:
        runbooks = []
        for name, r in zip(self.names, self.results, strict=True):
            if isinstance(r, WatchResult):
                runbooks.append(r.to_json())
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
    **options: Any,
) -> FleetResult:
    """Watch every session's runbook in a thread of its own (`options` as `watch` takes them) until each
    ended; `on_round(session)` is that runbook's round callback."""
    result = FleetResult([RunbookError("not started")] * len(sessions), [s.name for s in sessions])

    def one(i: int, session: Session) -> None:
        try:
            result.results[i] = watch(session, stop=stop, on_round=on_round(session), **options)
        except RunbookError as exc:
            result.results[i] = exc
        except Exception as exc:  # a bug in one runbook's thread never takes the others down
            result.results[i] = RunbookError(f"watch failed: {type(exc).__name__}: {exc}")

    threads = [
        threading.Thread(target=one, args=(i, s), name=f"watch {s.name}", daemon=True)
        for i, s in enumerate(sessions)
    ]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)  # in slices: the main thread stays free to take SIGTERM and Ctrl-C
    return result
