"""Data-driven cases: each `tests/data/runbooks/bad/NN-name.yaml` must fail with exactly the lines of the
`NN-name.err` beside it (loaded with the real check kinds). Regenerate a file's expectation by hand with
`python tests/unit/spec_corpus.py NN-name.yaml`, and read it before committing it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.spec_corpus import CORPUS, errors_of

BAD = sorted((CORPUS / "bad").glob("*.yaml"))


def test_corpus_is_complete() -> None:
    assert len(BAD) >= 30
    missing = [p.name for p in BAD if not p.with_suffix(".err").exists()]
    assert missing == []
    orphans = [p.name for p in (CORPUS / "bad").glob("*.err") if not p.with_suffix(".yaml").exists()]
    assert orphans == []


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_runbook_reports_exact_errors(path: Path) -> None:
    expected = path.with_suffix(".err").read_text(encoding="utf-8")
    assert expected.strip(), "an .err file must hold the expected output"
    assert errors_of(path) == expected
