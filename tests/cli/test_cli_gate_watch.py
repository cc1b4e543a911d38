"""`migrate gate` and `migrate watch` through the CLI on real PostgreSQL: exit codes, JUnit and markdown
content, rollback on breach, auto-advance, one watcher at a time, clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from runbook.actor import current_actor
from tests.cli.conftest import Outcome
from tests.integration.checks_pg.legacy_app import LegacyApp

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
    assert "healthy" in summary and "### Gate of cli-test: stage one (next: two)" in summary


def test_gate_summary_names_the_next_stage_and_labels_the_preflight(rb_dir: Path, migrate: Migrate) -> None:
    """Found by a new-user trial: the step summary's header dropped "(next: two)", and the next stage's
    preflight rows sat in the monitors' table with nothing telling them apart. Now a table under each
    heading, in the summary and in `-o markdown`."""
    stages = rb_dir / "stages.yaml"
    two = "    set: {PGBOSS_FOR_NEW_EVALS: true}\n"
    check = "    preflight:\n      - {name: two-ready, kind: sql, query: SELECT 1, expect: [value == 1]}\n"
    stages.write_text(stages.read_text().replace(two, two + check, 1))
    assert migrate("advance", "--yes").code == 0
    r = migrate("gate", "--summary", "s.md")
    assert r.code == 0, r.text
    lines = (rb_dir / "s.md").read_text().splitlines()
    assert lines[0] == "### Gate of cli-test: stage one (next: two)"
    monitors, preflight = (
        lines.index("#### Monitors of one"),
        lines.index("#### Preflight of two (the next stage)"),
    )
    rows = {line.split("`")[1]: i for i, line in enumerate(lines) if line.startswith("| `")}
    assert monitors < rows["healthy"] < preflight < rows["two-ready"]
    md = migrate("-o", "markdown", "gate").out.splitlines()
    assert md[0] == "### Gate of `cli-test`: stage `one` (next: `two`)"
    monitors, preflight = md.index("Monitors of `one`:"), md.index("Preflight of `two` (the next stage):")
    rows = {line.split("`")[1]: i for i, line in enumerate(md) if line.startswith("| ") and "`" in line}
    assert monitors < rows["healthy"] < preflight < rows["two-ready"]


def test_durations_read_as_people_write_them_in_summary_junit_watch_and_report(
    rb_dir: Path, migrate: Migrate, pg_url: str
) -> None:
    """A duration monitor (`max: 1d`) over one legacy row that ran 90003 s: the markdown summary, JUnit, the
    watch line and the HTML report show `1d 1h` against `≤ 1d` (not `9e+04 s` against `8.64e+04 s`), as
    the explanation does; `-o json` keeps the numbers."""
    app = LegacyApp(pg_url)
    app.install()
    app.run("eval-0", created=-90003 - 120, started=-90003 - 60, seconds=90003)
    app.close()
    monitor = "    monitor:\n"
    latency = "      - {name: eval-latency, kind: legacy, metric: processing_time, window: 2d, max: 1d}\n"
    stages = rb_dir / "stages.yaml"
    stages.write_text(stages.read_text().replace(monitor, monitor + latency, 1))
    assert migrate("advance", "--yes").code == 0
    r = migrate("gate", "--junit", "j.xml", "--summary", "s.md")
    assert r.code == 1, r.text
    why = "legacy processing time p95 1d 1h over 1 completed row in the last 2d > max 1d"
    summary = (rb_dir / "s.md").read_text().splitlines()
    assert f"| `eval-latency` | ❌ fail | 1d 1h | ≤ 1d | {why.replace('>', '&gt;')} |" in summary
    case = next(
        c for c in ET.parse(rb_dir / "j.xml").getroot().iter("testcase") if c.get("name") == "eval-latency"
    )
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == f"fail: {why} (value 1d 1h, threshold ≤ 1d)"
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert (props["value"], props["unit"], props["threshold"]) == ("90003.0", "s", "≤ 1d")
    measured = json.loads(migrate("-o", "json", "gate").out)["monitors"]
    assert [(m["value"], m["inputs"]["max"]) for m in measured if m["check"] == "eval-latency"] == [
        (90003.0, 86400.0)
    ]
    r = migrate("watch", "--interval", "0.1s", "--max-samples", "1")
    assert r.code == 4, r.text
    assert "#1 one eval-latency=1d 1h:fail! healthy=0:pass" in r.err
    assert migrate("report", "--out", "r.html").code == 0
    assert '<td class="num">1d 1h</td><td>≤ 1d</td>' in (rb_dir / "r.html").read_text()


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
    r = migrate("watch", "--interval", "0.1s", "--max-samples", "2")
    assert r.code == 0, r.text  # text: the rounds on stderr, the result on stdout
    assert [ln.split("  ")[0] for ln in r.err.splitlines()] == [
        "#1 one healthy=0:pass",
        "#2 one healthy=0:pass",
    ]
    assert r.out == "Watch stopped after 2 rounds (limit); stage one.\n"
    # -o json: a round an object a line on stdout (`| jq` sees them), then the result on a line of its own
    r = migrate("-o", "json", "watch", "--interval", "0.1s", "--max-samples", "2")
    assert (r.code, r.err) == (0, ""), r.text
    lines = [json.loads(ln) for ln in r.out.splitlines()]
    assert [(o.get("n"), o.get("stage"), o.get("outcome")) for o in lines] == [
        (1, "one", None),
        (2, "one", None),
        (None, "one", "limit"),
    ]
    assert [c["check"] for c in lines[0]["checks"]] == ["healthy"]
    monkeypatch.setenv("MONITOR_VALUE", "9")
    r = migrate("watch", "--interval", "0.1s", "--max-samples", "50")
    assert r.code == 4, r.text
    assert "Rolled back after 1 round: watch: healthy: 1 failure in this stage" in r.out
    assert "#1 one healthy=9:fail!" in r.err
    assert json.loads(migrate("-o", "json", "status").out)["stage"] == "legacy"


def test_watch_refuses_an_interval_of_0_naming_the_option(rb_dir: Path, migrate: Migrate) -> None:
    """A new-user trial: `--interval 0s` was taken as "no interval given" and sampled every 60 s."""
    assert migrate("advance", "--yes").code == 0
    for zero in ("0s", "0m", "0h0s"):
        began = time.monotonic()
        r = migrate("watch", "--interval", zero, "--max-samples", "2")
        assert r.code == 2, r.text
        assert r.err.splitlines()[-1] == (
            f'Error: Invalid value for --interval: must be more than 0, got "{zero}"; e.g. --interval 30s'
        )
        assert (r.out, time.monotonic() - began < 5) == ("", True)
    r = migrate("-o", "json", "watch", "--interval", "-1s", "--max-samples", "1")
    assert r.code == 2 and "Invalid value for --interval" in r.err, r.text
    assert json.loads(migrate("-o", "json", "status").out)["latest"] == []  # nothing was sampled
    r = migrate(
        "watch", "--interval", "0.1s", "--metrics-port", "0", "--metrics-linger", "0s", "--max-samples", "1"
    )
    assert r.code == 0, r.text  # --metrics-linger 0s means something: do not linger


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
        user, host = current_actor().user, socket.gethostname()  # the pid once ("pid N pid N on host")
        assert second.err.splitlines()[0] == (
            f"error: another watcher is already acting on cli-test: {user}@{host} pid {first.pid}"
        )
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


def test_watch_exits_1_on_a_breach_in_the_first_stage_as_gate_does(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing to roll back to from the first stage: watch used to note it and go on sampling (exit 0)."""
    text = (rb_dir / "stages.yaml").read_text()
    legacy_monitor = (
        "  - id: legacy\n    monitor:\n      - name: legacy-healthy\n        kind: sql\n"
        '        query: SELECT 1\n        expect: ["value == 0"]\n'
    )
    (rb_dir / "stages.yaml").write_text(text.replace("  - id: legacy\n", legacy_monitor, 1))
    assert migrate("gate").code == 1
    r = migrate("watch", "--interval", "0.1s", "--max-samples", "5")
    assert r.code == 1, r.text
    assert "| breach: legacy is the first stage, nothing to roll back to" in r.err
    assert r.out.startswith("Breach, not rolled back after 1 round: watch: legacy-healthy: 1 failure")
    assert "; legacy is the first stage, nothing to roll back to. The flags are as they were." in r.out
    j = json.loads(migrate("-o", "json", "watch", "--interval", "0.1s").out.splitlines()[-1])
    assert (j["outcome"], j["rounds"], j["exit_code"]) == ("breached", 1, 1)
    assert json.loads(migrate("-o", "json", "status").out)["stage"] == "legacy"
    assert "PGBOSS_ENABLED=false" in (rb_dir / "app.env").read_text()


