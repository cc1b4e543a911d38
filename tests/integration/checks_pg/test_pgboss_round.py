"""A monitoring round reads pg-boss's layout from the catalog once for all its pg-boss checks (the check
context's memo); the next round reads it again (an upgrade between rounds is seen); a failed read is not
kept. Real pg-boss 12."""

from __future__ import annotations

from typing import Any

import pytest

from runbook.checkrun import CheckRunContext
from runbook.checks import pgboss_layout
from runbook.checks.base import Verdict
from runbook.checks.pgboss import PgBossParams
from runbook.checks.pgboss import measure as measure_pgboss
from tests.integration.checks_pg.conftest import Template, runbook_for

pytestmark = pytest.mark.pgboss


def test_one_catalog_read_per_round(
    templates: dict[str, Template], copy_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = copy_db(templates["12"])
    calls: list[str] = []
    real = pgboss_layout.detect

    def counting(session: Any, schema: str) -> pgboss_layout.Layout:
        calls.append(schema)
        return real(session, schema)

    monkeypatch.setattr(pgboss_layout, "detect", counting)
    checks = [
        PgBossParams(metric="installed"),
        PgBossParams(metric="backlog", queue="q-backlog", counters="live", max=10),
        PgBossParams(metric="backlog", queue="q-active", state="active", counters="live", max=10),
    ]
    rb = runbook_for(url)
    for round_ in (1, 2):
        with CheckRunContext(rb, stage_id="s1") as ctx:
            got = [measure_pgboss(p, ctx) for p in checks]
        assert [m.verdict for m in got] == [Verdict.PASS] * 3, [m.explanation for m in got]
        assert [m.value for m in got[1:]] == [5, 2]
        assert len(calls) == round_  # once per round, not once per check
    with CheckRunContext(rb, stage_id="s1") as ctx:
        missing = measure_pgboss(PgBossParams(metric="installed", schema="nope"), ctx)
        again = measure_pgboss(PgBossParams(metric="installed", schema="nope"), ctx)
    assert missing.verdict is again.verdict is Verdict.FAIL
    assert calls.count("nope") == 2  # "not installed" is not kept: read again
