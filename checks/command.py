"""`command`: run a program; pass on the expected exit status (the escape hatch).

`run` is an argv list executed without a shell; with `shell: true` it is one string run by /bin/sh. The
program may take the check's `timeout` (the runner passes it through `transient.scope`); running longer is
ERROR and the program is killed. The last non-empty line of stdout is the value (a number when it reads as
one), and `expect` may state conditions on it (`value < 5`). A wrong exit status is FAIL; a program that
cannot be started is ERROR. `env` values are secrets: only their names reach the inputs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runbook.checks import expect as ex
from runbook.checks.base import CheckContext, CheckKind, Measurement, Verdict
from runbook.checks.transient import budget
from runbook.model import doc
from runbook.procgroup import run_in_group


@dataclass(frozen=True)
class CommandParams:
    run: tuple[str, ...] = doc("argv to run (no shell unless `shell: true`, then one string)", ())
    shell: bool = doc("run through /bin/sh", False)
    exit_code: int = doc("exit status that passes", 0)
    cwd: str | None = doc("working directory", None)
    expect: tuple[str, ...] = doc('conditions on the last line of stdout: "value <= 10"', ())
    env: Mapping[str, str] = doc("extra environment variables (values are secrets)", factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.run, str):
            object.__setattr__(self, "run", (self.run,))
        if not self.run:
            raise ValueError("run: required, an argv list such as [pg_isready, -h, localhost]")
        if self.shell and len(self.run) != 1:
            raise ValueError("run: with `shell: true` give one command string, not a list")
        ex.parse_all(self.expect)


def last_line(text: str) -> str | None:
    """The last non-empty line of `text`, stripped."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def as_value(line: str | None) -> Any:
    """A line of output as a value: a number, true/false/null, or the text itself."""
    if line is None:
        return None
    try:
        return ex.literal(line)
    except ValueError:
        return line


def run(
    argv: str | list[str], *, shell: bool, cwd: str | None, env: Mapping[str, str], timeout: float
) -> tuple[int, str, str]:
    """Run a program in its own process group, killed with everything it started when the check ends (or
    times out: TimeoutExpired), and by a watchdog if `migrate` itself is killed."""
    return run_in_group(argv, shell=shell, cwd=cwd, env=env, timeout=timeout)


def measure(params: CommandParams, ctx: CheckContext) -> Measurement:
    """Run the program and judge its exit status and output."""
    argv: str | list[str] = params.run[0] if params.shell else list(params.run)
    shown = params.run[0] if params.shell else " ".join(params.run)
    inputs: dict[str, Any] = {"run": shown, "shell": params.shell, "exit_code": params.exit_code}
    if params.expect:
        inputs["expect"] = list(params.expect)
    if params.env:
        inputs["env"] = sorted(params.env)
    timeout = budget()
    env = {**os.environ, **ctx.env, **params.env}
    try:
        code, out, err = run(argv, shell=params.shell, cwd=params.cwd, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Measurement(Verdict.ERROR, None, f"`{shown}` timed out after {timeout:.1f}s", inputs)
    except OSError as exc:
        text = f"cannot run `{shown}`: {exc.strerror or exc}"
        if not params.shell and len(params.run) == 1 and " " in params.run[0]:
            text += " (run is one string: write an argv list such as [pg_isready, -q], or set shell: true)"
        return Measurement(Verdict.ERROR, None, text, inputs)
    value = as_value(last_line(out))
    if code != params.exit_code:
        why = last_line(err) or last_line(out) or "no output"
        text = f"`{shown}` exited {code}, expected {params.exit_code}: {why[:200]}"
        return Measurement(Verdict.FAIL, value, text, inputs)
    failed: list[str] = []
    passed: list[str] = []
    for assertion in ex.parse_all(params.expect):
        try:
            ok, _, text = assertion.evaluate({"value": value})
        except ex.MissingValue as exc:
            return Measurement(Verdict.ERROR, value, f"`{shown}`: {exc}", inputs)
        (passed if ok else failed).append(text)
    notes = "; ".join(failed or passed)
    text = f"`{shown}` exited {code}" + (f"; {notes}" if notes else "")
    return Measurement(Verdict.FAIL if failed else Verdict.PASS, value, text, inputs)


KIND = CheckKind(name="command", params=CommandParams, measure=measure, summary="exit status of a program")