def test_an_inconclusive_round_says_watch_holds_but_still_rolls_back_on_a_breach(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert migrate("advance", "--yes").code == 0
    monkeypatch.setenv("MONITOR_VALUE", "NULL WHERE false")
    r = migrate("watch", "--interval", "0.1s", "--max-samples", "1")
    assert r.code == 0, r.text
    assert r.err.rstrip().endswith(
        "| inconclusive: holding (rolls back on a breach; never advances on its own)"
    ), r.err


MIGRATE = Path(sys.executable).parent / "migrate"
"""The installed CLI (the console script of this environment)."""


class _Watch:
    """`migrate watch --interval 0.2s` run by the installed CLI in `rb_dir`, with a monitor that takes
    `seconds` (SELECT 0 FROM pg_sleep(N)): each round is long. Its stderr is read as it comes."""

    def __init__(self, rb_dir: Path, seconds: float) -> None:
        env = {**os.environ, "MONITOR_VALUE": f"0 FROM pg_sleep({seconds})"}
        cmd = [str(MIGRATE), "watch", "--interval", "0.2s"]
        self.proc = subprocess.Popen(
            cmd, cwd=rb_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, start: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(line.startswith(start) for line in self.lines):
            assert self.proc.poll() is None, self.lines
            assert time.monotonic() < deadline, f"no line {start!r}: {self.lines}"
            time.sleep(0.02)

    def finish(self, timeout: float) -> tuple[int, str, float]:
        """Exit code, stdout, seconds it took to exit."""
        at = time.monotonic()
        code = self.proc.wait(timeout=timeout)  # stdout is short (the result): it never fills the pipe
        took = time.monotonic() - at
        self.reader.join(5)  # stderr is the reader's alone (communicate() would read part of it)
        assert self.proc.stdout is not None
        return code, self.proc.stdout.read(), took


def _leases(pg_url: str) -> list[str]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT owner FROM runbook.leases WHERE expires_at > now()").fetchall()
    return [r[0] for r in rows]


def test_the_first_ctrl_c_says_it_stops_after_the_round_and_finishes_it(
    rb_dir: Path, migrate: Migrate, pg_url: str
) -> None:
    """A round of 2 s: SIGINT in it is said at once on stderr (it used to print nothing), the round finishes
    and is shown, and the watch ends as a stopped watch does (exit 0), its lease released; SIGTERM alike."""
    assert migrate("advance", "--yes").code == 0
    for sig in (signal.SIGINT, signal.SIGTERM):
        w = _Watch(rb_dir, 2)
        try:
            w.wait_line("#1 ")  # the second round starts at once (the first took longer than the interval)
            time.sleep(0.5)
            w.proc.send_signal(sig)
            w.wait_line("stopping", timeout=1.0)  # said at once, while the round goes on
            assert w.proc.poll() is None
            code, out, took = w.finish(timeout=30)
        finally:
            if w.proc.poll() is None:
                w.proc.kill()
        assert code == 0, w.lines
        assert took >= 0.5, took  # it finished the round (about 1.5 s of it was left)
        stopping = "stopping after the current round… (Ctrl-C again to stop now)"
        assert w.lines.index(stopping) < next(i for i, line in enumerate(w.lines) if line.startswith("#2 "))
        assert "Watch stopped after 2 rounds (stopped); stage one." in out
        assert _leases(pg_url) == []


def test_a_second_ctrl_c_stops_the_watch_at_once_and_releases_its_lease(
    rb_dir: Path, migrate: Migrate, pg_url: str
) -> None:
    """A round of 4 s: the first SIGINT asks for a stop after it, the second stops now (exit 1, the CLI's
    `interrupted`): well before the round would end, and the lease is not left held."""
    assert migrate("advance", "--yes").code == 0
    w = _Watch(rb_dir, 4)  # within the checks' statement_timeout (5 s)
    try:
        deadline = time.monotonic() + 30
        while not _leases(pg_url):  # the round has begun (the lease is taken before it)
            assert time.monotonic() < deadline, w.lines
            time.sleep(0.05)
        time.sleep(0.5)
        w.proc.send_signal(signal.SIGINT)
        w.wait_line("stopping", timeout=1.0)
        w.proc.send_signal(signal.SIGINT)
        code, _out, took = w.finish(timeout=30)
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    assert took < 2, (took, w.lines)  # the round had over 3 s left
    assert code == 1, w.lines
    assert "error: interrupted" in w.lines, w.lines
    assert not any(line.startswith("#1 ") for line in w.lines)  # the round was cut short, not shown
    assert _leases(pg_url) == []
