"""Monitor samples: every measurement a watcher or gate takes during a stage, kept for a bounded time.

Two indexes keep both uses index-bounded: `(runbook, stage, check_name, at)` serves a time-bounded read of
one check, `(runbook, at)` serves pruning everything of a runbook older than a cut-off.

Each check's tally in a stage (runbook.limits.Tally: measurements, failures, the streaks, the last verdict)
is kept in `tallies` by the same statement that stores a sample, so judging a round reads no history: a
watcher's cost per sample stays flat over days. A round's samples are one transaction.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from psycopg.types.json import Jsonb

from runbook.limits import Tally, tally
from runbook.measurement import Verdict
from runbook.state.base import StoreBase, scrub
from runbook.state.records import StoredSample


def numeric(value: Any) -> float | None:
    """Return `value` as a float for the `value` column (charts), or None when it is not a finite number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


class NewSample(NamedTuple):
    check: str
    measurement_json: Mapping[str, Any]
    verdict: Verdict
    value: Any


_SINCE = "coalesce(%(since)s, '-infinity'::timestamptz)"
TALLY_KEY = "runbook, stage, check_name, since"
TALLY_COLUMNS = TALLY_KEY + ", measurements, failures, fail_streak, error_streak, last_verdict, last_at"
RECORD = (
    "WITH s AS (INSERT INTO {samples} (runbook, stage, check_name, at, verdict, value, measurement)"
    " SELECT %(runbook)s, %(stage)s, u.c, now(), u.v, u.x, u.m FROM unnest(%(checks)s::text[],"
    " %(verdicts)s::text[], %(values)s::float8[], %(measurements)s::jsonb[])"
    " WITH ORDINALITY AS u(c, v, x, m, n) ORDER BY u.n RETURNING runbook, stage, check_name, at, verdict)"
    " INSERT INTO {tallies} AS t (" + TALLY_COLUMNS + ")"
    " SELECT runbook, stage, check_name, " + _SINCE + ", 1, (verdict = 'fail')::int,"
    " (verdict = 'fail')::int, (verdict = 'error')::int, verdict, at FROM s"
    " ON CONFLICT (" + TALLY_KEY + ") DO UPDATE SET"
    " measurements = t.measurements + 1,"
    " failures = t.failures + (excluded.last_verdict = 'fail')::int,"
    " fail_streak = CASE excluded.last_verdict WHEN 'fail' THEN t.fail_streak + 1"
    " WHEN 'error' THEN t.fail_streak ELSE 0 END,"
    " error_streak = CASE WHEN excluded.last_verdict = 'error' THEN t.error_streak + 1 ELSE 0 END,"
    " last_verdict = excluded.last_verdict, last_at = excluded.last_at"
    " WHERE t.last_at <= excluded.last_at"
    " RETURNING check_name, measurements, failures, fail_streak, error_streak, last_verdict, xmax = 0"
)
"""Store a round's samples and count each into its check's tally, in one statement. A tally row that is new
while the stage already holds samples of the check (written by an older release), or one whose last sample
is newer than this one (no row returned), is counted again from the history (`_recount`)."""


