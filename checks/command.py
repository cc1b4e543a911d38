"""`command`: run a program; pass on the expected exit status (the escape hatch)."""

from __future__ import annotations

from dataclasses import dataclass

from runbook.checks.base import CheckContext, CheckKind, Measurement
from runbook.model import doc


@dataclass(frozen=True)
class CommandParams:
    run: tuple[str, ...] = doc("argv to run (no shell unless `shell: true`, then one string)", ())
    shell: bool = doc("run through /bin/sh", False)
    exit_code: int = doc("exit status that passes", 0)
    cwd: str | None = doc("working directory", None)


def measure(params: CommandParams, ctx: CheckContext) -> Measurement:
    raise NotImplementedError


KIND = CheckKind(name="command", params=CommandParams, measure=measure, summary="exit status of a program")
