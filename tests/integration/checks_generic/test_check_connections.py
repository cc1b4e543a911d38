"""A session keeps its checks' read-only connections from one round to the next (one per URL), replaces one
that broke (here: terminated by the server between rounds), drops them all when a check timed out, and closes
them at the end. Real PostgreSQL."""

from __future__ import annotations

import psycopg

from runbook.checkconns import CheckConnections
from runbook.checkrun import CheckRunContext, run_check
from runbook.checks.base import Verdict

from .conftest import make_runbook, spec


def backend_pid(ctx: CheckRunContext) -> int:
    with ctx.connect() as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def test_connections_outlive_a_round_and_are_replaced_when_broken(pg_url: str) -> None:
    rb = make_runbook(db_url=pg_url)
    pool = CheckConnections()
    with CheckRunContext(rb, connections=pool) as first:
        pid = backend_pid(first)
    with CheckRunContext(rb, connections=pool) as second:
        assert backend_pid(second) == pid  # the next round reuses it
    with psycopg.connect(pg_url, autocommit=True) as admin:  # the server drops it between rounds
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with CheckRunContext(rb, connections=pool) as third:
        # A check meeting the dead connection retries on a new one (a transient error), and passes.
        m = run_check(spec("sql", query="SELECT 1 AS one", expect=("one == 1",)), third)
        assert m.verdict is Verdict.PASS, m.explanation
        replaced = backend_pid(third)
    assert replaced != pid
    with CheckRunContext(rb, connections=pool) as fourth:
        fourth.cancel()  # after a check timed out: every connection dropped
        assert backend_pid(fourth) != replaced
        kept = backend_pid(fourth)
    pool.close()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        alive = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (kept,)).fetchone()
    assert alive == (0,)


def test_a_context_without_a_session_pool_closes_its_own(pg_url: str) -> None:
    rb = make_runbook(db_url=pg_url)
    with CheckRunContext(rb) as ctx:
        pid = backend_pid(ctx)
    with psycopg.connect(pg_url, autocommit=True) as admin:
        alive = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    assert alive == (0,)
