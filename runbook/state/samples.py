"""Monitor samples: every measurement a watcher or gate takes during a stage, kept for a bounded time.

Two indexes keep both uses index-bounded: `(runbook, stage, check_name, at)` serves a time-bounded read of
one check, `(runbook, at)` serves pruning everything of a runbook older than a cut-off.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

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
