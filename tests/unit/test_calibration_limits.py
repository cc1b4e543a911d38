"""`migrate calibrate` at low volume (runbook.calibration): no suggested window or soak beyond the longest
duration a runbook accepts (runbook.spec.budget, 365d). A check whose deciding jobs take longer than that to
arrive gets a note saying so (and what to do) instead of a window, a min_jobs it could never reach, or a
soak; every other suggestion stands, and counts read in English ("1 job an hour", "2 jobs")."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook import confidence as cs
from runbook.baseline import History
from runbook.calibration import MAX_DURATION, Suggestion, _volume, nice_duration, suggest, within_limit
from runbook.commands.calibrate import _edit
from runbook.model import Runbook
from runbook.spec import load_runbook_text
from runbook.spec.budget import MAX_SECONDS
from runbook.units import parse_duration

DAY = 86400.0

QUIET = Path(__file__).parents[1] / "data" / "runbooks" / "calibrate-quiet.yaml"
RATES = (
    QUIET.read_text()
    + """      - name: close-confident
        kind: legacy
        metric: error_rate
        window: 1d
        max: 0.02
        confidence: 0.95
"""
)

COMPARE = """\
version: 1
name: slow
settings:
  database: {url: "postgresql://x/y"}
flags: {A: false}
stages:
  - id: one
    set: {A: true}
    soak:
      duration: 1h
      work:
        - {name: q-work, kind: work, source: pgboss, queue: q, min_jobs: 1}
    monitor:
      - name: q-vs-legacy
        kind: compare
        max: 1.25
        test: mann-whitney
        a: {name: pg, kind: pgboss, metric: run_time, queue: q, percentile: 95, window: 1d}
        b: {name: legacy, kind: legacy, metric: processing_time, type: q, percentile: 95, window: 7d}
"""


def runbook(text: str) -> Runbook:
    return load_runbook_text(text, "stages.yaml", env={})


def durations(suggestions: list[Suggestion]) -> list[float]:
    return [parse_duration(s.value) for s in suggestions if s.key in ("window", "soak", "soak.duration")]


def test_the_longest_suggestion_is_the_runbooks_own_limit() -> None:
    assert MAX_DURATION == MAX_SECONDS["duration"] == 365 * DAY
    assert within_limit(365 * DAY) == "365d"
    assert within_limit(364.2 * DAY) == "365d"  # rounded up to days, still accepted
    assert within_limit(365 * DAY + 1) is None
    assert within_limit(565 * DAY) is None
    assert within_limit(30 * 60) == nice_duration(30 * 60) == "30m"
    assert within_limit(3 * DAY) == "3d"


@pytest.mark.parametrize(
    ("per_hour", "said"),
    [
        (1, "1 job an hour"),
        (4, "4 jobs an hour"),
        (1.04, "1 job an hour"),
        (1 / 24, "1 job a day"),
        (6 / 168, "0.9 jobs a day"),
        (1 / 720, "1 job a month"),
        (2 / 720, "2 jobs a month"),
    ],
)
def test_volumes_count_in_english(per_hour: float, said: str) -> None:
    assert _volume(per_hour) == said


def test_a_check_undecidable_within_365d_gets_a_note_not_a_window_and_the_rest_stands() -> None:
    """One job an hour for 30 days, 12 of 720 failed (1.67%): a 2% limit takes ~22,000 jobs (~916d)."""
    h = History("legacy", "jobs", 30 * DAY, 708, 12)
    assert h.per_hour == 1
    out, notes = suggest(runbook(RATES), lambda queue, legacy: h)
    assert all(s <= MAX_DURATION for s in durations(out)), out
    got = {(s.check, s.key): s for s in out}
    n = cs.jobs_at_rate(12 / 720, 0.05, 0.95, cs.prior_for(0.05))
    assert n is not None
    # the check whose max is raised: max, min_jobs and window, all within the limit
    assert got[("raised-rate", "max")].value == "0.05"
    assert got[("raised-rate", "min_jobs")].value == str(n)
    window = got[("raised-rate", "window")]
    assert (window.value, window.reason) == (
        nice_duration(n * 3600),
        f"at 1 job an hour the 1d window holds about 24 jobs, fewer than the {n} jobs deciding it: "
        f"window: {nice_duration(n * 3600)}",
    )
    # the undecidable ones: nothing suggested (no min_jobs they could never reach), a note each
    assert not [k for k in got if k[0] in ("close-rate", "close-confident")], got
    close = cs.jobs_at_rate(12 / 720, 0.02, 0.95, cs.prior_for(0.02))
    assert close is not None and close > 365 * 24
    (plain,) = [x for x in notes if x.startswith("one close-rate: ")]
    assert plain == (
        "one close-rate: legacy jobs fail at 1.67% (12 of 720 over 30d); deciding its 2% limit at 95% "
        f"confidence takes about {close} jobs, about 915d 19h at 1 job an hour: it cannot be decided within "
        "365d at this volume. No window, min_jobs or soak is suggested for it (a runbook accepts at most "
        "365d): keep the current values (its 1d window then judges about 24 jobs, too few to decide it at "
        "95% confidence), raise max so fewer jobs decide it, or calibrate again once the volume grows"
    )
    (confident,) = [x for x in notes if x.startswith("one close-confident: ")]
    assert "it cannot be decided within 365d at this volume" in confident
    assert "(with confidence it stays inconclusive, holding advance, at this volume)" in confident
    assert "raise max or lower its confidence so fewer jobs decide it" in confident
    assert not [x for x in [*notes, *(s.reason for s in out)] if "1 jobs" in x]


def test_at_higher_volume_the_same_checks_get_their_windows() -> None:
    """The same rates at 100 jobs an hour: every window fits, nothing is skipped."""
    h = History("legacy", "jobs", 30 * DAY, 70800, 1200)
    out, notes = suggest(runbook(RATES), lambda queue, legacy: h)
    got = {(s.check, s.key) for s in out}
    assert ("close-rate", "window") in got and ("close-rate", "min_jobs") in got
    assert ("close-confident", "window") in got
    assert not [x for x in notes if "cannot be decided" in x]
    assert all(s <= MAX_DURATION for s in durations(out))


def test_a_soak_beyond_365d_is_not_suggested_and_said_so() -> None:
    """A compare needing tens of run times against a queue finishing one job a month: the soak (and its
    work minimum) those run times would take is beyond 365d; the compare's own min_jobs stands."""
    runs = tuple(20.0 + (7 * i % 41) for i in range(1, 201))
    h = History("legacy", "q", 30 * DAY, 1, 0, 40.0, 58.0, runs)
    out, notes = suggest(runbook(COMPARE), lambda queue, legacy: h)
    got = {(s.check, s.key): s for s in out}
    needed = int(got[("pg", "min_jobs")].value)
    assert needed * 720 * 3600 > MAX_DURATION
    assert set(got) == {("pg", "min_jobs")}, got
    assert "shows after about" in got[("pg", "min_jobs")].reason
    (note,) = [x for x in notes if x.startswith("one soak: ")]
    assert note.startswith(f"one soak: deciding q-vs-legacy on q takes about {needed} jobs, about ")
    assert (
        "at 1 job a month: it cannot be decided within 365d at this volume. No soak or work minimum" in note
    )


