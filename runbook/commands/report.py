"""`migrate report`: one self-contained HTML file with the stage timeline, every decision with the measured
values behind it, and charts of the monitored values over time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.errors import UsageError
from runbook.exitcodes import ExitCode
from runbook.result import FieldsJson
from runbook.session import Session


@dataclass
class ReportResult(FieldsJson):
    path: str
    events: int
    samples: int
    checks: int
    template: str = "report"
    exit_code: ExitCode = ExitCode.OK


def report(
    session: Session, *, path: str = "runbook-report.html", max_samples: int = 200_000
) -> ReportResult:
    """Read events and samples from the state store and write the HTML report to `path`."""
    from runbook.report import render_report

    rb = session.runbook
    store = session.store()
    events = [e.to_json() for e in store.events(rb.name, limit=None)]
    samples = []
    for s in store.all_samples(rb.name, limit=max_samples):
        m = s.measurement
        threshold = None
        for key in ("max", "min", "threshold"):
            v = (m.get("inputs") or {}).get(key)
            if isinstance(v, int | float) and not isinstance(v, bool):
                threshold = float(v)
                break
        samples.append(
            {
                "at": s.at,
                "stage": s.stage,
                "check": s.check,
                "verdict": s.verdict.value,
                "value": s.value if isinstance(s.value, int | float) else None,
                "unit": m.get("unit", ""),
                "threshold": threshold,
                **_interval(m.get("inputs") or {}),
            }
        )
    stages = [{"id": s.id, "title": s.title} for s in rb.stages]
    html = render_report(rb.name, stages, events, samples, session.clock())
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot write the report to {path!r}: {exc.strerror or exc}",
            hint="pass --out with a file path in a writable folder",
        ) from None
    return ReportResult(str(out), len(events), len(samples), len({s["check"] for s in samples}))


def _interval(inputs: dict[str, Any]) -> dict[str, float]:
    """`lower` and `upper` of a rate judged with confidence (checks/rates.py), for the chart's band."""
    iv = inputs.get("interval")
    if isinstance(iv, dict) and all(isinstance(iv.get(k), int | float) for k in ("lower", "upper")):
        return {"lower": float(iv["lower"]), "upper": float(iv["upper"])}
    return {}
