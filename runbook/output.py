"""The one output object: every result and error a command shows goes through here, rendered from
`templates/` as text (colour only on a terminal, NO_COLOR honoured), markdown, or stable JSON."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from functools import cached_property
from typing import IO, Any, Protocol

from runbook.errors import RunbookError
from runbook.redact import Redactor
from runbook.rendering import template_env, to_json_text

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
        self.json_lines = False
        """JSON documents on one line each (`watch`: its rounds, then its result, one object per line)."""

    @cached_property
    def _env(self) -> Any:
        return template_env(autoescape=False, style=self.style)

    def style(self, text: Any, style: str) -> str:
        code = _STYLES.get(style)
        if not self.color or not code:
            return str(text)
        return f"\x1b[{code}m{text}\x1b[0m"

    def render(self, result: Renderable) -> str:
        """The text of `result` in this output's format (JSON is not templated: it is the data itself)."""
        if self.fmt == "json":
            return self._json(result.to_json()) + "\n"
        ext = "md" if self.fmt == "markdown" else "txt"
        template = self._env.get_template(f"{result.template}.{ext}.j2")
        return str(template.render(r=result, data=result.to_json()))

    def _json(self, data: Any) -> str:
        text = to_json_text(data)
        return _one_line(text) if self.json_lines else text

    def emit(self, result: Renderable) -> None:
        self.stream.write(self.redact(self.render(result)))
        self.stream.flush()

    def record(self, data: dict[str, Any]) -> None:
        """One JSON object on a line of its own on stdout (a round of `watch -o json`): what a script reads as
        it comes, before the command's result."""
        self.stream.write(self.redact(_one_line(to_json_text(data))) + "\n")
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

    def meter(self, line: str | None) -> bool:
        """Redraw a progress bar in place on a terminal's stderr (text format only); `None` ends it. False
        when there is no terminal: the caller then prints a line per step with `progress`."""
        if self.fmt != "text" or not _isatty(self.err):
            return False
        self.err.write("\n" if line is None else "\r\x1b[K" + self.redact(line))
        self.err.flush()
        return True

    def error(self, exc: RunbookError) -> None:
        if self.fmt == "json":
            body: dict[str, Any] = {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint}
            body["exit_code"] = int(exc.exit_code)
            payload = {"error": body}
            self.stream.write(self.redact(self._json(payload)) + "\n")
            return
        text = self.style("error:", "fail") + " " + exc.message
        if exc.hint:
            text += "\n  " + self.style("hint:", "bold") + " " + exc.hint
        self.err.write(self.redact(text) + "\n")


def _one_line(text: str) -> str:
    """Indented JSON on one line: a JSON string never holds a raw line break (json escapes it as `\\n`), so
    every line break is indentation."""
    return re.sub(r"\n\s*", " ", text)


def _isatty(stream: IO[str]) -> bool:
    isatty: Callable[[], bool] | None = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:
        return False
