"""`migrate validate`: check a runbook file without touching anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.exitcodes import ExitCode
from runbook.model import Runbook


@dataclass(frozen=True)
class ValidateResult:
    path: str
    runbook: Runbook
    warnings: list[str] = field(default_factory=list)
    """Shipped-runbook variables set but not read by this runbook (runbook.shipped_vars); fields a check
    reads from the app under the shipped names that this runbook's app does not serve (contract_runbook)."""
    template: str = "validate"
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        rb = self.runbook
        checks = sum(len(s.preflight) + len(s.verify) + len(s.monitor) + len(s.soak.work) for s in rb.stages)
        return {
            "valid": True,
            "path": self.path,
            "name": rb.name,
            "time_scale": rb.time_scale,
            "flags": [{"name": f.name, "safe": f.safe} for f in rb.flags],
            "stages": [
                {
                    "id": s.id,
                    "title": s.title,
                    "set": dict(s.set),
                    "checks": len(s.preflight) + len(s.verify) + len(s.monitor) + len(s.soak.work),
                    "soak_seconds": s.soak.duration,
                    "approval": s.approval,
                    "irreversible": s.irreversible,
                    "transfer": None
                    if s.transfer is None
                    else {"queue": s.transfer.queue, "enabled": s.transfer.enabled},
                }
                for s in rb.stages
            ],
            "checks": checks,
            "warnings": self.warnings,
        }


def validate(path: str | Path, env: Mapping[str, str] | None = None) -> ValidateResult:
    """Load the runbook strictly; raise SpecError on the first problems found."""
    import os

    from runbook.contract_runbook import stale_reads
    from runbook.shipped_vars import unread_variables
    from runbook.spec import load_runbook

    rb = load_runbook(path, env=env)
    warnings = [w.removeprefix("warning: ") for w in unread_variables(rb, os.environ if env is None else env)]
    warnings += stale_reads(rb)
    return ValidateResult(path=str(path), runbook=rb, warnings=warnings)
