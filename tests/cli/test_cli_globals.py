"""Global options (-f, -o, --time-scale, --no-color, --traceback) before or after every command, the last one
typed winning; `migrate validate FILE`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from runbook.cli import Cli, main
from tests.cli.conftest import Outcome
from tests.conftest import REPO

Migrate = Callable[..., Outcome]


def leaf_commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of `migrate` (subgroups walked), so a new command is covered by itself."""
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from leaf_commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name)


def command_at(path: tuple[str, ...]) -> click.Command:
    cmd: click.Command = main
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    return cmd


def required_args(cmd: click.Command) -> list[str]:
    """Dummy values for the command's required options and arguments (parsing only)."""
    args: list[str] = []
    for p in cmd.params:
        if p.required and isinstance(p, click.Option):
            args += [p.opts[0], "x"]
        elif p.required:
            args.append("x")
    return args


OPTIONS: dict[str, tuple[list[str], Callable[[Cli], Any], Any]] = {
    "-f": (["-f", "other.yaml"], lambda c: c.file, "other.yaml"),
    "--file": (["--file", "other.yaml"], lambda c: c.file, "other.yaml"),
    "-o": (["-o", "json"], lambda c: c.output.fmt, "json"),
    "--output": (["--output", "markdown"], lambda c: c.output.fmt, "markdown"),
    "--time-scale": (["--time-scale", "0.25"], lambda c: c.env["RUNBOOK_TIME_SCALE"], "0.25"),
    "--no-color": (["--no-color"], lambda c: (c.no_color, c.output.color), (True, False)),
    "--traceback": (["--traceback"], lambda c: c.traceback, True),
}


def settings_of(monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], args: list[str]) -> Cli:
    """Run `migrate ARGS` with the command's body replaced by one that keeps the settings it was given."""
    seen: list[Cli] = []

    def keep(**_: Any) -> None:
        cli = click.get_current_context().find_object(Cli)
        assert cli is not None
        seen.append(cli)

    monkeypatch.setattr(command_at(path), "callback", keep)
    monkeypatch.delenv("RUNBOOK_FILE", raising=False)
    monkeypatch.delenv("RUNBOOK_TIME_SCALE", raising=False)
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (cli,) = seen
    return cli


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("path", list(leaf_commands()), ids=" ".join)
def test_every_command_takes_every_global_option_before_or_after_it(
    monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], option: str, where: str
) -> None:
    typed, read, expected = OPTIONS[option]
    rest = [*path, *required_args(command_at(path))]
    args = [*typed, *rest] if where == "before" else [*rest, *typed]
    assert read(settings_of(monkeypatch, path, args)) == expected
    defaults = settings_of(monkeypatch, path, rest)  # and nothing leaks into the next invocation
    assert (defaults.file, defaults.output.fmt, defaults.traceback) == ("stages.yaml", "text", False)
    assert "RUNBOOK_TIME_SCALE" not in defaults.env and "RUNBOOK_TIME_SCALE" not in os.environ


def test_help_says_so(migrate: Migrate) -> None:
    r = migrate("--help")
    assert r.code == 0
    assert "The options above also work after the command: `migrate status -o json`" in r.out
    assert "-o, --output [text|json|markdown]" in migrate("status", "--help").out


def test_the_last_one_typed_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    cli = settings_of(monkeypatch, ("status",), ["-o", "json", "-f", "a.yaml", "status", "-o", "markdown"])
    assert (cli.output.fmt, cli.file) == ("markdown", "a.yaml")
    cli = settings_of(monkeypatch, ("status",), ["--time-scale", "0.5", "status", "--time-scale", "0.1"])
    assert cli.env["RUNBOOK_TIME_SCALE"] == "0.1"
    cli = settings_of(monkeypatch, ("status",), ["--no-color", "status", "-o", "text"])
    assert (cli.output.fmt, cli.output.color) == ("text", False)  # a later -o keeps --no-color


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize(
    ("value", "message"), [("60", "must be in (0, 1]"), ("soon", "is not a valid float")]
)
def test_a_bad_global_value_is_a_usage_error_in_either_place(
    migrate: Migrate, where: str, value: str, message: str
) -> None:
    args = ["--time-scale", value, "validate"] if where == "before" else ["validate", "--time-scale", value]
    r = migrate(*args)
    assert r.code == 2
    assert "--time-scale" in r.err and message in r.err


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNBOOK_FILE", raising=False)
    (tmp_path / "x.yaml").write_text((REPO / "stages.yaml").read_text())
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [("validate", "-f", "x.yaml"), ("-f", "x.yaml", "validate"), ("validate", "x.yaml")],
    ids=["-f after", "-f before", "FILE"],
)
def test_validate_reads_the_file_given_anywhere(
    elsewhere: Path, migrate: Migrate, args: tuple[str, ...]
) -> None:
    r = migrate(*args, "-o", "json")
    assert r.code == 0, r.text
    assert json.loads(r.out)["path"] == "x.yaml"


def test_validate_refuses_two_different_files(elsewhere: Path, migrate: Migrate) -> None:
    r = migrate("-f", "y.yaml", "validate", "x.yaml")
    assert r.code == 2
    assert r.err == "error: two runbook files: x.yaml and -f y.yaml\n  hint: give one of them\n"
    assert migrate("validate", "x.yaml", "-f", "x.yaml").code == 0  # the same file twice is fine
    missing = migrate("validate", "nope.yaml")
    assert missing.code == 2 and "nope.yaml" in missing.err


def test_status_and_gate_with_options_after_the_command(rb_dir: Path, migrate: Migrate) -> None:
    assert migrate("advance", "--yes", "--time-scale", "0.01", "--no-color").code == 0
    status = migrate("status", "-o", "json")
    assert status.code == 0, status.text
    assert json.loads(status.out)["stage"] == "one"
    gate = migrate("gate", "-o", "json", "--time-scale", "0.01")
    assert gate.code == 0, gate.text
    assert json.loads(gate.out)["stage"] == "one"
    ev = json.loads(migrate("history", "--operation", "advance", "-o", "json").out)["events"][-1]
    assert ev["data"]["time_scale"] == 0.01
