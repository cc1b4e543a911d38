"""The `dotenv` flag backend: flags are lines of a `.env` file the app reads, rewritten atomically.

Reading understands `KEY=VALUE`, `export KEY=VALUE`, single- and double-quoted values (double quotes
decode \\n, \\t, \\", \\\\; quoted values may span lines), inline ` # comments` after unquoted values, and
comment lines. When a key appears twice, the last one counts (as in a shell).

Writing changes only the value of the flag lines (every occurrence), keeping their `export`, quoting style
and inline comment; every other byte of the file is kept as it was, and missing flags are appended. The
whole read-modify-write holds a lock across processes, and the file is re-read under it, so two writers
never lose an update; the new content replaces the file as `runbook.flags.envfile` does (rename-over, or
in place for a hard-linked or bind-mounted file; a symlinked `.env` is followed). Then the optional reload
command runs (argv, or one string through /bin/sh; in a process group of its own, killed whole when it ends,
times out or `migrate` dies: `runbook.procgroup`), and every flag is read back.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runbook.errors import FlagWriteError, UnreachableError
from runbook.faultpoints import pause
from runbook.flags import envfile
from runbook.flags.base import mismatches
from runbook.flags.programs import run_command, secret_redactor

_ASSIGN = re.compile(
    r"(?P<head>[ \t]*(?:export[ \t]+)?(?P<key>[A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*)(?P<rest>.*)"
)
_BARE = re.compile(r"[A-Za-z0-9_./:@+,%=-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


@dataclass
class Line:
    """A piece of the file: a passthrough line, or an assignment split into head, value and tail."""

    text: str
    key: str | None = None
    value: str = ""
    head: str = ""
    quote: str = ""
    tail: str = ""
    """After the value: closing quote excluded, inline comment and line ending included."""

    def render(self, value: str) -> str:
        return self.head + encode(value, self.quote) + self.tail


def encode(value: str, quote: str = "") -> str:
    """Encode `value` as a dotenv value, keeping the quoting style when it can hold the value."""
    if quote == "'" and "'" not in value and "\n" not in value:
        return f"'{value}'"
    if quote == "" and _BARE.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _closing(text: str, quote: str) -> int:
    """Find the closing quote in `text` (which starts after the opening one), or -1."""
    i = 0
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return -1


def parse(text: str) -> list[Line]:
    """Split a .env file into lines; joining their `text` gives back the file exactly."""
    physical = text.splitlines(keepends=True)
    out: list[Line] = []
    i = 0
    while i < len(physical):
        raw = physical[i]
        i += 1
        m = _ASSIGN.fullmatch(raw.rstrip("\r\n"))
        if not m:
            out.append(Line(raw))
            continue
        head, rest = m["head"], raw[m.end("head") :]
        if rest[:1] in ("'", '"'):
            quote, body, j = rest[0], rest[1:], i
            end = _closing(body, quote)
            while end < 0 and j < len(physical):  # a quoted value spanning lines
                body += physical[j]
                j += 1
                end = _closing(body, quote)
            if end >= 0:
                value = body[:end]
                if quote == '"':
                    value = re.sub(r"\\(.)", lambda e: _ESCAPES.get(e[1], "\\" + e[1]), value, flags=re.S)
                out.append(Line(raw + "".join(physical[i:j]), m["key"], value, head, quote, body[end + 1 :]))
                i = j
                continue
        content = rest.rstrip("\r\n")
        comment = re.search(r"[ \t]+#", content)
        value = (content[: comment.start()] if comment else content).rstrip()
        out.append(Line(raw, m["key"], value, head, "", rest[len(value) :]))
    return out


def values_of(lines: Sequence[Line]) -> dict[str, str]:
    """Return every key's value (the last occurrence wins)."""
    return {line.key: line.value for line in lines if line.key is not None}


def rewrite(text: str, values: Mapping[str, str]) -> str:
    """Set `values` in `text`: flag lines changed in place (only their value), missing ones appended."""
    lines, seen, out = parse(text), set(), []
    for line in lines:
        if line.key is not None and line.key in values:
            seen.add(line.key)
            out.append(line.text if line.value == values[line.key] else line.render(values[line.key]))
        else:
            out.append(line.text)
    new = "".join(out)
    missing = [k for k in values if k not in seen]
    if missing:
        nl = "\r\n" if "\r\n" in text else "\n"
        if new and not new.endswith("\n"):
            new += nl
        new += "".join(f"{k}={encode(values[k])}{nl}" for k in missing)
    return new


