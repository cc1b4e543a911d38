"""`history -o markdown` with nothing to show says so in a sentence, not with an empty table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import Outcome

Migrate = Callable[..., Outcome]


def test_empty_history_in_markdown_is_a_sentence(rb_dir: Path, migrate: Migrate) -> None:
    r = migrate("-o", "markdown", "history")
    assert (r.code, r.out) == (0, "No events yet for `cli-test`.\n")
    assert migrate("advance", "--yes").code == 0
    r = migrate("-o", "markdown", "history", "--operation", "transfer")
    assert r.out.startswith("No transfer events yet for `cli-test` (")
    assert "other events; drop --operation to see them).\n" in r.out
    r = migrate("-o", "markdown", "history")
    assert r.out.splitlines()[0] == "| # | at | operation | from | to | by | reason |"
