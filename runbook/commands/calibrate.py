"""`migrate calibrate`: read the history the databases already hold (the legacy table's error rate, run times
and volume per job type over a window; pg-boss's for the runbook's queues, if any) and suggest thresholds,
minimum work and soak lengths for the runbook's checks, with the reasoning (runbook.calibration).

Read-only: every query runs through the checks' own read-only connections (default_transaction_read_only,
statement_timeout). `--write` edits the runbook file line by line (runbook.yamledit), shows the diff,
re-loads the edited text with the real loader (its messages naming the runbook file) and writes it only
when it is valid and confirmed (--yes, or a yes on a terminal). A suggested duration beyond what a runbook
accepts is never written (runbook.calibration suggests none; a note says so if one ever were)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook import db
from runbook.baseline import History
from runbook.calibration import Suggestion, suggest
from runbook.checks.base import Measurement, Verdict
from runbook.errors import ConfigError, RunbookError, UsageError
from runbook.exitcodes import ExitCode
from runbook.session import Session
from runbook.spec.budget import check_seconds
from runbook.units import format_duration, parse_duration
from runbook.yamledit import KeyNotEditable, set_key

_DEFAULTED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):-")
_DURATIONS = frozenset({"window", "soak", "soak.duration"})
"""Suggested keys holding a duration, which a runbook bounds (runbook.spec.budget)."""
SAMPLE_LIMIT = 2000
"""Latest legacy run times kept per job type for the rank test's projection."""


@dataclass
class CalibrateResult:
    runbook: str
    window: float
    history: list[History]
    suggestions: list[Suggestion]
    notes: list[str] = field(default_factory=list)
    diff: str | None = None
    written: bool = False
    write: bool = False
    template: str = "calibrate"
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook,
            "window_seconds": self.window,
            "window": format_duration(self.window),
            "history": [h.to_json() for h in self.history],
            "suggestions": [s.to_json() for s in self.suggestions],
            "notes": self.notes,
            "diff": self.diff,
            "written": self.written,
        }


def calibrate(
    session: Session,
    path: str | Path,
    *,
    window: float = 7 * 86400,
    write: bool = False,
    yes: bool = False,
    allow_scan: bool = False,
) -> CalibrateResult:
    """Suggest; with `write`, edit `path` (after showing the diff and a confirmation)."""
    if window <= 0:
        raise UsageError(f"--window must be positive, got {window}", hint="e.g. --window 7d")
    rb = session.runbook
    s = rb.settings
    for url, what, setting in (
        (
            s.legacy.url or s.database.url,
            "the legacy table's database",
            "settings.legacy.url or settings.database.url",
        ),
        (
            s.pgboss.url or s.database.url,
            "pg-boss's database",
            "settings.pgboss.url or settings.database.url",
        ),
    ):
        db.connect(
            url, what=what, setting=setting, read_only=True, connect_timeout=s.database.connect_timeout
        ).close()
    reader = _Reader(session, window, allow_scan)
    try:
        suggestions, notes = suggest(rb, reader.history)
    finally:
        session.release_context(reader.ctx)
    result = CalibrateResult(str(path), window, reader.seen(), suggestions, reader.notes + notes, write=write)
    if write and suggestions:
        _write(session, Path(path), result, yes=yes)
    return result


