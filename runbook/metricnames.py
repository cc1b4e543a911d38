"""The names of the watcher's Prometheus metrics: every family, its type, labels and help (`CATALOG`), and the
fixed label values. One list: the collector (runbook/metrics.py) builds its families from it, and the Grafana
dashboard, docs/metrics.md and the scrape in the tests are checked against it. Counters are named without
`_total` (the client appends it)."""

from __future__ import annotations

from runbook.measurement import Verdict

VERDICTS = tuple(v.value for v in Verdict)
STATES = ("ok", "breached", "inconclusive", "erroring")
OPERATIONS = ("advance", "auto-rollback")
CAUSES = ("breach", "verify-failed")
OUTCOMES = ("rolled-back", "not-rolled-back")

CATALOG: dict[str, tuple[str, tuple[str, ...], str]] = {
    # name: (type, labels, help)
    "runbook_stage": ("gauge", ("runbook", "stage"), "1 for the current stage, 0 for the runbook's others"),
    "runbook_state_version": ("gauge", ("runbook",), "The state's version counter (one per transition)"),
    "runbook_stage_entered_timestamp_seconds": ("gauge", ("runbook",), "When the current stage was entered"),
    "runbook_soak_elapsed_seconds": ("gauge", ("runbook",), "Seconds spent in the current stage"),
    "runbook_soak_required_seconds": ("gauge", ("runbook",), "Minimum time in the current stage (soak)"),
    "runbook_soak_remaining_seconds": ("gauge", ("runbook",), "Soak still to go in the current stage"),
    "runbook_check_value": ("gauge", ("runbook", "check"), "Last measured value of a check"),
    "runbook_check_threshold": ("gauge", ("runbook", "check"), "The limit the last value was compared to"),
    "runbook_check_verdict": (
        "gauge",
        ("runbook", "check", "verdict"),
        "1 for the last verdict of a check (pass, fail, inconclusive, error), 0 for the others",
    ),
    "runbook_check_state": (
        "gauge",
        ("runbook", "check", "state"),
        "1 for the check's state against its limits (ok, breached, inconclusive, erroring), 0 for the others",
    ),
    "runbook_check_sample_age_seconds": ("gauge", ("runbook", "check"), "Seconds since the last measurement"),
    "runbook_check_duration_seconds": ("gauge", ("runbook", "check"), "How long the last measurement took"),
    "runbook_flag_drift": ("gauge", ("runbook",), "1 when the actual flags differ from the desired ones"),
    "runbook_flag_backend_up": ("gauge", ("runbook",), "1 when the flag backend could be read"),
    "runbook_watcher_lease_held": ("gauge", ("runbook",), "1 while this watcher holds the runbook's lease"),
    "runbook_state_database_up": ("gauge", ("runbook",), "1 when the last round could read the state"),
    "runbook_watch_interval_seconds": ("gauge", ("runbook",), "Seconds until the next round is due"),
    "runbook_watch_last_round_timestamp_seconds": ("gauge", ("runbook",), "When the last round ended"),
    "runbook_watch_rounds": ("counter", ("runbook",), "Monitoring rounds sampled"),
    "runbook_watch_sample_duration_seconds": (
        "histogram",
        ("runbook",),
        "How long one round's sampling took",
    ),
    "runbook_state_database_errors": ("counter", ("runbook",), "Rounds the state database could not be read"),
    "runbook_transitions": (
        "counter",
        ("runbook", "operation"),
        "Transitions this watcher made, by operation (advance, auto-rollback)",
    ),
    "runbook_rollbacks": (
        "counter",
        ("runbook", "cause"),
        "Automatic rollbacks this watcher made, by cause (breach, verify-failed)",
    ),
    "runbook_breaches": (
        "counter",
        ("runbook", "outcome"),
        "Monitor breaches seen, by outcome (rolled-back, not-rolled-back: out of an irreversible stage)",
    ),
}
"""Every metric family the watcher exports (counters are exposed with `_total`)."""

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def exposed_names() -> set[str]:
    """The sample names a scrape carries for `CATALOG` (counters' `_total`, histograms' series; no `_created`
    series: runbook.metrics disables them)."""
    out: set[str] = set()
    for name, (kind, _labels, _help) in CATALOG.items():
        if kind == "counter":
            out.add(f"{name}_total")
        elif kind == "histogram":
            out |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        else:
            out.add(name)
    return out
