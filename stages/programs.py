"""Running a flag backend's programs: the command backend's `get` and `set`, the dotenv backend's reload.

A program runs without a shell, in a process group of its own; its messages name only the program (`fly`),
never its arguments, and pass its output through a redactor that masks URL passwords and the values of
secret-looking environment variables (..._TOKEN, ..._PASSWORD)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence

from runbook.errors import ConfigError, FlagWriteError, RunbookError
from runbook.procgroup import run_in_group
from runbook.redact import Redactor

_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|AUTH|CREDENTIAL|PRIVATE", re.I)


def secret_redactor(env: Mapping[str, str] | None) -> Redactor:
    """Build a redactor masking the values of secret-looking variables of `env` and URL passwords."""
    env = os.environ if env is None else env
    return Redactor(v for k, v in env.items() if _SECRET_NAME.search(k))


def tail(text: str, lines: int = 8, chars: int = 1200) -> str:
    """Return the last lines of a command's output, for a message."""
    kept = "\n".join(text.strip().splitlines()[-lines:])
    return kept[-chars:] if len(kept) > chars else kept


def program(argv: Sequence[str]) -> str:
    """Name a command by its program (for `sh -c "..."`, the first word of the script)."""
    if len(argv) >= 3 and argv[0] == "/bin/sh" and argv[1] == "-c":
        words = argv[2].split()
        return f"sh: {os.path.basename(words[0])}" if words else "sh"
    return os.path.basename(argv[0]) if argv else "?"


def run_command(
    argv: Sequence[str],
    *,
    timeout: float,
    what: str,
    setting: str,
    error: type[RunbookError] = FlagWriteError,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    redact: Redactor | None = None,
) -> str:
    """Run `argv` and return its stdout; failures raise `error` with the stderr tail (redacted). The
    command runs in a process group of its own (`runbook.procgroup`): everything it started is killed when
    it ends or times out, and by a watchdog if `migrate` is killed meanwhile (stdin is /dev/null).

    A missing program is a ConfigError naming `setting`."""
    redact = redact or secret_redactor(env)
    name = program(argv)
    try:
        code, out, err = run_in_group(
            list(argv), shell=False, cwd=cwd, env=os.environ if env is None else env, timeout=timeout
        )
    except FileNotFoundError:
        raise ConfigError(
            f"{what}: program not found: {name}", hint=f"install it, or fix {setting}"
        ) from None
    except PermissionError:
        raise ConfigError(f"{what}: {name} is not executable", hint=f"fix {setting}") from None
    except subprocess.TimeoutExpired:
        raise error(
            f"{what} (`{name}`) did not finish within {timeout:g}s", hint=f"check it by hand; see {setting}"
        ) from None
    if code != 0:
        output = tail(err) or tail(out) or "(no output)"
        raise error(
            f"{what} (`{name}`) failed with exit status {code}: {redact(output)}",
            hint=f"run it by hand to see why; see {setting}",
        )
    return out