class _Reader:
    """Reads and caches the history of each queue: the legacy rows standing for it, then pg-boss's."""

    def __init__(self, session: Session, window: float, allow_scan: bool) -> None:
        self.session = session
        self.window = window
        self.allow_scan = allow_scan
        self.ctx = session.check_context(None, None)
        self.legacy: dict[str | None, History] = {}
        self.pgboss: dict[str, History | None] = {}
        self.notes: list[str] = []

    def history(self, queue: str | None, legacy_type: str | None) -> History | None:
        typed = bool(self.session.runbook.settings.legacy.type_column)
        key = legacy_type if typed else None
        if key not in self.legacy:
            self.legacy[key] = self._legacy(key)
        if self.legacy[key].finished or queue is None:
            return self.legacy[key]
        if queue not in self.pgboss:
            self.pgboss[queue] = self._pgboss(queue)
        return self.pgboss[queue]

    def seen(self) -> list[History]:
        return [*self.legacy.values(), *(h for h in self.pgboss.values() if h is not None)]

    def _measure(self, kind: str, **params: Any) -> Measurement:
        from runbook.checks import get_kind

        k = get_kind(kind)
        return k.measure(k.params(window=self.window, min_jobs=0, **params), self.ctx)

    def _legacy(self, type_value: str | None) -> History:
        from runbook.checks.legacy import LegacyParams, samples

        scan = {"allow_scan": self.allow_scan}
        rate = _read(
            self._measure("legacy", metric="error_rate", type=type_value, **scan), "the legacy table"
        )
        p50, p95 = (
            _read(
                self._measure("legacy", metric="processing_time", percentile=q, type=type_value, **scan),
                "the legacy table",
            )
            for q in (50, 95)
        )
        params = LegacyParams(
            metric="processing_time", window=self.window, type=type_value, allow_scan=self.allow_scan
        )
        runs = _read(samples(params, self.ctx, SAMPLE_LIMIT), "the legacy table")
        typed = bool(self.session.runbook.settings.legacy.type_column)
        name = (
            type_value
            if type_value is not None
            else "jobs (every row" + ("" if typed else ": no type column") + ")"
        )
        return History(
            "legacy",
            name,
            self.window,
            int(rate.inputs.get("completed", 0)),
            int(rate.inputs.get("failed", 0)),
            p50.value,
            p95.value,
            tuple(runs.value),
        )

    def _pgboss(self, queue: str) -> History | None:
        rate = self._measure("pgboss", metric="error_rate", queue=queue)
        if rate.verdict in (Verdict.ERROR, Verdict.FAIL) and rate.value is None and "jobs" not in rate.inputs:
            self.notes.append(f"pg-boss queue {queue}: no history ({rate.explanation})")
            return None
        p50 = self._measure("pgboss", metric="run_time", queue=queue, percentile=50)
        return History(
            "pg-boss",
            queue,
            self.window,
            int(rate.inputs.get("completed", 0)),
            int(rate.inputs.get("failed", 0)),
            p50.value,
            rate.inputs.get("run_time"),
        )


def _read(m: Measurement, what: str) -> Measurement:
    """`m`, unless it could not measure: then an error naming the fix (its explanation carries it)."""
    if m.verdict is Verdict.ERROR:
        text, hint = m.explanation, "fix it, then run calibrate again"
        if "allow_scan" in text:  # the scan guard of a large table without an index: the check's hint
            text = text.replace("; or set allow_scan: true on this check", "")
            hint = "create the index it names, or pass --allow-scan to read the whole table this once"
        raise ConfigError(f"could not read the history of {what}: {text}", hint=hint)
    return m


def _edit(text: str, suggestions: list[Suggestion], notes: list[str]) -> str:
    """Apply the suggestions, last line first (an added line shifts only what follows it)."""

    def at(s: Suggestion) -> tuple[int, int]:
        _, line, col = s.location.rsplit(":", 2)
        return int(line), int(col)

    for s in sorted(suggestions, key=at, reverse=True):
        line, col = at(s)
        where = " ".join(x for x in (s.stage, s.check, s.key) if x)
        try:
            if s.key in _DURATIONS:
                check_seconds(parse_duration(s.value), "duration", s.value)
        except ValueError as exc:
            notes.append(f"{where}: not written ({exc}); keep the current value")
            continue
        try:
            text = set_key(text, line, col, s.key, s.value)
        except KeyNotEditable as exc:
            notes.append(f"{where}: not written ({exc}); set it to {s.value} by hand")
    return text


def _write(session: Session, path: Path, result: CalibrateResult, *, yes: bool) -> None:
    from runbook.spec import load_runbook_text

    old = path.read_text(encoding="utf-8")
    new = _edit(old, result.suggestions, result.notes)
    if new == old:  # none of the suggestions could be written (the notes say why): nothing to ask
        return
    result.diff = "".join(
        difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(path), str(path))
    )
    # the edited defaults must be what the loader reads: check without the variables the edits touched
    added = [line for line in result.diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    touched = {m.group(1) for line in added for m in _DEFAULTED.finditer(line)}
    env: Mapping[str, str] = {k: v for k, v in session.env.items() if k not in touched}
    overridden = sorted(k for k in touched if k in session.env)
    result.notes += [
        f"{k} is set in the environment: it overrides the default written here" for k in overridden
    ]
    try:  # the edited text, loaded in memory under the runbook's own name (no trial file to name)
        load_runbook_text(new, str(path), env=env)
    except RunbookError as exc:
        raise ConfigError(
            f"the edited runbook does not validate, so {path} was not written "
            f"(line numbers as edited): {exc.message}",
            hint="apply the suggestions by hand (migrate calibrate shows them), then migrate validate",
        ) from exc
    # the diff is in the result (stdout); a question on a terminal shows it first, once
    if not (yes or session.confirm(f"{result.diff}\nWrite these changes to {path}?")):
        result.exit_code = ExitCode.NOT_READY
        return
    from runbook.flags.envfile import replace

    replace(path, new.encode("utf-8"))
    result.written = True
