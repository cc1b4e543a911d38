"""Shared plumbing of the benchmarks: a database server (TEST_DATABASE_URL / DATABASE_URL, else an embedded
PostgreSQL), fresh databases, repeated timing with medians and percentiles, result tables and JSON files."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from runbook.embedded import fresh_database as fresh_database  # the benchmarks import these two from here
from runbook.embedded import with_dbname as with_dbname

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
VENV_BIN = REPO / ".venv" / "bin"


@contextlib.contextmanager
def server() -> Iterator[str]:
    """Yield the URL of a PostgreSQL server the benchmark may create databases on."""
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    from runbook.embedded import EmbeddedPostgres

    pg = EmbeddedPostgres()
    try:
        yield pg.start()
    finally:
        pg.stop()


def timed(fn: Callable[[], Any]) -> float:
    """Return the wall time of one call, in seconds."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def percentile(values: Sequence[float], p: float) -> float:
    """Return the p-th percentile (0..100) by linear interpolation."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values: Sequence[float]) -> dict[str, float]:
    """Return median, p90, p99, min and max of timings (seconds) as milliseconds."""
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
    }


def machine() -> dict[str, Any]:
    """Return what the figures were measured on."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_1_5_15": [round(x, 1) for x in os.getloadavg()],
    }


def write_results(name: str, data: dict[str, Any]) -> Path:
    """Write `data` (with the machine description) to bench/results/<name>.json; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(
        json.dumps({"benchmark": name, "machine": machine(), **data}, indent=2, default=str) + "\n"
    )
    print(f"\nresults written to {path.relative_to(REPO)}")
    return path


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a markdown table (pasteable into the README)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")


def met(ok: bool) -> str:
    return "yes" if ok else "NO"
