"""Replay benchmark of the error-rate decision (issue 15): today's fixed rule (`min_jobs` finished jobs in the
window, then the point estimate against `max`) against the sequential test (`confidence:`, the anytime-valid
interval of runbook.confidence), on the same generated job streams, side by side.

Each simulated stage is a 24 h soak (the shipped increment-3) of jobs finishing as a Poisson stream, each one
failed with the stage's true error rate: healthy 1%, faulty 10% and 20%, against the shipped `max: 0.05`.
The watcher looks every 60 s (settings.defaults.interval) at the jobs finished in the check's window: the
`window: 1h` with `since_stage: true` the runbook shipped before, or the whole stage (a window as long as the
soak, as the shipped runbook's `since_stage: true` with RATE_WINDOW 30d). A check that
fails rolls the stage back (failure_limit 0). Pure Python, seeded: `python -m bench.confidence [--stages N]`.
Run times (and the issue's 30% slowdown) belong to the latency comparison, not measured here.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import met, print_table, write_results
from runbook.confidence import decide, prior_for

LIMIT = 0.05  # the shipped max of every error_rate check but increment-2's (0)
MIN_JOBS = 10  # the shipped MIN_JOBS_FOR_RATES
CONFIDENCE = 0.95
INTERVAL = 60.0  # settings.defaults.interval
SOAK = 24 * 3600.0  # increment-3's soak (SOAK_INCREMENT_3)
WINDOWS = {"1h (shipped before)": 3600.0, "whole stage (shipped)": SOAK}
RATES_PER_HOUR = (5.0, 40.0, 200.0)
"""Finished jobs an hour: 5 is the shipped runbook's floor for imports (MIN_IMPORT_JOBS 20 in increment-1's
4 h soak; evaluations assume even fewer, 50 in 24 h); 40 is the issue's example of evaluation traffic; 200 a
busy queue."""
TRUE_RATES = {"healthy 1%": 0.01, "faulty 10%": 0.10, "faulty 20%": 0.20}
RULES: dict[str, float | None] = {"today": None, "sequential": CONFIDENCE}
"""A rule's name and its confidence (None: today's rule)."""
SENSITIVITY = (0.8, 0.9, 0.95, 0.99)
"""Confidences of the sequential test compared at 40 jobs/h over the whole stage."""
GOAL_FALSE_ROLLBACKS = 0.01


@dataclass
class Outcome:
    """One rule on one simulated stage: when it rolled back (None: never), and whether its check passed at
    the end of the soak (so the stage could advance)."""

    rolled_back_after_jobs: int | None = None
    rolled_back_after_s: float | None = None
    passing_at_end: bool = False
    first_pass_after_jobs: int | None = None


@dataclass
class Tally:
    stages: int = 0
    jobs: list[int] = field(default_factory=list)
    hours: list[float] = field(default_factory=list)
    passing_at_end: int = 0
    first_pass: list[int] = field(default_factory=list)

    def add(self, o: Outcome) -> None:
        self.stages += 1
        self.passing_at_end += o.passing_at_end
        self.first_pass += [] if o.first_pass_after_jobs is None else [o.first_pass_after_jobs]
        if o.rolled_back_after_jobs is not None and o.rolled_back_after_s is not None:
            self.jobs.append(o.rolled_back_after_jobs)
            self.hours.append(o.rolled_back_after_s / 3600)

    def figures(self) -> dict[str, Any]:
        hours = _median_or_never(self.hours, self.stages)
        return {
            "stages": self.stages,
            "rolled_back": len(self.jobs),
            "rollback_rate": len(self.jobs) / self.stages,
            "median_jobs_to_rollback": _median_or_never(self.jobs, self.stages),
            "median_hours_to_rollback": None if hours is None else round(hours, 2),
            "passing_at_end": self.passing_at_end / self.stages,
            "median_jobs_to_first_pass": _median_or_never(self.first_pass, self.stages),
        }


def _median_or_never(values: Sequence[float], stages: int) -> float | None:
    """The median over all stages, one where it never happened counting as never (None when that is over
    half of them): e.g. the median number of jobs until a faulty stage is rolled back."""
    if 2 * len(values) < stages or not values:
        return None
    ranked = sorted(values) + [math.inf] * (stages - len(values))
    mid = statistics.median(ranked)
    return None if math.isinf(mid) else mid


def stream(rng: random.Random, per_hour: float, rate: float) -> list[tuple[float, bool]]:
    """Finish times (s) and outcomes (True: failed) of the jobs of one stage."""
    out: list[tuple[float, bool]] = []
    t = 0.0
    while True:
        t += rng.expovariate(per_hour / 3600)
        if t > SOAK:
            return out
        out.append((t, rng.random() < rate))


def replay(
    jobs: Sequence[tuple[float, bool]], window: float, rules: dict[str, float | None]
) -> dict[str, Outcome]:
    """Watch one stage every INTERVAL; both rules see the same counts at the same looks."""
    prior = prior_for(LIMIT)
    out = {rule: Outcome() for rule in rules}
    last = {rule: "none" for rule in rules}
    head = tail = n = x = 0  # jobs[tail:head] are in the window
    look = INTERVAL
    while look <= SOAK:
        while head < len(jobs) and jobs[head][0] <= look:
            n, x, head = n + 1, x + jobs[head][1], head + 1
        while tail < head and jobs[tail][0] <= look - window:
            n, x, tail = n - 1, x - jobs[tail][1], tail + 1
        today = "undecided" if n < MIN_JOBS else ("above" if x / n > LIMIT else "below")
        verdicts = {
            rule: today if conf is None else decide(x, n, LIMIT, conf, prior) for rule, conf in rules.items()
        }
        for rule, side in verdicts.items():
            o = out[rule]
            if o.rolled_back_after_jobs is None:
                last[rule] = side
                if side == "below" and o.first_pass_after_jobs is None:
                    o.first_pass_after_jobs = head
                if side == "above":
                    o.rolled_back_after_jobs, o.rolled_back_after_s = head, look
        if all(o.rolled_back_after_jobs is not None for o in out.values()):
            break
        look += INTERVAL
    for rule, o in out.items():
        o.passing_at_end = o.rolled_back_after_jobs is None and last[rule] == "below"
    return out


def _streams(stages: int, seed: int, per_hour: float, rate: float) -> list[list[tuple[float, bool]]]:
    n_stages = stages if rate < LIMIT else max(stages // 4, 200)
    rng = random.Random(f"{seed}-{per_hour}-{rate}")
    return [stream(rng, per_hour, rate) for _ in range(n_stages)]


def _tally(
    streams: list[list[tuple[float, bool]]], window: float, rules: dict[str, float | None]
) -> dict[str, Tally]:
    tallies = {rule: Tally() for rule in rules}
    for jobs in streams:
        for rule, o in replay(jobs, window, rules).items():
            tallies[rule].add(o)
    return tallies


def run(stages: int, seed: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for per_hour in RATES_PER_HOUR:
        for label, rate in TRUE_RATES.items():
            streams = _streams(stages, seed, per_hour, rate)
            for wname, window in WINDOWS.items():
                for rule, t in _tally(streams, window, RULES).items():
                    case = {"jobs_per_hour": per_hour, "stage": label, "true_rate": rate, "window": wname}
                    rows.append(case | {"rule": rule} | t.figures())
    # the price of each confidence, at 40 jobs/h over the whole stage (the same streams as above)
    rules: dict[str, float | None] = {f"sequential {c:g}": c for c in SENSITIVITY}
    sensitivity = []
    for label, rate in TRUE_RATES.items():
        streams = _streams(stages, seed, 40.0, rate)
        for rule, t in _tally(streams, SOAK, rules).items():
            sensitivity.append({"stage": label, "true_rate": rate, "rule": rule} | t.figures())
    return {"rows": rows, "sensitivity": sensitivity}


def goals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per arrival rate and window: false rollbacks of the sequential test <= 1/100 healthy stages, and its
    median jobs until a 10% fault is rolled back no more than today's rule's."""
    out = []
    for per_hour in RATES_PER_HOUR:
        for wname in WINDOWS:
            pick = {
                (r["stage"], r["rule"]): r
                for r in rows
                if r["jobs_per_hour"] == per_hour and r["window"] == wname
            }
            false = pick[("healthy 1%", "sequential")]["rollback_rate"]
            seq = pick[("faulty 10%", "sequential")]["median_jobs_to_rollback"]
            today = pick[("faulty 10%", "today")]["median_jobs_to_rollback"]
            faster = seq is not None and (today is None or seq <= today)
            out.append(
                {
                    "jobs_per_hour": per_hour,
                    "window": wname,
                    "false_rollbacks_today": pick[("healthy 1%", "today")]["rollback_rate"],
                    "false_rollbacks_sequential": false,
                    "false_rollbacks_met": false <= GOAL_FALSE_ROLLBACKS,
                    "median_jobs_10pct_today": today,
                    "median_jobs_10pct_sequential": seq,
                    "detection_no_slower_met": faster,
                }
            )
    return out


