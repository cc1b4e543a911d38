"""Render the gate's results for CI: JUnit XML (one testcase per check) and a markdown summary table.

Both take measurements as `runbook.measurement.Measurement` objects or as their `to_json()` dicts (as
stored in events). Verdicts map to JUnit as: fail -> `<failure>`, error -> `<error>`, inconclusive ->
`<skipped>` (it neither passes nor fails a gate by itself), pass -> a plain testcase. Value, unit,
threshold and verdict are testcase properties and are repeated in the failure message, so every CI
reporter shows them. Templates and value formats: `runbook.rendering`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runbook.measurement import Measurement
from runbook.rendering import VERDICT_ICONS, template_env

SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def as_dicts(measurements: Sequence[Measurement | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Normalise measurements to `Measurement.to_json()` dicts."""
    return [m.to_json() if isinstance(m, Measurement) else dict(m) for m in measurements]


def _xml_text(value: Any) -> str:
    return _XML_INVALID.sub("\ufffd", "" if value is None else str(value))


def render_junit(
    measurements: Sequence[Measurement | Mapping[str, Any]],
    suite: str,
    *,
    properties: Mapping[str, Any] | None = None,
    timestamp: dt.datetime | None = None,
    hostname: str | None = None,
) -> str:
    """Render JUnit XML: one `<testsuite name=suite>` with a testcase per measurement.

    `properties` (e.g. runbook, stage) become suite properties. Counts in `tests`, `failures`, `errors`
    and `skipped` match the testcases; time is the sum of the measurements' durations in seconds.
    """
    cases = as_dicts(measurements)
    env = template_env(autoescape=True)
    env.filters["x"] = _xml_text
    env.filters["json"] = lambda v: json.dumps(v, default=str, ensure_ascii=False, sort_keys=True)
    counts = {v: sum(1 for c in cases if c.get("verdict") == v) for v in ("fail", "error", "inconclusive")}
    seconds = sum(float(c.get("duration_ms") or 0) for c in cases) / 1000
    when = (timestamp or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0, tzinfo=None)
    return env.get_template("gate/junit.xml.j2").render(
        suite=suite,
        cases=cases,
        failures=counts["fail"],
        errors=counts["error"],
        skipped=counts["inconclusive"],
        time=f"{seconds:.3f}",
        timestamp=when.isoformat(),
        hostname=hostname or socket.gethostname(),
        properties=dict(properties or {}),
    )


def render_summary(
    measurements: Sequence[Measurement | Mapping[str, Any]]
    | Mapping[str, Sequence[Measurement | Mapping[str, Any]]],
    title: str,
    *,
    outcome: str | None = None,
) -> str:
    """Render a markdown summary: a title, an outcome line and a table (check, verdict, value, threshold);
    measurements by heading (e.g. the gate's monitors of the stage and preflight of the next one): one
    table under each heading that has any."""
    env = template_env(autoescape=False)
    env.filters["cell"] = _md_cell
    parts = measurements.items() if isinstance(measurements, Mapping) else [("", measurements)]
    sections = [(heading, as_dicts(ms)) for heading, ms in parts]
    cases = [c for _, section in sections for c in section]
    counts = {v: sum(1 for c in cases if c.get("verdict") == v) for v in VERDICT_ICONS}
    return env.get_template("gate/summary.md.j2").render(
        title=title, sections=[(h, cs) for h, cs in sections if cs], counts=counts, outcome=outcome
    )


def _md_cell(value: Any) -> str:
    text = " ".join(_XML_INVALID.sub("", str(value)).split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def write_summary(text: str, path: str | os.PathLike[str] | None = None) -> Path | None:
    """Append `text` to `path`, else to `$GITHUB_STEP_SUMMARY`; return the file, or None if neither is set."""
    target = path if path is not None else os.environ.get(SUMMARY_ENV)
    if not target:
        return None
    file = Path(target)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("a", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    return file