class SamplesMixin(StoreBase):
    """Monitor samples."""

    def add_sample(
        self,
        runbook: str,
        stage: str,
        check: str,
        measurement_json: Mapping[str, Any],
        verdict: Verdict | str,
        value: Any,
        *,
        at: dt.datetime | None = None,
    ) -> None:
        """Store one sample (`measurement_json` = `Measurement.to_json()`, secrets scrubbed)."""
        with self.tx() as conn:
            conn.execute(
                self.sql(
                    "INSERT INTO {samples} (runbook, stage, check_name, at, verdict, value, measurement) "
                    "VALUES (%s, %s, %s, coalesce(%s, now()), %s, %s, %s)"
                ),
                (
                    runbook,
                    stage,
                    check,
                    at,
                    Verdict(verdict).value,
                    numeric(value),
                    Jsonb(scrub(measurement_json, self.redact)),
                ),
            )

    def record_round(
        self, runbook: str, stage: str, since: dt.datetime | None, samples: list[NewSample]
    ) -> dict[str, Tally]:
        """Store a round's samples in one transaction; return each check's tally in the stage since `since`
        (the stage's entry), this round included."""
        out: dict[str, Tally] = {}
        names = [s.check for s in samples]
        if len(set(names)) != len(names):  # one statement cannot count one tally twice
            for s in samples:
                out.update(self.record_round(runbook, stage, since, [s]))
            return out
        args: dict[str, Any] = {
            "runbook": runbook,
            "stage": stage,
            "since": since,
            "checks": names,
            "verdicts": [Verdict(s.verdict).value for s in samples],
            "values": [numeric(s.value) for s in samples],
            "measurements": [Jsonb(scrub(s.measurement_json, self.redact)) for s in samples],
        }
        with self.tx() as conn:
            rows = {r[0]: r for r in conn.execute(self.sql(RECORD), args).fetchall()}
            for check in names:
                one = {**args, "check": check}
                row = rows.get(check)
                if row is None or (row[6] and row[1] == 1 and self._older(conn, one)):
                    out[check] = self._recount(conn, one)
                else:
                    out[check] = Tally(row[1], row[2], row[3], row[4], Verdict(row[5]))
        return out

    def _older(self, conn: Any, args: Mapping[str, Any]) -> bool:
        """Tell whether the stage held samples of the check before the one just stored."""
        row = conn.execute(
            self.sql(
                "SELECT count(*) > 1 FROM {samples} WHERE runbook = %(runbook)s AND stage = %(stage)s"
                " AND check_name = %(check)s AND at >= " + _SINCE
            ),
            args,
        ).fetchone()
        return bool(row and row[0])

    def _recount(self, conn: Any, args: Mapping[str, Any]) -> Tally:
        """Count the tally from the stored history and keep it (the rare path: an upgrade, a late sample)."""
        rows = conn.execute(
            self.sql(
                "SELECT verdict, at FROM {samples} WHERE runbook = %(runbook)s AND stage = %(stage)s"
                " AND check_name = %(check)s AND at >= " + _SINCE + " ORDER BY at, id"
            ),
            args,
        ).fetchall()
        t = tally(r[0] for r in rows)
        conn.execute(
            self.sql(
                "INSERT INTO {tallies} (" + TALLY_COLUMNS + ") VALUES (%(runbook)s, %(stage)s, %(check)s, "
                + _SINCE + ", %(n)s, %(f)s, %(fs)s, %(es)s, %(last)s, %(at)s) ON CONFLICT (" + TALLY_KEY + ")"
                " DO UPDATE SET measurements = excluded.measurements, failures = excluded.failures,"
                " fail_streak = excluded.fail_streak, error_streak = excluded.error_streak,"
                " last_verdict = excluded.last_verdict, last_at = excluded.last_at"
            ),
            {**args, "n": t.measurements, "f": t.failures, "fs": t.fail_streak, "es": t.error_streak,
             "last": t.last.value if t.last else "inconclusive", "at": rows[-1][1]},
        )  # fmt: skip
        return t

    def verdicts(
        self, runbook: str, stage: str, check: str, since: dt.datetime | None = None
    ) -> list[Verdict]:
        """Return the verdicts of one check in one stage, oldest first: what its limits are judged on, read
        without the measurements (a watcher judges every check every round, for days)."""
        with self.tx() as conn:
            rows = conn.execute(
                self.sql(
                    "SELECT verdict FROM {samples} "
                    "WHERE runbook = %s AND stage = %s AND check_name = %s "
                    "AND at >= coalesce(%s, '-infinity'::timestamptz) "
                    "ORDER BY at, id"
                ),
                (runbook, stage, check, since),
            ).fetchall()
        return [Verdict(r[0]) for r in rows]

    def samples(
        self,
        runbook: str,
        stage: str,
        check: str,
        since: dt.datetime | None = None,
        *,
        limit: int | None = None,
    ) -> list[StoredSample]:
        """Return samples of one check in one stage, oldest first.

        `since` bounds the time; `limit` keeps only the newest ones."""
        with self.tx() as conn:
            rows = conn.execute(
                self.sql(
                    "SELECT at, stage, check_name, verdict, value, measurement FROM {samples} "
                    "WHERE runbook = %s AND stage = %s AND check_name = %s "
                    "AND at >= coalesce(%s, '-infinity'::timestamptz) "
                    "ORDER BY at DESC, id DESC LIMIT %s"
                ),
                (runbook, stage, check, since, limit),
            ).fetchall()
        out = []
        for at, st, name, verdict, value, measurement in reversed(rows):
            raw = value if value is not None else (measurement or {}).get("value")
            out.append(StoredSample(at, st, name, Verdict(verdict), raw, dict(measurement or {})))
        return out

    def last_sample_age(self, runbook: str) -> float | None:
        """Seconds since the newest sample of `runbook` was stored, by the state database's clock (the one
        that stamped it); None when it has none."""
        with self.tx() as conn:
            row = conn.execute(
                self.sql("SELECT extract(epoch FROM now() - max(at)) FROM {samples} WHERE runbook = %s"),
                (runbook,),
            ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def prune_samples(self, runbook: str, older_than_seconds: float) -> int:
        """Delete samples of `runbook` older than the cut-off; return how many were deleted."""
        with self.tx() as conn:
            cur = conn.execute(
                self.sql(
                    "DELETE FROM {samples} WHERE runbook = %s AND at < now() - make_interval(secs => %s)"
                ),
                (runbook, float(older_than_seconds)),
            )
            return cur.rowcount

    def all_samples(self, runbook: str, *, limit: int | None = None) -> list[StoredSample]:
        """Every sample of `runbook` across stages and checks, oldest first (the newest `limit` ones)."""
        with self.tx() as conn:
            rows = conn.execute(
                self.sql(
                    "SELECT at, stage, check_name, verdict, value, measurement FROM {samples} "
                    "WHERE runbook = %s ORDER BY at DESC, id DESC LIMIT %s"
                ),
                (runbook, limit),
            ).fetchall()
        return [
            StoredSample(
                at,
                st,
                name,
                Verdict(verdict),
                value if value is not None else (m or {}).get("value"),
                dict(m or {}),
            )
            for at, st, name, verdict, value, m in reversed(rows)
        ]
