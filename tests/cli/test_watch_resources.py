"""A long watch keeps its database connections bounded (a watcher once leaked one per sample and died with
'too many clients' after about 90 samples)."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from runbook.commands.advance import advance
from runbook.commands.watch import WatchView, watch
from runbook.session import Session


def test_connections_stay_bounded_over_many_rounds(rb_dir: Path, pg_url: str) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
    counts: list[int] = []

    def count(_view: WatchView) -> None:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchone()
        counts.append(int(row[0]) if row else 0)

    with Session.open(rb_dir / "stages.yaml", env=dict(os.environ)) as session:
        assert advance(session, yes=True).outcome == "advanced"
        result = watch(session, interval=0.01, max_rounds=120, on_round=count)
    assert result.rounds == 120 and result.outcome == "limit"
    assert len(counts) == 120
    assert max(counts) <= 4, counts
    assert counts[-1] == counts[10]
