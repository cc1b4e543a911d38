"""`migrate gate` and `migrate watch` through the CLI on real PostgreSQL: exit codes, JUnit and markdown
content, rollback on breach, auto-advance, one watcher at a time, clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Outcome

Migrate = Callable[..., Outcome]


def test_gate_passing_writes_junit_and_summary(rb_dir: Path, migrate: Migrate) -> None:
    assert migrate("advance", "--yes").code == 0
    r = migrate("gate", "--junit", "out/junit.xml", "--summary", "out/summary.md")
    assert r.code == 0, r.text
    assert "PASS (exit 0)" in r.out
    suite = ET.parse(rb_dir / "out/junit.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")  # type: ignore[assignment]
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("1", "0", "0")
    assert [c.get("name") for c in suite.iter("testcase")] == ["healthy"]
    summary = (rb_dir / "out/summary.md").read_text()
    assert "healthy" in summary and "Gate of cli-test: stage one" in summary


def test_gate_failing_and_inconclusive_exit_1(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert migrate("advance", "--yes").code == 0
    monkeypatch.setenv("MONITOR_VALUE", "5")
    r = migrate("gate", "--junit", "j.xml")
    assert r.code == 1, r.text
    assert "FAIL" in r.out and "value = 5, expected == 0" in r.out
    assert "BREACH healthy: 1 failure in this stage, more than the failure_limit of 0" in r.out
    suite = ET.parse(rb_dir / "j.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")  # type: ignore[assignment]
    assert suite is not None and suite.get("failures") == "1"
    # still at stage one: without --rollback-on-failure the gate only reports
    assert json.loads(migrate("-o", "json", "status").out)["stage"] == "one"
    monkeypatch.setenv("MONITOR_VALUE", "NULL WHERE false")
    r = migrate("-o", "json", "gate")
    assert r.code == 1
    assert json.loads(r.out)["monitors"][0]["verdict"] == "inconclusive"


def test_gate_rolls_back_on_breach_when_asked(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert migrate("advance", "--yes").code == 0
    monkeypatch.setenv("MONITOR_VALUE", "5")
    r = migrate("gate", "--rollback-on-failure")
    assert r.code == 4, r.text
    assert "Rolled back to legacy." in r.out
    assert "PGBOSS_ENABLED=false" in (rb_dir / "app.env").read_text()
    ev = json.loads(migrate("-o", "json", "history", "--operation", "auto-rollback").out)["events"][-1]
    assert ev["reason"].startswith("gate: healthy: 1 failure in this stage")
    assert ev["verdicts"][0]["value"] == 5


def test_watch_rolls_back_on_the_first_breaching_sample(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert migrate("advance", "--yes").code == 0
    assert migrate("watch", "--interval", "0.1s", "--max-samples", "3").code == 0
    monkeypatch.setenv("MONITOR_VALUE", "9")
    r = migrate("watch", "--interval", "0.1s", "--max-samples", "50")
    assert r.code == 4, r.text
    assert "Rolled back after 1 round: watch: healthy: 1 failure in this stage" in r.out
    assert "#1 one healthy=9:fail!" in r.err
    assert json.loads(migrate("-o", "json", "status").out)["stage"] == "legacy"


def test_watch_auto_advances_until_a_human_is_needed(rb_dir: Path, migrate: Migrate) -> None:
    r = migrate("watch", "--interval", "0.1s", "--auto-advance", "--max-samples", "4")
    assert r.code == 0, r.text
    assert "advance legacy -> one" in r.out and "advance one -> two" in r.out
    assert "waiting for a human: done needs confirmations" in r.err
    assert json.loads(migrate("-o", "json", "status").out)["stage"] == "two"


def _watch_proc(rb_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runbook", "watch", "--interval", "0.2s", *args],
        cwd=rb_dir,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_rounds(rb_dir: Path, migrate: Migrate, n: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = json.loads(migrate("-o", "json", "status").out)
        if st["latest"]:
            return
        time.sleep(0.2)
    raise AssertionError("the watcher took no sample")


def test_only_one_watcher_acts_and_sigterm_stops_cleanly(rb_dir: Path, migrate: Migrate) -> None:
    assert migrate("advance", "--yes").code == 0
    first = _watch_proc(rb_dir)
    try:
        _wait_for_rounds(rb_dir, migrate, 1)
        second = migrate("watch", "--interval", "0.2s", "--max-samples", "2")
        assert second.code == 3, second.text
        assert "another watcher is already acting on cli-test" in second.err
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=20)
        assert first.returncode == 0, err
        assert "Watch stopped after" in out
    finally:
        if first.poll() is None:
            first.kill()
    # the lease was released: a new watcher may act at once; the state is untouched
    again = migrate("watch", "--interval", "0.1s", "--max-samples", "1")
    assert again.code == 0, again.text
    st = json.loads(migrate("-o", "json", "status").out)
    assert st["stage"] == "one" and st["pending_intent"] is None and st["drift"] == []