class DotenvFlagBackend:
    """Flags in a .env file, with an optional reload command."""

    def __init__(
        self,
        path: str | Path,
        *,
        reload: Sequence[str] = (),
        reload_shell: bool = False,
        reload_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.reload, self.reload_shell, self.reload_timeout = tuple(reload), reload_shell, reload_timeout
        self.env = dict(os.environ if env is None else env)

    def describe(self) -> str:
        """Name the file and reload program: `dotenv /srv/app/.env (reload: pm2)`."""
        reload = (
            f" (reload: {self._reload_argv()[0] if not self.reload_shell else 'sh'})" if self.reload else ""
        )
        return f"dotenv {self.path}{reload}"

    def _real(self) -> Path:
        real = Path(os.path.realpath(self.path))
        if not real.parent.is_dir():
            raise UnreachableError(
                f"the folder of the flags file {self.path} does not exist",
                hint="fix settings.flags.path (relative paths are relative to the runbook file)",
            )
        return real

    def _text(self, real: Path) -> str:
        try:
            return real.read_bytes().decode("utf-8", errors="surrogateescape")
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise UnreachableError(
                f"cannot read the flags file {self.path}: {exc.strerror}",
                hint="check settings.flags.path and that this user may read it",
            ) from None

    def read(self, names: Sequence[str]) -> dict[str, str | None]:
        """Read the values of `names` from the file (None when absent, or when there is no file)."""
        found = values_of(parse(self._text(self._real())))
        return {name: found.get(name) for name in names}

    def _reload_argv(self) -> list[str]:
        if self.reload_shell:
            return ["/bin/sh", "-c", " ".join(self.reload)]
        return list(self.reload)

    def write(self, values: Mapping[str, str], *, actor: str = "") -> None:
        """Under the file's lock: re-read the file, rewrite it (rename-over, or in place for a hard-linked
        or mounted file), run the reload command, read back (FlagWriteError on a mismatch)."""
        real = self._real()
        wait = self.reload_timeout + 30.0  # a writer holding the lock may be running its reload command
        try:
            with envfile.locked(real, wait):
                self._write_locked(real, values, actor)
        except envfile.Timeout:
            raise FlagWriteError(
                f"another process has been writing the flags file {self.path} for {wait:g}s",
                hint="look for a stuck `migrate` or reload command, then run the command again",
            ) from None
        except OSError as exc:
            raise FlagWriteError(
                f"cannot lock the flags file {self.path}: {exc.strerror or exc}",
                hint="check that this user may write the file and its folder",
            ) from None

    def _write_locked(self, real: Path, values: Mapping[str, str], actor: str) -> None:
        envfile.clean_leftovers(real)  # of a writer killed during its rewrite: no live writer owns one now
        text = self._text(real)  # read under the lock: what another writer wrote just before is kept
        new = rewrite(text, values)
        pause("dotenv:read")
        if new != text:
            try:
                envfile.replace(real, new.encode("utf-8", errors="surrogateescape"))
            except OSError as exc:
                raise FlagWriteError(
                    f"cannot write the flags file {self.path}: {exc.strerror}",
                    hint="check that this user may write the file and its folder",
                ) from None
        if self.reload:
            env = {**self.env, "RUNBOOK_ACTOR": actor}
            run_command(
                self._reload_argv(),
                timeout=self.reload_timeout,
                what=f"flags written to {self.path}, but the reload command",
                setting="settings.flags.reload",
                error=FlagWriteError,
                env=env,
                cwd=str(real.parent),
                redact=secret_redactor(env),
            )
        bad = mismatches(values, self.read(list(values)))
        if bad:
            raise FlagWriteError(
                f"flag write did not stick ({self.describe()}): " + "; ".join(bad),
                hint=f"something rewrote {self.path} after us (the reload command, or a deploy): check it",
            )
