"""One monitoring round, shared by `gate` and `watch`: measure the current stage's monitors, store the
round's measurements as samples (one transaction, which also counts each into its check's tally), and judge
every check's tally in the stage against its limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from runbook import engine, limits
from runbook.errors import RunbookError
from runbook.measurement import Measurement, Verdict
from runbook.model import CheckSpec
from runbook.session import Session
from runbook.state.samples import NewSample


@dataclass
class Judged:
    spec: CheckSpec
    measurement: Measurement
    assessment: limits.Assessment
    threshold: float | None = None


@dataclass
class Round:
    stage: str
    judged: list[Judged] = field(default_factory=list)
    stored: bool = True
    store_error: str | None = None

    @property
    def measurements(self) -> list[Measurement]:
        return [j.measurement for j in self.judged]

    @property
    def breached(self) -> list[Judged]:
        return [j for j in self.judged if j.assessment.breached]

    @property
    def inconclusive(self) -> list[Judged]:
        return [j for j in self.judged if j.assessment.state == "inconclusive"]

    @property
    def holding(self) -> bool:
        """Every monitor's last measurement passes and no limit is breached."""
        return all(j.measurement.verdict is Verdict.PASS and not j.assessment.breached for j in self.judged)

    def breach_reason(self) -> str:
        return "; ".join(
            f"{j.spec.name}: {j.assessment.reason} (last: {j.measurement.explanation})" for j in self.breached
        )


def sample(session: Session, cur: engine.Current, *, record: bool = True) -> Round:
    """Measure the monitors (and soak work checks) of the current stage once; store and judge them."""
    specs = [*cur.stage.monitor, *cur.stage.soak.work]
    measured = engine.measure(session, specs, cur.stage.id, cur.entered_at)
    out = Round(cur.stage.id, stored=record)
    rb = session.runbook
    tallies: dict[str, limits.Tally] = {}
    if record and cur.recorded:
        rows = [
            NewSample(spec.name, m.to_json(), m.verdict, m.value)
            for spec, m in zip(specs, measured, strict=True)
        ]
        try:
            tallies = session.store().record_round(rb.name, cur.stage.id, cur.entered_at, rows)
        except RunbookError as exc:
            out.stored, out.store_error = False, exc.message
    for spec, m in zip(specs, measured, strict=True):
        t = tallies.get(spec.name) or limits.tally([m.verdict])
        # soak work checks are inconclusive until reached: they never breach
        lim = spec.limits if spec in cur.stage.monitor else None
        assessment = limits.judge(t, lim) if lim else limits.assess([m.verdict])
        if lim is None and assessment.breached:
            assessment = limits.Assessment("inconclusive", "not enough work yet")
        out.judged.append(Judged(spec, m, assessment, _threshold(m)))
    return out


def _threshold(m: Measurement) -> float | None:
    for key in ("max", "min", "threshold"):
        v = m.inputs.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return None
