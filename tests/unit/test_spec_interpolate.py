"""`${VAR}`, `${VAR:-default}` and `$${` in string scalars."""

from __future__ import annotations

import pytest

from runbook.spec.interpolate import InterpolationError, interpolate

ENV = {"HOST": "db", "EMPTY": "", "PORT": "5432", "API_TOKEN": "t0k3n"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("${HOST}", "db"),
        ("postgres://${HOST}:${PORT}/app", "postgres://db:5432/app"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),  # as in the shell: unset or empty
        ("${EMPTY}", ""),
        ("${MISSING:-}", ""),
        ("${MISSING:-a:b c}", "a:b c"),
        ("$${HOST}", "${HOST}"),
        ("cost: $5 and $HOST", "cost: $5 and $HOST"),
        ("$${HOST} is ${HOST}", "${HOST} is db"),
    ],
)
def test_expansions(text: str, expected: str) -> None:
    assert interpolate(text, ENV).value == expected


def test_names_read_and_secret_detection() -> None:
    assert interpolate("${HOST}:${PORT}", ENV).names == ("HOST", "PORT")
    assert interpolate("${HOST}", ENV).secretish is False
    assert interpolate("Bearer ${API_TOKEN}", ENV).secretish is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${MISSING}", "environment variable MISSING is not set; set it, or write ${MISSING:-default}"),
        ("x ${HOST", 'unclosed "${"; write ${NAME} or ${NAME:-default}, or $${ for a literal "${"'),
        ("${9X}", 'bad reference "${9X}"; write ${NAME} or ${NAME:-default} (NAME: letters, digits, _)'),
        ("${A B}", 'bad reference "${A B}"; write ${NAME} or ${NAME:-default} (NAME: letters, digits, _)'),
        ("${}", 'bad reference "${}"; write ${NAME} or ${NAME:-default} (NAME: letters, digits, _)'),
    ],
)
def test_errors_name_the_fix(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate(text, ENV)
    assert str(info.value) == message
