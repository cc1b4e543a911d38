"""The public entry points: reading files, environment defaults, time scale checks, error structure."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.errors import SpecError, SpecIssue
from runbook.exitcodes import ExitCode
from runbook.spec import RegistryKinds, load_runbook, load_runbook_text

TEXT = "version: 1\nname: n\nsettings: {database: {url: '${DB_URL}'}}\nflags: {F: false}\nstages: [{id: a}]\n"


def issues_of(exc: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return [str(i) for i in exc.value.issues]


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_runbook(tmp_path / "nope.yaml", env={})
    assert issues_of(info) == [
        f"{tmp_path / 'nope.yaml'}:1:1: no such file; create it with `migrate init`, or pass --file PATH"
    ]
    assert info.value.exit_code == ExitCode.USAGE


def test_directory_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_runbook(tmp_path, env={})
    assert issues_of(info) == [f"{tmp_path}:1:1: cannot read the runbook: Is a directory"]
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"version: 1\nname: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load_runbook(bad, env={})
    assert issues_of(info) == [f"{bad}:2:1: the file is not UTF-8 text; save it as UTF-8"]


def test_byte_order_mark_and_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rb.yaml").write_bytes(b"\xef\xbb\xbf" + TEXT.encode())
    monkeypatch.chdir(tmp_path)
    rb = load_runbook("rb.yaml", env={"DB_URL": "postgres://h/db"}, time_scale=1.0)
    assert (rb.source, rb.settings.database.url) == ("rb.yaml", "postgres://h/db")
    assert rb.stages[0].location == "rb.yaml:5:10"


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_URL", "postgres://from-os/db")
    assert load_runbook_text(TEXT, "t.yaml", time_scale=1.0).settings.database.url == "postgres://from-os/db"
    monkeypatch.delenv("DB_URL")
    with pytest.raises(SpecError) as info:
        load_runbook_text(TEXT, "t.yaml", time_scale=1.0)
    assert issues_of(info) == [
        "t.yaml:3:28: settings.database.url: environment variable DB_URL is not set; "
        "set it, or write ${DB_URL:-default}"
    ]


@pytest.mark.parametrize("scale", [0, -1, 1.5])
def test_time_scale_must_be_in_range(scale: float) -> None:
    with pytest.raises(SpecError) as info:
        load_runbook_text(TEXT, "t.yaml", env={"DB_URL": "x"}, time_scale=scale)
    assert issues_of(info) == [
        f"t.yaml:1:1: the time scale must be in (0, 1] (e.g. 0.001 runs a day in 86s), got {scale:g}"
    ]


def test_error_holds_structured_issues_in_file_order() -> None:
    text = "version: 1\nname: n\nflags: {F: false}\nstages:\n  - {id: b, rollback_to: z}\n  - {id: B}\n"
    with pytest.raises(SpecError) as info:
        load_runbook_text(text, "t.yaml", env={})
    assert info.value.issues == (
        SpecIssue("t.yaml", 5, 26, "stages[0].rollback_to", 'unknown stage "z"; expected one of: b'),
        SpecIssue(
            "t.yaml",
            6,
            10,
            "stages[1].id",
            'stage id "B" must match ^[a-z][a-z0-9_-]*$ (e.g. enable-imports)',
        ),
    )
    assert str(info.value) == "\n".join(str(i) for i in info.value.issues)


def test_more_than_one_document() -> None:
    with pytest.raises(SpecError) as info:
        load_runbook_text(TEXT + "---\nx: 1\n", "t.yaml", env={"DB_URL": "x"})
    assert issues_of(info) == [
        "t.yaml:6:1: a runbook is a single YAML document; "
        "remove this `---` and what follows, or merge it above"
    ]


def test_registry_kinds_are_lazy_and_complete() -> None:
    kinds = RegistryKinds()
    assert {"http", "sql", "command"} <= set(kinds)
    assert "nope" not in kinds
    assert kinds["sql"].__name__ == "SqlParams"
    with pytest.raises(KeyError):
        kinds["nope"]
