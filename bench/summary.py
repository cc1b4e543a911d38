"""Print one markdown table of the headline figures from bench/results/*.json (for the README):
`.venv/bin/python -m bench.summary`."""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.common import RESULTS, met, print_table


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rows() -> list[list[str]]:
    """Return the rows: what, median, ratio, target, met?"""
    out: list[list[str]] = []
    if lat := _load("latency"):
        for name, s in lat["commands"].items():
            out.append(
                [
                    name,
                    f"{s['median_ms']:.0f} ms",
                    f"{s['ratio_to_floor']:.2f}x floor, {s['ratio_to_alembic']:.2f}x alembic",
                    s.get("target") or "-",
                    "-" if s.get("met") is None else met(bool(s["met"])),
                ]
            )
    if sc := _load("scale"):
        for phase, by_major in sc["phases"].items():
            for major, r in by_major.items():
                errors = sum(1 for c in r["results"] if c["verdict"] == "error")
                label = "real indexes only" if phase == "real_indexes" else "with the indexes the checks name"
                fast = r["gate"]["median_ms"] < sc["target_s"] * 1000 and (
                    phase == "real_indexes" or not errors
                )
                bounded = (
                    "all index-bounded" if r["all_index_bounded"] else f"{len(r['unbounded'])} not bounded"
                )
                out.append(
                    [
                        f"gate: {r['checks']} database checks, pg-boss {major}, {label}",
                        f"{r['gate']['median_ms']:.0f} ms",
                        f"{errors} in error, {bounded}",
                        "< 1 s, index-bounded",
                        f"time {met(fast)}, bounded {met(r['all_index_bounded'])}",
                    ]
                )
    if (rb := _load("rollback")) and rb.get("rollback"):
        f = rb["rollback"]["command_start_to_app_on_legacy"]
        out.append(
            [
                "migrate rollback: start -> app routes to legacy",
                f"{f['median_ms']:.0f} ms",
                f"p99 {f['p99_ms']:.0f} ms ({f['n']} trials)",
                f"p99 < {rb['target_p99_ms']:.0f} ms",
                met(f["p99_ms"] < rb["target_p99_ms"]),
            ]
        )
    if rb and rb.get("preempt"):
        p = rb["preempt"]
        f = p["command_start_to_flags_safe"]
        out.append(
            [
                "migrate rollback during an advance in verify: start -> flags safe",
                f"{f['median_ms']:.0f} ms",
                f"p95 {f['p95_ms']:.0f}, p99 {f['p99_ms']:.0f} ms ({f['n']} trials),"
                f" preempted {p['advance_preempted_at_verify']}/{p['trials']},"
                f" {p['commits_after_rollback']} commits after",
                f"p99 < {rb['target_p99_ms']:.0f} ms",
                met(bool(p["met"])),
            ]
        )
    if rb and rb.get("watch"):
        w = rb["watch"]["breaching_sample_to_app_on_legacy"]
        out.append(
            [
                "watch 1s: breaching sample -> app routes to legacy",
                f"{w['median_ms']:.0f} ms",
                f"p99 {w['p99_ms']:.0f} ms ({w['n']} trials)",
                "-",
                "-",
            ]
        )
    if fp := _load("footprint"):
        r = fp["rss"]
        out.append(
            [
                f"watch: RSS over {fp['cli']['rounds']:,} samples",
                f"{r['rss_end_mb']:.0f} MB",
                f"{r['rss_first_tenth_mb']:.0f} -> {r['rss_end_mb']:.0f} MB (tenths),"
                f" peak {r['rss_peak_mb']:.0f} MB",
                f"no growth, < {fp['target_rss_mb']:.0f} MB",
                met(bool(fp["met"])),
            ]
        )
        t = fp["per_sample"]
        out.append(
            [
                "watch: time per sample (first -> last tenth)",
                f"{t.get('last_tenth_ms', 0):.0f} ms",
                f"{t.get('first_tenth_ms', 0):.0f} -> {t.get('last_tenth_ms', 0):.0f} ms",
                "-",
                "-",
            ]
        )
        out.append(
            [
                "watch: statements / transactions per sample",
                f"{fp['statements']['statements_per_sample']}",
                f"{fp['cli']['xact_per_sample']} transactions",
                "-",
                "-",
            ]
        )
    from bench.transfer import table_rows

    for name in ("transfer", "transfer-delete", "transfer-archive"):  # moved: cancel, delete, archive
        if tr := _load(name):
            out.extend(table_rows(tr))
    if conf := _load("confidence"):
        from bench.confidence import table_rows as confidence_rows

        out.extend(confidence_rows(conf))
    return out


def main() -> int:
    print_table(["what", "median", "ratio / detail", "target", "met?"], rows())
    return 0


if __name__ == "__main__":
    sys.exit(main())
