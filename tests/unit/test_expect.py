"""The assertion language: parsing (with clear errors) and evaluation against documents."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from runbook.checks import expect as ex


@pytest.mark.parametrize(
    ("text", "path", "parts", "op", "expected"),
    [
        ("enabled == true", "enabled", ("enabled",), "==", True),
        ("import_jobs.failed <= 0", "import_jobs.failed", ("import_jobs", "failed"), "<=", 0),
        ("value < 100MB", "value", ("value",), "<", 100_000_000),
        ("value<1GiB", "value", ("value",), "<", 1024**3),
        ("age >= 5m", "age", ("age",), ">=", 300.0),
        (
            "queues[0].name == 'import-article'",
            "queues[0].name",
            ("queues", 0, "name"),
            "==",
            "import-article",
        ),
        ('[1] != "x"', "[1]", (1,), "!=", "x"),
        (
            "a.b[2][-1] > -1.5",
            "a.b[2][-1]",
            (
                "a",
                "b",
                2,
                -1,
            ),
            ">",
            -1.5,
        ),
        ("error == null", "error", ("error",), "==", None),
        ("ratio > 1e3", "ratio", ("ratio",), ">", 1000.0),
        ("memory.rss < 1.5", "memory.rss", ("memory", "rss"), "<", 1.5),
        ("pgboss-status.ok == false", "pgboss-status.ok", ("pgboss-status", "ok"), "==", False),
    ],
)
def test_parse(text: str, path: str, parts: tuple[Any, ...], op: str, expected: Any) -> None:
    a = ex.parse(text)
    assert (a.path, a.parts, a.op, a.expected) == (path, parts, op, expected)
    assert type(a.expected) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty assertion"),
        ("enabled", "no comparison operator"),
        ("enabled = true", "no comparison operator"),
        ("enabled === true", "unknown operator"),
        ("count <= ten", 'cannot read the value "ten"'),
        ("a..b == 1", 'bad path "a..b"'),
        ("a[x] == 1", 'bad path "a[x]"'),
        ("== 3", "cannot read"),
    ],
)
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        ex.parse(text)
    assert message in str(info.value)


def test_parse_all_names_the_index() -> None:
    with pytest.raises(ValueError) as info:
        ex.parse_all(["a == 1", "b ~ 2"])
    assert str(info.value).startswith("expect[1]: ")


DOC = {
    "enabled": True,
    "import_jobs": {"queued": 3, "failed": 0, "rate": 0.25},
    "queues": [{"name": "import-article", "size": 2}, {"name": "evaluate", "size": 0}],
    "error": None,
    "version": "10.4.2",
    "memory": {"rss": 97_300_000},
}


@pytest.mark.parametrize(
    ("text", "ok", "actual"),
    [
        ("enabled == true", True, True),
        ("enabled == false", False, True),
        ("enabled == 1", False, True),  # booleans are not numbers
        ("import_jobs.failed <= 0", True, 0),
        ("import_jobs.queued < 3", False, 3),
        ("import_jobs.queued <= 3", True, 3),
        ("import_jobs.queued == 3.0", True, 3),
        ("import_jobs.rate > 0.2", True, 0.25),
        ("import_jobs.rate >= 0.3", False, 0.25),
        ("queues[1].name == 'evaluate'", True, "evaluate"),
        ("queues[-1].size != 0", False, 0),
        ("error == null", True, None),
        ("error < 3", False, None),  # null is not ordered
        ("version == '10.4.2'", True, "10.4.2"),
        ("version > 5", False, "10.4.2"),  # string vs number: false, no exception
        ("memory.rss < 100MB", True, 97_300_000),
        ("memory.rss < 90MB", False, 97_300_000),
    ],
)
def test_evaluate(text: str, ok: bool, actual: Any) -> None:
    got_ok, got_actual, explanation = ex.parse(text).evaluate(DOC)
    assert (got_ok, got_actual) == (ok, actual)
    assert explanation.startswith(ex.parse(text).path + " = ")
    assert ("expected" in explanation) is (not ok)


def test_explanation_text() -> None:
    assert ex.parse("import_jobs.queued < 3").evaluate(DOC)[2] == "import_jobs.queued = 3, expected < 3"
    assert ex.parse("enabled == true").evaluate(DOC)[2] == "enabled = true, == true"


def test_decimal_compares_as_number() -> None:
    assert ex.parse("value == 2").evaluate({"value": Decimal("2.0")})[0] is True
    assert ex.parse("value < 2.5").evaluate({"value": Decimal("2.4")})[0] is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("missing == 1", 'missing: no field "missing"'),
        ("queues[5].name == 'x'", "queues[5].name: no item [5]"),
        ("enabled.x == 1", 'no field "x"'),
    ],
)
def test_missing_values_raise(text: str, message: str) -> None:
    with pytest.raises(ex.MissingValue) as info:
        ex.parse(text).evaluate(DOC)
    assert message in str(info.value)


def test_show() -> None:
    assert [ex.show(v) for v in (None, True, "a", 3.0, 0.125, [1])] == [
        "null",
        "true",
        '"a"',
        "3",
        "0.125",
        "[1]",
    ]
