"""Whatever the text, the loader answers with a Runbook or a SpecError whose issues are located in the
file: never another exception, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.errors import SpecError
from runbook.spec import load_runbook_text

GOOD = Path(__file__).resolve().parent.parent / "data" / "runbooks" / "good"
FULL = (GOOD / "full.yaml").read_text(encoding="utf-8")
ENV = {"APP_TOKEN": "t"}
PIECES = [
    ":",
    "- ",
    "  ",
    "\n",
    "\t",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a",
    "<<: ",
    "${X}",
    "'",
    '"',
    "#",
    "!!str ",
    "-1",
]


def check(text: str) -> None:
    try:
        load_runbook_text(text, "f.yaml", env=ENV, time_scale=1.0)
    except SpecError as exc:
        assert exc.issues
        # YAML breaks lines at \r\n, \r, \n, NEL, LS and PS alike
        lines = len(re.split("\r\n|[\r\n\x85\u2028\u2029]", text))
        for issue in exc.issues:
            assert issue.file == "f.yaml"
            assert 1 <= issue.line <= lines + 1
            assert issue.column >= 1
            assert issue.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(FULL)), st.integers(0, 40), st.lists(st.sampled_from(PIECES), max_size=4))
def test_mutated_runbooks_give_located_issues(at: int, cut: int, inserted: list[str]) -> None:
    check(FULL[:at] + "".join(inserted) + FULL[at + cut :])


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_gives_located_issues(text: str) -> None:
    check(text)
