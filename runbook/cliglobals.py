"""The global options of `migrate` (`-f`, `-o`, `--time-scale`, `--no-color`, `--traceback`), written once and
accepted before or after the command, as kubectl and gh users expect: `migrate -o json status` and
`migrate status -o json` are the same. `GlobalGroup` adds them to every subcommand it holds (a new command is
covered without a line of its own); a value typed after the command overrides the one typed before it, so
the last one typed wins. Both places write through `Globals.apply`, the one place that checks and applies a
value."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from runbook.output import FORMATS, Output
from runbook.units import TIME_SCALE_ENV

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_FILE = "stages.yaml"
NAMES = ("file_", "fmt", "time_scale", "traceback", "no_color")
"""The parameter names of the global options, in the order the group's callback receives them."""


@dataclass
class Globals:
    """What the global options decide: the runbook path, the output object, tracebacks, the environment."""

    file: str = DEFAULT_FILE
    """The runbook path: the last -f typed (every command but `migrate watch` reads one runbook)."""
    files: list[str] = field(default_factory=lambda: [DEFAULT_FILE])
    """Every -f typed in one place (`migrate watch -f a.yaml -f b.yaml`, or a folder): those typed after the
    command replace those typed before it, as any global option's value does."""
    output: Output = field(default_factory=Output)
    traceback: bool = False
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    file_typed: bool = False
    """Whether -f was typed (rather than the default or RUNBOOK_FILE)."""
    no_color: bool = False

    def apply(self, name: str, value: Any, *, typed: bool = True) -> None:
        """Apply one global option (None and False mean "not given" and change nothing)."""
        if value is None or value is False or value == ():
            return
        if name == "file_":
            self.files = [str(v) for v in (value if isinstance(value, tuple | list) else [value])]
            self.file, self.file_typed = self.files[-1], self.file_typed or typed
        elif name == "fmt":
            self.output = self._output(str(value))
        elif name == "time_scale":
            if not 0 < float(value) <= 1:
                raise click.BadParameter("must be in (0, 1]", param_hint="--time-scale")
            self.env[TIME_SCALE_ENV] = str(value)  # for this invocation only: never the process environment
        elif name == "traceback":
            self.traceback = True
        elif name == "no_color":
            self.no_color = True
            self.output = self._output(self.output.fmt)
        else:  # pragma: no cover - NAMES and the options below are one list
            raise AssertionError(name)

    def _output(self, fmt: str) -> Output:
        return Output(fmt, color=False if self.no_color else None, redactor=self.output.redact)


class _Paths(click.ParamType[str]):
    """A runbook path; several in RUNBOOK_FILE are separated as in PATH (`a.yaml:b.yaml` on Unix)."""

    name = "path"
    envvar_list_splitter = os.pathsep

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        return str(value)


_PATHS = _Paths()


def _specs(top: bool) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """The global options; `top`: the group's (with defaults and RUNBOOK_FILE), else a subcommand's copy."""
    scale_help = (
        "Multiply every duration (windows, soaks, intervals; not timeouts) by this factor (demos, tests); "
        f"recorded in history. Env {TIME_SCALE_ENV}."
    )
    specs: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (
            ("-f", "--file", "file_"),
            {
                "default": (DEFAULT_FILE,) if top else None,
                "envvar": "RUNBOOK_FILE" if top else None,
                "show_default": top,
                "multiple": True,
                "type": _PATHS,
                "help": "The runbook file (watch: repeat it, or name a folder of runbooks).",
            },
        ),
        (
            ("-o", "--output", "fmt"),
            {
                "type": click.Choice(FORMATS),
                "default": "text" if top else None,
                "show_default": top,
                "help": "Output format.",
            },
        ),
        (("--time-scale",), {"type": float, "default": None, "help": scale_help}),
        (("--traceback",), {"is_flag": True, "help": "Show Python tracebacks of errors (for bug reports)."}),
        (("--no-color",), {"is_flag": True, "help": "No colours (NO_COLOR is honoured too)."}),
    ]
    if not top:
        for _, kwargs in specs:
            kwargs.update(expose_value=False, callback=_from_subcommand)
    return specs


def _from_subcommand(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    settings = ctx.find_object(Globals)
    if settings is not None and param.name is not None:
        settings.apply(param.name, value)
    return value


def global_options(fn: F) -> F:
    """Decorate the group's callback with the global options (it receives them by the names in NAMES)."""
    for decls, kwargs in reversed(_specs(top=True)):
        fn = click.option(*decls, **kwargs)(fn)
    return fn


def settings_from(ctx: click.Context, settings: Globals, values: dict[str, Any]) -> Globals:
    """Apply the group-level values (given before the command) to `settings`."""
    for name in NAMES:
        typed = ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
        settings.apply(name, values[name], typed=typed)
    return settings


class GlobalGroup(click.Group):
    """A group whose every subcommand also takes the global options (after the command name); its subgroups
    (`migrate transfer legacy`) are GlobalGroups too."""

    group_class = type

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.params.extend(click.Option(list(decls), **kwargs) for decls, kwargs in _specs(top=False))
        super().add_command(cmd, name)
