"""The reference in docs/ cannot drift from the code: every command and option of the click group (subgroups
included), every check kind and each of its keys, every exit code is documented; the generated tables match
`python -m runbook.docgen`; every relative link of README.md and docs/*.md resolves, anchors included."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import click
import pytest

from runbook import docgen
from runbook.cli import main as cli
from runbook.exitcodes import ExitCode
from runbook.spec import json_schema

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HEADING = re.compile(r"^(#{1,6}) (.+)$", re.M)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def sections(text: str) -> dict[str, str]:
    """Heading text -> the text under it up to the next heading of any level."""
    marks = list(HEADING.finditer(text))
    return {
        m.group(2).strip(): text[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        for i, m in enumerate(marks)
    }


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_generated_tables_are_current() -> None:
    assert docgen.update(DOCS, check=True) == [], "run `python -m runbook.docgen` and commit docs/"


def test_every_command_and_option_is_in_commands_md() -> None:
    text = (DOCS / "commands.md").read_text(encoding="utf-8")
    found = sections(text)
    shared = docgen.global_names()
    paths = [path for path, _ in docgen.walk(cli)]
    assert "migrate transfer legacy" in paths and "migrate validate" in paths  # subgroups are walked
    for path, cmd in docgen.walk(cli):
        body = found.get(f"`{path}`")
        assert body is not None, f"docs/commands.md has no section for {path}"
        for param in cmd.params:
            if param.name in shared:
                continue
            names = [param.human_readable_name] if isinstance(param, click.Argument) else param.opts
            for name in names:
                assert name in body, f"{path}: {name} is not documented"
    globals_ = found["Global options"] + found["Global options (every command)"]
    for param in cli.params:
        for name in param.opts:
            assert name in globals_, f"global option {name} is not documented"
    assert "before or after the command" in " ".join(found["Global options"].split())


def test_every_check_kind_and_key_is_in_runbook_format_md() -> None:
    text = (DOCS / "runbook-format.md").read_text(encoding="utf-8")
    found = {heading.split(":")[0]: body for heading, body in sections(text).items()}
    check = json_schema()["$defs"]["Check"]
    common = set(check["properties"])
    kinds = check["properties"]["kind"]["enum"]
    assert {"http", "sql", "pgboss", "legacy", "work", "prometheus"} <= set(kinds)
    for branch in check["allOf"]:
        kind = branch["if"]["properties"]["kind"]["const"]
        body = found.get(f"### `{kind}`".removeprefix("### "))
        assert body is not None, f"docs/runbook-format.md has no section for the check kind {kind}"
        own = set(branch["then"]["properties"]) - common
        assert own, kind
        for key in own:
            assert f"| `{key}` |" in body, f"check kind {kind}: key {key} is not documented"
    for key in common:
        assert f"`{key}`" in text, f"the common check key {key} is not documented"


def test_every_exit_code_is_in_commands_md() -> None:
    body = sections((DOCS / "commands.md").read_text(encoding="utf-8"))["Exit codes"]
    rows = {int(m.group(1)) for m in re.finditer(r"^\| (\d+) \|", body, re.M)}
    assert rows == {code.value for code in ExitCode}


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in DOCS.glob("*.md"))])
def test_relative_links_resolve(page: str) -> None:
    path = ROOT / page if page == "README.md" else DOCS / page
    text = path.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{page}: link to {target} does not resolve"
        if anchor and dest.suffix == ".md":
            anchors = {slug(h) for h in sections(dest.read_text(encoding="utf-8"))}
            assert anchor in anchors, f"{page}: no heading for #{anchor} in {dest.name}"


def test_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in DOCS.glob("*.md"):
        assert f"](docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    """docs/commands.md and docs/runbook-format.md, copied and brought up to date (the docgen tests do not
    depend on whether the checkout's docs are current; test_generated_tables_are_current says that)."""
    for name in ("commands.md", "runbook-format.md"):
        shutil.copy(DOCS / name, tmp_path / name)
    docgen.update(tmp_path, check=False)
    return tmp_path


def test_docgen_check_names_a_stale_block_and_rewrite_fixes_it(
    docs_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = docs_copy / "runbook-format.md"
    current = page.read_text(encoding="utf-8")
    assert "| `percentile` |" in current
    page.write_text(current.replace("| `percentile` |", "| `pct` |"), encoding="utf-8")
    before = page.read_text(encoding="utf-8")
    assert docgen.main(["--check", str(docs_copy)]) == 1
    out, err = capsys.readouterr()
    assert out == f"out of date: {page}#check-kinds\n"
    assert "python -m runbook.docgen" in err
    assert page.read_text(encoding="utf-8") == before  # --check writes nothing
    assert docgen.main([str(docs_copy)]) == 0
    assert capsys.readouterr().out == f"updated: {page}#check-kinds\n"
    assert page.read_text(encoding="utf-8") == current
    assert docgen.main(["--check", str(docs_copy)]) == 0


def test_docgen_without_markers_exits_2_and_writes_nothing(
    docs_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = docs_copy / "runbook-format.md"
    stale.write_text(
        stale.read_text(encoding="utf-8").replace("| `percentile` |", "| `pct` |"), encoding="utf-8"
    )
    broken = docs_copy / "commands.md"
    broken.write_text("# Commands\n", encoding="utf-8")
    before = stale.read_text(encoding="utf-8")
    assert docgen.main([str(docs_copy)]) == 2
    err = capsys.readouterr().err
    assert "no generated block 'commands'" in err
    assert "<!-- BEGIN GENERATED commands: python -m runbook.docgen -->" in err
    assert stale.read_text(encoding="utf-8") == before  # nothing written when one file is broken
    assert docgen.main([str(tmp_missing := docs_copy / "nowhere")]) == 2
    assert str(tmp_missing) in capsys.readouterr().err


def test_docgen_defaults_read_as_yaml() -> None:
    tables = docgen.check_kind_tables()
    assert "| `window` | `1h` |" in tables  # a duration default, not 3600.0
    assert "| `since_stage` | `false` |" in tables
    assert "| `status` | `[pending, running]` |" in tables
    assert "| `max` | - |" in tables
    assert "| `query` | (required) |" in tables  # prometheus
