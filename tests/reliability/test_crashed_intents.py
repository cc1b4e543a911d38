"""Nobody judges over a crashed intent. An advance killed (SIGKILL) while it polls verify leaves the flags
flipped and the stage not recorded; `gate` and `watch` (each judge the state) first reconcile the unfinished
intent as advance does (revert, recorded), and only then measure, on the reverted stage. An intent whose
advance is still alive (it holds the lock) is in flight, not crashed: gate reports it and exits 1 without
touching it; watch waits for it."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter

import pytest

from tests.reliability.conftest import NAME, Home, Stderr, record, wait_for_file

JUDGES = {"gate": ("-o", "json", "gate"), "watch": ("watch", "--interval", "0.5s", "--max-samples", "1")}
RESULTS: Counter[str] = Counter()


def _state(home: Home) -> dict[str, object]:
    status = home.run("-o", "json", "status")
    seen: dict[str, object] = json.loads(status.out)
    return seen


@pytest.mark.parametrize("judge", sorted(JUDGES))
def test_a_judge_reconciles_an_advance_killed_mid_verify(home: Home, judge: str) -> None:
    adv = Stderr(home.popen("advance", "--yes", extra={"VERIFY_VALUE": "2"}))  # verify keeps failing
    adv.wait_for("verify: waiting for")
    os.kill(adv.proc.pid, signal.SIGKILL)
    adv.finish()
    assert home.flags()["PGBOSS_ENABLED"] == "true"  # the crash left the flip in place, stage legacy
    assert _state(home)["pending_intent"] is not None

    ran = home.run(*JUDGES[judge])
    said = json.loads(ran.out)["reconciled"] if judge == "gate" else ran.err
    assert "unfinished advance" in said and "reverted" in said, ran.text
    assert home.flags()["PGBOSS_ENABLED"] == "false"  # reverted before anything was judged
    seen = _state(home)
    assert (seen["stage"], seen["pending_intent"], seen["drift"]) == ("legacy", None, []), seen
    reconciles = [e for e in home.events() if e.operation == "reconcile"]
    assert [(e.outcome, e.to_stage) for e in reconciles] == [("reverted", "legacy")]
    if judge == "gate":
        assert json.loads(ran.out)["stage"] == "legacy", ran.out  # judged the stage it reverted to
    with home.store() as store:
        assert store.samples(NAME, "one", "healthy") == []  # never sampled the half-entered stage
    RESULTS["killed"] += 1
    RESULTS["reconciled"] += len(reconciles)


@pytest.mark.parametrize("judge", [("plan",), ("plan", "--check"), ("advance", "--dry-run")])
def test_a_read_only_judge_reports_a_crashed_intent(home: Home, judge: tuple[str, ...]) -> None:
    adv = Stderr(home.popen("advance", "--yes", extra={"VERIFY_VALUE": "2"}))
    adv.wait_for("verify: waiting for")
    os.kill(adv.proc.pid, signal.SIGKILL)
    adv.finish()

    ran = home.run("-o", "json", *judge)
    assert ran.code == 1, ran.text  # never "ready" over a half-done flip
    blockers = json.loads(ran.out)["blockers"]
    assert [b["code"] for b in blockers] == ["intent"], blockers
    assert "unfinished advance" in blockers[0]["message"]
    assert home.flags()["PGBOSS_ENABLED"] == "true"  # read-only: it reports, it does not repair
    assert _state(home)["pending_intent"] is not None
    RESULTS["reported"] += 1


@pytest.mark.parametrize("judge", sorted(JUDGES))
def test_a_judge_does_not_touch_an_advance_in_flight(home: Home, judge: str) -> None:
    marker, release = home.dir / "paused", home.dir / "release"
    extra = {"RUNBOOK_PAUSE_AT": "advance:flipped", "RUNBOOK_PAUSE_FILE": str(marker)}
    # the advance stays paused until the judge has seen it in flight (a fixed pause raced a slow start)
    adv = home.popen("advance", "--yes", extra={**extra, "RUNBOOK_PAUSE_RELEASE": str(release)})
    wait_for_file(marker, adv)

    if judge == "gate":
        ran = home.run(*JUDGES[judge])
        release.touch()
        assert ran.code == 1, ran.text
        assert json.loads(ran.out)["error"]["type"] == "InFlightError", ran.text
        assert "a flip is in progress" in ran.out, ran.text
    else:  # the watcher waits for the flip to finish, then samples the stage it committed
        watch = Stderr(home.popen(*JUDGES[judge]))
        watch.wait_for("waiting: unfinished advance")
        release.touch()
        code, wout, werr = watch.finish()
        assert code == 0, wout + werr
    out, err = adv.communicate(timeout=60)
    assert adv.returncode == 0, out + err  # nobody reverted it under its feet
    seen = _state(home)
    assert (seen["stage"], seen["pending_intent"], seen["drift"]) == ("one", None, []), seen
    assert [e for e in home.events() if e.operation == "reconcile"] == []
    RESULTS["in flight"] += 1


def test_zz_report_crashed_intents() -> None:
    if RESULTS["killed"]:
        record(
            f"RELIABILITY crashed intents: {RESULTS['killed']} advances killed mid-verify, "
            "then gate or watch: "
            f"{RESULTS['reconciled']} reconciled first, 0 judged over a half-done flip; "
            f"{RESULTS['in flight']} intents in flight left alone (gate exit 1, watch waits); "
            f"{RESULTS['reported']} reported by plan / advance --dry-run (exit 1, not repaired)"
        )