def table_rows(data: dict[str, Any]) -> list[list[str]]:
    """Rows for bench.summary (what, median, detail, target, met?): the goals at 40 jobs an hour."""
    out = []
    for g in data["goals"]:
        if g["jobs_per_hour"] != 40:
            continue
        stages = data["settings"]["stages"]
        window = {v: k for k, v in WINDOWS.items()}.get(
            data["settings"]["windows_s"][g["window"]], g["window"]
        )
        out.append(
            [
                f"error rate, 40 jobs/h, window {window}: 10% fault rolled back after (jobs), "
                "sequential 95% / today's rule",
                f"{_num(g['median_jobs_10pct_sequential'])} / {_num(g['median_jobs_10pct_today'])}",
                f"false rollbacks {100 * g['false_rollbacks_sequential']:.2f}% / "
                f"{100 * g['false_rollbacks_today']:.1f}% of {stages:,} healthy (1%) stages",
                "false rollbacks <= 1%, 10% fault no slower",
                f"false {met(g['false_rollbacks_met'])}, speed {met(g['detection_no_slower_met'])}",
            ]
        )
    return out


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:g}"


HEADERS = ("stage", "rule", "rolled back", "median jobs", "median h", "passing at 24h", "jobs to 1st pass")


def _cells(r: dict[str, Any]) -> list[str]:
    return [
        r["stage"],
        r["rule"],
        f"{r['rolled_back']}/{r['stages']} ({100 * r['rollback_rate']:.1f}%)",
        _num(r["median_jobs_to_rollback"]),
        _num(r["median_hours_to_rollback"]),
        f"{100 * r['passing_at_end']:.1f}%",
        _num(r["median_jobs_to_first_pass"]),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.confidence", description=__doc__)
    ap.add_argument("--stages", type=int, default=2000, help="healthy stages per case (faulty: a quarter)")
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args(argv)
    began = time.monotonic()
    data = run(args.stages, args.seed)
    checked = goals(data["rows"])
    print_table(
        ["jobs/h", "window", *HEADERS],
        [[_num(r["jobs_per_hour"]), r["window"], *_cells(r)] for r in data["rows"]],
    )
    print()
    print_table(["stage", *HEADERS[1:]], [[r["stage"], *_cells(r)[1:]] for r in data["sensitivity"]])
    print()
    heads = ["jobs/h", "window", "false rollbacks today / sequential", "<= 1%?", "10% fault: median jobs"]
    print_table(
        [*heads, "no slower?"],
        [
            [
                _num(g["jobs_per_hour"]),
                g["window"],
                f"{100 * g['false_rollbacks_today']:.1f}% / {100 * g['false_rollbacks_sequential']:.2f}%",
                met(g["false_rollbacks_met"]),
                f"{_num(g['median_jobs_10pct_today'])} / {_num(g['median_jobs_10pct_sequential'])}",
                met(g["detection_no_slower_met"]),
            ]
            for g in checked
        ],
    )
    seconds = round(time.monotonic() - began, 1)
    settings = {
        "limit": LIMIT,
        "min_jobs": MIN_JOBS,
        "confidence": CONFIDENCE,
        "prior": vars(prior_for(LIMIT)),
    }
    settings |= {"interval_s": INTERVAL, "soak_s": SOAK, "windows_s": WINDOWS} | vars(args)
    write_results("confidence", {"settings": settings, "seconds": seconds, "goals": checked, **data})
    all_met = all(g["false_rollbacks_met"] and g["detection_no_slower_met"] for g in checked)
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
