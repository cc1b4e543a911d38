"""The one output object: every result and error a command shows goes through here, rendered from
`templates/` as text (colour only on a terminal, NO_COLOR honoured), markdown, or stable JSON."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import IO, Any, Protocol

from runbook.errors import RunbookError
from runbook.redact import Redactor
from runbook.units import count, format_duration, format_size

FORMATS = ("text", "json", "markdown")
_STYLES = {
    "pass": "32",
    "ok": "32",
    "fail": "31",
    "error": "35",
    "inconclusive": "33",
    "warn": "33",
    "bold": "1",
    "dim": "2",
    "add": "32",
    "remove": "31",
    "change": "33",
}


class Renderable(Protocol):
    """A command's result: a template name and a JSON form."""

    template: str

    def to_json(self) -> dict[str, Any]: ...


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json_text(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)


TEMPLATE_CACHE_ENV = "RUNBOOK_TEMPLATE_CACHE"
"""Folder for compiled templates (default: $XDG_CACHE_HOME/runbook/templates); `off` disables the cache."""


def _bytecode_cache(jinja2: Any) -> Any:
    """Return a cache of compiled templates (compiling them costs more than the rest of `migrate status`), or
    None when it is turned off or its folder cannot be made. Cache errors never fail a command."""
    setting = os.environ.get(TEMPLATE_CACHE_ENV, "")
    if setting.lower() == "off":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = setting or os.path.join(base, "runbook", "templates")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None

    class QuietCache(jinja2.FileSystemBytecodeCache):  # type: ignore[misc]
        def load_bytecode(self, bucket: Any) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:  # a corrupt or unreadable entry: compile again
                bucket.reset()

        def dump_bytecode(self, bucket: Any) -> None:
            with contextlib.suppress(OSError):  # read-only or full disk: just no cache
                super().dump_bytecode(bucket)

    return QuietCache(folder)


class Output:
    """Renders results to a stream. Tests swap the streams; the CLI builds one per invocation."""

    def __init__(
        self,
        fmt: str = "text",
        *,
        stream: IO[str] | None = None,
        err: IO[str] | None = None,
        color: bool | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown output format {fmt!r}")
        self.fmt = fmt
        self.stream = stream or sys.stdout
        self.err = err or sys.stderr
        if color is None:
            color = fmt == "text" and not os.environ.get("NO_COLOR") and _isatty(self.stream)
        self.color = color
        self.redact = redactor or Redactor()

    @cached_property
    def _env(self) -> Any:
        import jinja2

        import runbook.templates

        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(Path(runbook.templates.__file__).parent),
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            undefined=jinja2.StrictUndefined,
            bytecode_cache=_bytecode_cache(jinja2),
        )
        env.filters["duration"] = lambda s: "-" if s is None else format_duration(float(s))
        env.filters["size"] = lambda n: "-" if n is None else format_size(float(n))
        env.filters["style"] = self.style
        env.filters["verdict"] = lambda v: self.style(str(v).upper(), str(v))
        env.filters["when"] = _when
        env.filters["value"] = _value
        env.filters["json"] = to_json_text
        env.filters["count"] = count
        return env

    def style(self, text: Any, style: str) -> str:
        code = _STYLES.get(style)
        if not self.color or not code:
            return str(text)
        return f"\x1b[{code}m{text}\x1b[0m"

    def render(self, result: Renderable) -> str:
        """The text of `result` in this output's format (JSON is not templated: it is the data itself)."""
        if self.fmt == "json":
            return to_json_text(result.to_json()) + "\n"
        ext = "md" if self.fmt == "markdown" else "txt"
        template = self._env.get_template(f"{result.template}.{ext}.j2")
        return str(template.render(r=result, data=result.to_json()))

    def emit(self, result: Renderable) -> None:
        self.stream.write(self.redact(self.render(result)))
        self.stream.flush()

    def notice(self, result: Renderable) -> None:
        """A note for people after the result (stderr, its text template, in every format)."""
        template = self._env.get_template(f"{result.template}.txt.j2")
        text = str(template.render(r=result, data=result.to_json()))
        self.err.write(self.redact(text))
        self.err.flush()

    def progress(self, message: str) -> None:
        """A line of progress for people on stderr: in the text format only, except warnings (lines starting
        `warning:`, e.g. journal lines not synced), which stderr carries in every format."""
        if self.fmt == "text" or message.startswith("warning:"):
            self.err.write(self.redact(message) + "\n")
            self.err.flush()

    def error(self, exc: RunbookError) -> None:
        if self.fmt == "json":
            body: dict[str, Any] = {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
            body["exit_code"] = int(exc.exit_code)
            payload = {"error": body}
            self.stream.write(self.redact(to_json_text(payload)) + "\n")
            return
        text = self.style("error:", "fail") + " " + exc.message
        if exc.hint:
            text += "\n  " + self.style("hint:", "bold") + " " + exc.hint
        self.err.write(self.redact(text) + "\n")


def _isatty(stream: IO[str]) -> bool:
    isatty: Callable[[], bool] | None = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:
        return False


def _when(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _value(m: dict[str, Any]) -> str:
    v = m.get("value")
    unit = m.get("unit") or ""
    if v is None:
        return "-"
    if unit == "bytes" and isinstance(v, int | float):
        return format_size(v)
    if unit == "seconds" and isinstance(v, int | float):
        return format_duration(v)
    if isinstance(v, float):
        return f"{v:.4g}{(' ' + unit) if unit else ''}"
    return f"{v}{(' ' + unit) if unit else ''}"
