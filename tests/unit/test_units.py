"""Human durations and sizes (runbook.units) and the time scale switch."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from runbook.units import (
    count,
    format_duration,
    format_seconds,
    format_size,
    parse_duration,
    parse_size,
    time_scale,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("5m", 300.0),
        ("24h", 86400.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("250ms", 0.25),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("1.5h", 5400.0),
        (" 10S ", 10.0),
        (45, 45.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", 'expected a duration like 90s, 5m, 24h or 2d, got "soon"'),
        ("5x", 'expected a duration like 90s, 5m, 24h or 2d, got "5x"'),
        ("5", 'expected a duration like 90s, 5m, 24h or 2d, got "5"'),
        ("m5", 'expected a duration like 90s, 5m, 24h or 2d, got "m5"'),
        ("", "expected a duration like 90s, 5m, 24h or 2d, got an empty string"),
        (-1, "a duration cannot be negative"),
        (True, "expected a duration like 90s, 5m, 24h or 2d"),
    ],
)
def test_parse_duration_errors(text: str | float, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100MB", 100_000_000),
        ("100mb", 100_000_000),
        ("100MiB", 100 * 1024**2),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("2kB", 2000),
        ("512", 512),
        ("512B", 512),
        (" 3 TB ", 3 * 1000**4),
        (4096, 4096),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "10 parsecs", "MB", "1.2.3MB", ""])
def test_parse_size_errors(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(text)
    assert str(info.value) == f'expected a size like 100MB or 1GiB, got "{text}"'


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250ms"),
        (0, "0ms"),
        (5, "5s"),
        (303, "5m 3s"),
        (93784, "1d 2h"),
        (3600, "1h"),
        (-90, "-1m 30s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3.85, "3.85s"),
        (0.5, "0.5s"),
        (0.08814, "0.088s"),
        (59.0, "59s"),
        (-0.0001, "0s"),
        (600.0, "10m"),
        (90003.0, "1d 1h"),
        (86400.0, "1d"),
    ],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("n", "text"), [(97_300_000, "97.3MB"), (1500, "1.5kB"), (12, "12B"), (2e9, "2.0GB")]
)
def test_format_size(n: float, text: str) -> None:
    assert format_size(n) == text


def test_time_scale_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNBOOK_TIME_SCALE", raising=False)
    assert time_scale() == 1.0
    monkeypatch.setenv("RUNBOOK_TIME_SCALE", "0.001")
    assert time_scale() == 0.001
    monkeypatch.setenv("RUNBOOK_TIME_SCALE", " ")
    assert time_scale() == 1.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("fast", "RUNBOOK_TIME_SCALE must be a number such as 0.001, got 'fast'"),
        ("0", "RUNBOOK_TIME_SCALE must be in (0, 1], got '0'"),
        ("2", "RUNBOOK_TIME_SCALE must be in (0, 1], got '2'"),
        ("-0.5", "RUNBOOK_TIME_SCALE must be in (0, 1], got '-0.5'"),
    ],
)
def test_time_scale_errors(monkeypatch: pytest.MonkeyPatch, raw: str, message: str) -> None:
    monkeypatch.setenv("RUNBOOK_TIME_SCALE", raw)
    with pytest.raises(ValueError) as info:
        time_scale()
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("n", "noun", "plural", "text"),
    [
        (1, "legacy row", None, "1 legacy row"),
        (0, "legacy row", None, "0 legacy rows"),
        (2, "failure", None, "2 failures"),
        (1.0, "sample", None, "1.0 sample"),
        ("at least 500", "job", None, "at least 500 jobs"),
        (3, "entry", "entries", "3 entries"),
        (["mail-dlq", "mail"], "queue", None, "2 queues"),  # a collection counts its items
        (("one",), "queue", None, "1 queue"),
    ],
)
def test_counts_read_as_english(
    n: int | float | str | list[str] | tuple[str, ...], noun: str, plural: str | None, text: str
) -> None:
    assert count(n, noun, plural) == text


def test_no_template_or_message_counts_with_a_parenthesised_plural() -> None:
    """`1 failure(s)`: every count goes through units.count (the `count` filter in templates). Checked in
    the text of templates (outside their tags) and in the string literals of the code."""
    root = Path(__file__).resolve().parents[2]
    plural = re.compile(r"[a-z]\(s\)")
    offenders = [
        f"{path.relative_to(root)}: {text.strip()}"
        for path in sorted((root / "templates").rglob("*.j2"))
        if "app" not in path.relative_to(root).parts
        for text in re.split(r"{{.*?}}|{%.*?%}", path.read_text(), flags=re.S)
        if plural.search(text)
    ]
    for folder in ("runbook", "checks", "stages"):
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            offenders += [
                f"{path.relative_to(root)}:{node.lineno}: {node.value}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and plural.search(node.value)
            ]
    assert offenders == []
