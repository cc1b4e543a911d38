"""Error rates judged with stated confidence (issue 15) on the real thing: the example app, real pg-boss, the
real CLI on the shipped runbook x0.001, whose increment-3 `evaluation-error-rate` is judged with
`confidence: ${RATE_CONFIDENCE:-0.95}` over the whole stage (since_stage, a 30d window).

The climb runs at the story's confidence (0.6: 40 failure-free jobs pass a stage); the watch then judges at
the shipped default, 0.95. A healthy stage whose true error rate is below the limit (each evaluation attempt
throws 30% of the time; a job fails only when its 4 attempts all throw: 0.81% < 5%) is watched for 60 rounds
(10 story hours) and never rolled back; then 80% of attempts throw (41% of jobs fail) and the watcher rolls
it back on the interval."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runbook.demo.story import set_app_flags
from tests.e2e.conftest import AppFactory
from tests.e2e.migration_support import APP_ENV, events, load, make_migration, rows

pytestmark = pytest.mark.e2e

SHIPPED_CHECK = """      - name: evaluation-error-rate
        kind: pgboss
        metric: error_rate
        queue: evaluation
        # with confidence over the whole stage, as increment-1's import-error-rate
        window: ${RATE_WINDOW:-30d}
        since_stage: true
        max: ${MAX_EVALUATION_ERROR_RATE:-0.05}
        confidence: ${RATE_CONFIDENCE:-0.95}
        description: evaluation jobs processing successfully
"""


def samples(database_url: str) -> list[tuple[str, dict[str, object]]]:
    found = rows(
        database_url,
        "SELECT verdict, measurement FROM runbook.samples WHERE stage = 'increment-3'"
        " AND check_name = 'evaluation-error-rate' ORDER BY id",
    )
    return [(str(v), m if isinstance(m, dict) else json.loads(m)) for v, m in found]


def test_healthy_stage_is_kept_and_a_faulty_one_rolled_back(
    make_app: AppFactory, pg_url: str, tmp_path: Path
) -> None:
    app = make_app("12", **APP_ENV)
    m = make_migration(tmp_path, pg_url, app)
    assert m.runbook.read_text(encoding="utf-8").count(SHIPPED_CHECK) == 1  # the shipped check, as is
    with load(app) as bg:
        m.climb(["increment-1", "increment-2", "increment-3"])
        del m.env["RATE_CONFIDENCE"]  # from here on, the shipped default
        set_app_flags(pg_url, {"FAULT_FAIL_RATE_EVALUATION": "0.3"})
        healthy = m.watch(60)
        assert m.stage() == "increment-3", healthy.output
        kept = samples(pg_url)
        assert len(kept) >= 60 and {v for v, _ in kept} <= {"pass", "inconclusive"}, kept[-1]
        last = kept[-1][1]
        inputs = last["inputs"]
        assert isinstance(inputs, dict) and inputs["confidence"] == 0.95
        assert inputs["interval"]["upper"] >= inputs["interval"]["lower"] >= 0
        assert "95% interval" in str(last["explanation"])
        assert kept[-1][0] == "pass", last  # hundreds of evaluations at 0.81%: decided below 5%

        set_app_flags(pg_url, {"FAULT_FAIL_RATE_EVALUATION": "0.8"})
        faulty = m.watch(120, expect=4)
        set_app_flags(pg_url, {"FAULT_FAIL_RATE_EVALUATION": None})
        bg.stop()
    assert "auto-rollback increment-3 -> legacy" in faulty.output
    assert m.stage() == "legacy"
    (rollback,) = events(pg_url, "auto-rollback")
    assert rollback["reason"].startswith("watch: evaluation-error-rate: "), rollback["reason"]
    said = re.search(
        r"error rate ([0-9.]+) \((\d+) failed of (\d+) finished .*\), 95% interval ([0-9.e-]+)-([0-9.e-]+): "
        r"the whole interval > max 0\.05",
        rollback["reason"],
    )
    assert said, rollback["reason"]
    failed, finished, lower = int(said.group(2)), int(said.group(3)), float(said.group(4))
    assert 0 < failed <= finished and lower > 0.05
    (fail,) = [v for v in rollback["verdicts"] if v["check"] == "evaluation-error-rate"]
    assert fail["verdict"] == "fail" and fail["inputs"]["interval"]["lower"] > 0.05
