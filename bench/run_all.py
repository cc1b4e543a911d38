"""Run every benchmark in turn (`make bench`): latency, scale, rollback, footprint, transfer, confidence,
ranks, metrics, fleet. Each prints its table and writes bench/results/<name>.json; the exit status is non-zero
when any missed its target."""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = (
    "latency",
    "rollback",
    "footprint",
    "scale",
    "transfer",
    "confidence",
    "ranks",
    "metrics",
    "fleet",
)
"""Quick ones first; scale builds 10 million legacy rows and 2 x 5 million pg-boss jobs; transfer moves 2 x
1 million (about 10 minutes); confidence and ranks replay simulated stages in pure Python (about 2 minutes
and 1); metrics runs the watcher with and without --metrics-port and times scrapes (about 3 minutes); fleet
watches 1, 10 and 100 runbooks from one process in real time (about 6 minutes)."""


def main(argv: list[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    failed = []
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        start = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        code = module.main([])
        print(
            f"=== bench.{name}: {'ok' if code == 0 else 'target missed'} in {time.monotonic() - start:.0f} s"
        )
        if code:
            failed.append(name)
    if failed:
        print(f"\ntargets missed by: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
