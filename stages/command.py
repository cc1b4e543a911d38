"""The `command` flag backend: templated commands get and set each flag (Fly, Heroku, Vercel, kubectl...).

`get` prints the value of `{name}` on stdout (empty output = not set); `set` sets `{name}` to `{value}`
(`{actor}` is also available). Without a shell, each argument is templated separately, so a value can never
become a second argument. With `shell: true`, get and set are one string each, run by /bin/sh, and the
substituted values are shell-quoted. The values are also in the environment of every command
(RUNBOOK_FLAG_NAME, RUNBOOK_FLAG_VALUE, RUNBOOK_ACTOR). After setting, every flag is read back with `get`.

Messages name only the program (`fly`), never its arguments, and pass output through a redactor that
masks URL passwords and the values of secret-looking environment variables (runbook.flags.programs).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence

from runbook.errors import ConfigError, FlagWriteError, UnreachableError
from runbook.flags.base import mismatches
from runbook.flags.programs import program, run_command, secret_redactor

_PLACEHOLDER = re.compile(r"\{(name|value|actor)\}")


class CommandFlagBackend:
    """Flags read and written by external commands."""

    def __init__(
        self,
        get: Sequence[str],
        set: Sequence[str],
        *,
        shell: bool = False,
        timeout: float = 30.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        if not get:
            raise ConfigError("the command flag backend has no `get` command", hint="set settings.flags.get")
        if not set:
            raise ConfigError("the command flag backend has no `set` command", hint="set settings.flags.set")
        self.get_template, self.set_template = tuple(get), tuple(set)
        self.shell, self.timeout, self.cwd = shell, timeout, cwd
        self.env = dict(os.environ if env is None else env)
        self.redact = secret_redactor(self.env)

    def _argv(self, template: Sequence[str], subs: Mapping[str, str]) -> list[str]:
        if self.shell:
            script = _PLACEHOLDER.sub(lambda m: shlex.quote(subs[m.group(1)]), " ".join(template))
            return ["/bin/sh", "-c", script]
        return [_PLACEHOLDER.sub(lambda m: subs[m.group(1)], arg) for arg in template]

    def _run(
        self, template: Sequence[str], subs: Mapping[str, str], what: str, setting: str, err: type
    ) -> str:
        env = {**self.env, "RUNBOOK_FLAG_NAME": subs["name"], "RUNBOOK_FLAG_VALUE": subs["value"]}
        env["RUNBOOK_ACTOR"] = subs["actor"]
        return run_command(
            self._argv(template, subs),
            timeout=self.timeout,
            what=what,
            setting=setting,
            error=err,
            env=env,
            cwd=self.cwd,
            redact=self.redact,
        )

    def describe(self) -> str:
        """Name the programs only (`command fly / fly`): arguments may hold tokens."""
        get = program(self._argv(self.get_template, {"name": "", "value": "", "actor": ""}))
        put = program(self._argv(self.set_template, {"name": "", "value": "", "actor": ""}))
        return f"command {get} / {put}"

    def read(self, names: Sequence[str]) -> dict[str, str | None]:
        """Run `get` for each flag; empty output means not set. A failing `get` is UnreachableError."""
        out: dict[str, str | None] = {}
        for name in names:
            subs = {"name": name, "value": "", "actor": ""}
            text = self._run(
                self.get_template, subs, f"reading flag {name}", "settings.flags.get", UnreachableError
            )
            out[name] = text.strip() or None
        return out

    def write(self, values: Mapping[str, str], *, actor: str = "") -> None:
        """Run `set` for each flag, then read every flag back (FlagWriteError when one did not stick)."""
        for name, value in values.items():
            subs = {"name": name, "value": value, "actor": actor}
            self._run(self.set_template, subs, f"setting flag {name}", "settings.flags.set", FlagWriteError)
        bad = mismatches(values, self.read(list(values)))
        if bad:
            raise FlagWriteError(
                f"flag write did not stick ({self.describe()}): " + "; ".join(bad),
                hint="check that settings.flags.get and settings.flags.set address the same store",
            )
