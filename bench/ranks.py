"""Replay benchmark of the latency decision (issue 15): the shipped `evaluation-p95-vs-legacy` compare judged
by today's rule (p95 ratio above `max` rolls back) and by `test: mann-whitney` (the ratio above `max` AND the
run times slower by the rank test at `alpha`), on the same generated streams, side by side.

Each simulated stage is increment-3's 24 h soak: pg-boss evaluations finish as a Poisson stream (40 an hour,
the issue's example) with run times from the legacy distribution, unchanged (healthy) or slowed down by 30%
(and 2x); the baseline is a fresh week of legacy run times at the same rate (its p95 over the whole week, the
test ranking its latest 5,000, `max_samples`). The watcher looks every 60 s once the pg-boss side has
`min_jobs` 50 (MIN_EVALUATION_JOBS), `max: 1.25`, `alpha: 0.01`; a failing look rolls back. The legacy run
times are lognormal, median 30 s, sigma 0.5 (an assumption: LLM evaluations, a long right tail). Pure Python,
seeded: `python -m bench.ranks [--stages N]`.
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import statistics
import sys
import time
from typing import Any

from bench.common import met, print_table, write_results
from runbook.ranktest import mann_whitney

MAX_RATIO = 1.25  # the shipped MAX_EVALUATION_P95_RATIO
ALPHA = 0.01
MIN_JOBS = 50  # the shipped MIN_EVALUATION_JOBS on the pg-boss side
MAX_SAMPLES = 5000
PER_HOUR = 40.0
INTERVAL = 60.0
SOAK = 24 * 3600.0
BASELINE = 7 * 24 * 3600.0
MEDIAN, SIGMA = 30.0, 0.5
CASES = {"healthy": 1.0, "30% slower": 1.3, "2x slower": 2.0}
RULES = ("today", "mann-whitney")
GOAL_FALSE_ROLLBACKS = 0.01


def percentile(ordered: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont over sorted values."""
    k = q * (len(ordered) - 1)
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run_time(rng: random.Random, factor: float) -> float:
    return factor * rng.lognormvariate(math.log(MEDIAN), SIGMA)


def stage(rng: random.Random, factor: float) -> dict[str, int | None]:
    """One stage: for each rule, after how many pg-boss jobs it rolled back (None: never in the soak)."""
    week = [run_time(rng, 1.0) for _ in range(int(PER_HOUR * BASELINE / 3600))]  # in finishing order
    base_p95 = percentile(sorted(week), 0.95)
    latest = week[-MAX_SAMPLES:]
    finish, jobs = 0.0, []
    while True:
        finish += rng.expovariate(PER_HOUR / 3600)
        if finish > SOAK:
            break
        jobs.append((finish, run_time(rng, factor)))
    out: dict[str, int | None] = dict.fromkeys(RULES)
    seen: list[float] = []
    raw: list[float] = []
    i, look = 0, INTERVAL
    while look <= SOAK and any(v is None for v in out.values()):
        while i < len(jobs) and jobs[i][0] <= look:
            bisect.insort(seen, jobs[i][1])
            raw.append(jobs[i][1])
            i += 1
        look += INTERVAL
        if len(seen) < MIN_JOBS:
            continue
        if percentile(seen, 0.95) / base_p95 <= MAX_RATIO:
            continue
        if out["today"] is None:
            out["today"] = len(seen)
        if out["mann-whitney"] is None and mann_whitney(raw, latest).p_greater < ALPHA:
            out["mann-whitney"] = len(seen)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stages", type=int, default=1000, help="simulated stages per case (default 1000)")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.monotonic()
    results: dict[str, Any] = {}
    rows = []
    for case, factor in CASES.items():
        outcomes = [stage(rng, factor) for _ in range(args.stages)]
        for rule in RULES:
            after = [n for o in outcomes if (n := o[rule]) is not None]
            share = len(after) / args.stages
            med = statistics.median(after) if after else None
            results[f"{case} / {rule}"] = {
                "stages": args.stages,
                "rolled_back": len(after),
                "rolled_back_share": share,
                "median_jobs_to_rollback": med,
                "median_hours_to_rollback": None if med is None else round(med / PER_HOUR, 2),
            }
            rows.append([case, rule, f"{share:.1%} ({len(after)})", "-" if med is None else f"{med:g}"])
    print_table(["stages", "rule", "rolled back", "median jobs to rollback"], rows)
    false = results["healthy / mann-whitney"]["rolled_back_share"]
    today_slow = results["30% slower / today"]
    test_slow = results["30% slower / mann-whitney"]
    goals = {
        "false_rollbacks_met": false <= GOAL_FALSE_ROLLBACKS,
        "detects_30pct_share": test_slow["rolled_back_share"],
        "today_detects_30pct_share": today_slow["rolled_back_share"],
    }
    today = results["healthy / today"]["rolled_back_share"]
    print(
        f"\nfalse rollbacks with the test {false:.1%} (goal <= {GOAL_FALSE_ROLLBACKS:.0%}: "
        f"{met(goals['false_rollbacks_met'])}); today's rule {today:.1%}"
    )
    write_results(
        "ranks",
        {
            "settings": {
                "max": MAX_RATIO,
                "alpha": ALPHA,
                "min_jobs": MIN_JOBS,
                "per_hour": PER_HOUR,
                "interval_s": INTERVAL,
                "soak_s": SOAK,
                "baseline_s": BASELINE,
                "legacy_run_time": f"lognormal median {MEDIAN}s sigma {SIGMA}",
                "seed": args.seed,
            },
            "results": results,
            "goals": goals,
            "seconds": round(time.monotonic() - started, 1),
        },
    )
    return 0 if goals["false_rollbacks_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