@pytest.mark.parametrize("value", ["400d", "366d"])
def test_a_duration_the_runbook_refuses_is_never_written(value: str) -> None:
    """Defence in depth: were a suggestion ever beyond the limit, the edit leaves it out (with a note) and
    writes the others."""
    at = runbook(RATES).stages[0].monitor[0].location  # raised-rate's mapping
    notes: list[str] = []
    edited = _edit(
        RATES,
        [
            Suggestion("one", "raised-rate", "window", "1d", value, "why", at),
            Suggestion("one", "raised-rate", "max", "0.01", "0.05", "why", at),
        ],
        notes,
    )
    assert value not in edited and "max: 0.05" in edited
    assert notes == [
        f"one raised-rate window: not written (a duration can be at most 365d, got {value}); keep the "
        "current value"
    ]
    load_runbook_text(edited, "stages.yaml", env={})


TYPED = """\
version: 1
name: typed
settings:
  database: {url: "postgresql://x/y"}
  legacy: {type_column: kind}
flags: {A: false}
stages:
  - id: legacy
    monitor:
      - name: history-rate
        kind: legacy
        metric: error_rate
        type: evaluate
        window: 7d
        max: 0.05
        confidence: 0.95
  - id: one
    set: {A: true}
    soak: 1h
    monitor:
      - name: stage-rate
        kind: legacy
        metric: error_rate
        type: evaluate
        window: 7d
        since_stage: true
        max: 0.05
        confidence: 0.95
"""


def test_a_legacy_rate_over_history_before_the_stage_asks_no_soak() -> None:
    """A legacy error_rate without since_stage judges the legacy table's history, which is there before the
    stage is entered: its window is raised to hold the jobs deciding it, but no soak (it used to ask the
    first stage for a soak of 9d, as long as that window). With since_stage the jobs come during the stage:
    the soak holds them. 720 jobs over 7d, 21 failed: 912 jobs decide a 5% limit at 95%."""
    h = History("legacy", "evaluate", 7 * DAY, 699, 21)
    out, _ = suggest(runbook(TYPED), lambda queue, legacy: h)
    got = {(s.stage, s.check, s.key): s.value for s in out}
    assert got[("legacy", "history-rate", "window")] == "9d"
    assert ("legacy", None, "soak") not in got, got
    assert got[("one", None, "soak")] == "9d"


def test_the_jobs_a_window_holds_are_a_whole_number() -> None:
    """200 jobs over 7d hold 28.57 in a 1d window: the reason says about 29 jobs, not 28.57."""
    h = History("legacy", "jobs", 7 * DAY, 195, 5)
    out, _ = suggest(runbook(RATES), lambda queue, legacy: h)
    (window,) = [s for s in out if (s.check, s.key) == ("close-confident", "window")]
    assert "the 1d window holds about 29 jobs, fewer than" in window.reason, window.reason
    few = History("legacy", "jobs", 7 * DAY, 6, 0)  # 0.04 in a 1h window: never 'about 0 jobs'
    out, _ = suggest(runbook(RATES.replace("window: 1d", "window: 1h")), lambda queue, legacy: few)
    reasons = [s.reason for s in out if s.key == "window"]
    assert reasons and all("the 1h window holds about 0.04 jobs" in r for r in reasons), reasons


def test_a_history_with_no_finished_job_says_so_instead_of_zero_counts() -> None:
    """A pg-boss queue whose name matches no legacy type read 'legacy evaluation: 0 jobs finished, 0 failed,
    0.0 an hour'."""
    from runbook.baseline import History
    from runbook.commands.calibrate import CalibrateResult
    from runbook.output import Output

    empty = History("legacy", "evaluation", 7 * 86400, 0, 0)
    full = History("legacy", "evaluate", 7 * 86400, 666, 6, 38.0, 66.0)
    text = Output("text").render(CalibrateResult("rb", 7 * 86400, [empty, full], []))
    assert "legacy   evaluation: no job finished in the window (nothing to calibrate from)\n" in text
    assert "legacy   evaluate: 672 jobs finished, 6 failed (0.89%), 4.0 an hour, run time p50 38s" in text
    assert "0 jobs finished" not in text
