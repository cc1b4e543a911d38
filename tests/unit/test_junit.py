"""JUnit XML and markdown summary of a gate run, parsed back and checked value by value."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runbook.junit import render_junit, render_summary, write_summary
from runbook.measurement import Measurement, Verdict
from runbook.rendering import format_value, threshold_text

AT = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
MEASUREMENTS = [
    Measurement(Verdict.PASS, 3, "3 ready jobs <= 100", {"max": 100}, "jobs", "backlog", "pgboss", AT, 12.0),
    Measurement(
        Verdict.FAIL,
        0.12,
        'error rate 12% > 5% in "import" & <evals>',
        {"max": 0.05, "window": "15m"},
        "ratio",
        "error-rate",
        "pgboss",
        AT,
        30.5,
    ),
    Measurement(
        Verdict.ERROR, None, "connection refused\x00 at db:5432", {}, "", "worker-memory", "memory", AT
    ),
    Measurement(
        Verdict.INCONCLUSIVE, 0, "no jobs ran in the window", {"min": 5}, "jobs", "work", "pgboss", AT
    ),
]


def parse(xml: str) -> ET.Element:
    root = ET.fromstring(xml.encode())
    assert root.tag == "testsuites"
    return root


def test_counts_match_testcases() -> None:
    root = parse(render_junit(MEASUREMENTS, "gate: evaluations", timestamp=AT, hostname="ci"))
    suite = root.find("testsuite")
    assert suite is not None
    attrs = {k: suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped", "time", "timestamp")}
    assert attrs == {
        "name": "gate: evaluations",
        "tests": "4",
        "failures": "1",
        "errors": "1",
        "skipped": "1",
        "time": "0.043",
        "timestamp": "2026-11-29T12:00:00",
    }
    assert [root.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["4", "1", "1", "1"]
    assert [c.get("name") for c in suite.iter("testcase")] == [
        "backlog",
        "error-rate",
        "worker-memory",
        "work",
    ]
    assert [c.get("classname") for c in suite.iter("testcase")][:2] == ["gate: evaluations.pgboss"] * 2


def test_each_verdict_has_its_element_and_properties() -> None:
    suite = parse(render_junit(MEASUREMENTS, "gate", timestamp=AT)).find("testsuite")
    assert suite is not None
    ok, bad, err, skip = suite.iter("testcase")
    assert [child.tag for child in ok] == ["properties", "system-out"]
    props = {p.get("name"): p.get("value") for p in bad.iter("property")}
    assert props["verdict"] == "fail"
    assert props["value"] == "0.12"
    assert props["unit"] == "ratio"
    assert props["threshold"] == "≤ 5%"
    failure = bad.find("failure")
    assert failure is not None
    assert failure.get("message") == (
        'fail: error rate 12% > 5% in "import" & <evals> (value 12%, threshold ≤ 5%)'
    )
    assert failure.text is not None and 'inputs: {"max": 0.05, "window": "15m"}' in failure.text
    error = err.find("error")
    assert error is not None
    assert error.get("message") == "error: connection refused\ufffd at db:5432 (value -, threshold -)"
    assert err.find("failure") is None
    skipped = skip.find("skipped")
    assert skipped is not None
    assert (
        skipped.get("message") == "inconclusive: no jobs ran in the window (value 0 jobs, threshold ≥ 5 jobs)"
    )


def test_json_dicts_and_suite_properties() -> None:
    xml = render_junit(
        [m.to_json() for m in MEASUREMENTS[:1]], "g", properties={"stage": "observe", "runbook": "a&b"}
    )
    suite = parse(xml).find("testsuite")
    assert suite is not None
    props = suite.find("properties")
    assert props is not None
    assert {p.get("name"): p.get("value") for p in props} == {"stage": "observe", "runbook": "a&b"}
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")


def test_empty_run_is_valid() -> None:
    suite = parse(render_junit([], "g")).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), list(suite.iter("testcase"))) == ("0", "0", [])


def test_markdown_summary_table() -> None:
    text = render_summary(MEASUREMENTS, "Gate | evaluations", outcome="failed")
    lines = text.splitlines()
    assert lines[0] == "### Gate \\| evaluations"
    assert "**failed**: 1 passed, 1 failed, 1 error, 1 inconclusive" in lines
    assert "| check | verdict | value | threshold | explanation |" in lines
    assert "| `backlog` | ✅ pass | 3 jobs | ≤ 100 jobs | 3 ready jobs &lt;= 100 |" in lines
    assert (
        '| `error-rate` | ❌ fail | 12% | ≤ 5% | error rate 12% &gt; 5% in "import" & &lt;evals&gt; |'
        in lines
    )
    assert sum(1 for line in lines if line.startswith("| `")) == 4


def test_summary_without_checks() -> None:
    assert "_No checks ran._" in render_summary([], "Gate")
    assert "_No checks ran._" in render_summary({"Monitors of a": [], "Preflight of b": []}, "Gate")


def test_a_summary_by_heading_has_a_table_under_each() -> None:
    """The gate's monitors and the next stage's preflight: each table under its heading (a heading with no
    measurement is left out); the counts cover them all."""
    text = render_summary(
        {"Monitors of a": MEASUREMENTS[:3], "Preflight of b": MEASUREMENTS[3:], "c": []}, "G"
    )
    lines = text.splitlines()
    assert "1 passed, 1 failed, 1 error, 1 inconclusive" in lines
    assert lines.count("| check | verdict | value | threshold | explanation |") == 2
    monitors, preflight = lines.index("#### Monitors of a"), lines.index("#### Preflight of b")
    rows = [i for i, line in enumerate(lines) if line.startswith("| `")]
    assert monitors < rows[0] < rows[2] < preflight < rows[3] and len(rows) == 4
    assert "#### c" not in lines


def test_write_summary_appends_to_github_step_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "step" / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert write_summary("one") == target
    assert write_summary("two\n") == target
    assert target.read_text() == "one\ntwo\n"
    explicit = tmp_path / "explicit.md"
    assert write_summary("x", explicit) == explicit
    assert explicit.read_text() == "x\n"
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    assert write_summary("nowhere") is None


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (97_300_000, "bytes", "97.3MB"),
        (90, "seconds", "1m 30s"),
        (90003.0, "s", "1d 1h"),
        (38.5, "s", "38.5s"),
        (1, "jobs", "1 job"),
        (0, "rows", "0 rows"),
        (0.051, "ratio", "5.1%"),
        (1.23456, "", "1.235"),
    ],
)
def test_format_value(value: float, unit: str, shown: str) -> None:
    assert format_value(value, unit) == shown


def test_a_duration_limit_reads_as_written_in_junit_and_summary() -> None:
    """`max: 1d` on oldest_ready_age: `1d 1h` against `≤ 1d`, not `9e+04 s` against `≤ 8.64e+04 s`."""
    age = Measurement(
        Verdict.FAIL, 90003.0, "oldest ready job in thumbnails waiting 1d 1h (1 ready) > max 1d",
        {"max": 86400.0, "ready": 1}, "s", "thumb-age", "pgboss", AT,
    )  # fmt: skip
    case = parse(render_junit([age], "gate", timestamp=AT)).find("testsuite/testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == (
        "fail: oldest ready job in thumbnails waiting 1d 1h (1 ready) > max 1d (value 1d 1h, threshold ≤ 1d)"
    )
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert (props["value"], props["unit"], props["threshold"]) == ("90003.0", "s", "≤ 1d")
    lines = render_summary([age], "Gate").splitlines()
    why = "oldest ready job in thumbnails waiting 1d 1h (1 ready) &gt; max 1d"
    assert f"| `thumb-age` | ❌ fail | 1d 1h | ≤ 1d | {why} |" in lines


def test_threshold_text_forms() -> None:
    assert threshold_text({"max_growth_per_hour": 5_000_000}, "bytes") == "max_growth_per_hour 5.0MB"
    assert threshold_text({"expect": ["value < 100MB", "ok == true"]}) == "value < 100MB; ok == true"
    assert threshold_text({"query": "select 1"}) == "-"
