"""Data-driven cases: each `tests/data/runbooks/bad/NN-name.yaml` must fail with exactly the lines of the
`NN-name.err` beside it (loaded with the real check kinds). Print what a case gives now with
`python tests/unit/test_spec_corpus.py NN-name.yaml`, and read it before committing it as the expectation.

A corpus file may start with directives: `# test-env: NAME=value` (the loader's env),
`# test-time-scale: 0.5` (its time_scale) and `# test-os-env: NAME=value` (the process environment).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runbook.errors import SpecError
from runbook.spec import load_runbook
from runbook.units import TIME_SCALE_ENV

CORPUS = Path(__file__).resolve().parent.parent / "data" / "runbooks"


def directives(path: Path) -> dict[str, list[str]]:
    """`# test-env: A=1` style lines at the top of a corpus file."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("# test-"):
            break
        key, _, value = line[2:].partition(":")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


@contextmanager
def os_env(pairs: list[str]) -> Iterator[None]:
    """Set process environment variables (only the time scale is read from there) for the duration."""
    saved = os.environ.get(TIME_SCALE_ENV)
    os.environ.pop(TIME_SCALE_ENV, None)
    try:
        for pair in pairs:
            name, _, value = pair.partition("=")
            os.environ[name] = value
        yield
    finally:
        for pair in pairs:
            os.environ.pop(pair.partition("=")[0], None)
        if saved is not None:
            os.environ[TIME_SCALE_ENV] = saved


def errors_of(path: Path) -> str:
    """The error output of loading `path` (named as its file name), or "" if it loads."""
    d = directives(path)
    env = dict(p.partition("=")[::2] for p in d.get("test-env", []))
    # the time scale is read from the environment the runbook is loaded with (a command's, not the process's)
    env |= dict(p.partition("=")[::2] for p in d.get("test-os-env", []))
    scale = float(d["test-time-scale"][0]) if "test-time-scale" in d else None
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        with os_env(d.get("test-os-env", [])):
            load_runbook(path.name, env=env, time_scale=scale)
    except SpecError as exc:
        return "\n".join(str(i) for i in exc.issues) + "\n"
    finally:
        os.chdir(cwd)
    return ""


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


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:] or sorted(p.name for p in (CORPUS / "bad").glob("*.yaml")):
        print(f"== {name}")
        print(errors_of(CORPUS / "bad" / name), end="")
