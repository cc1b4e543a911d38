"""Check kinds. Each kind is one module exposing `KIND: CheckKind`; modules are imported on first use so
that commands which run no checks stay fast."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from runbook.checks.base import CheckKind, Measurement, Verdict

__all__ = ["KIND_MODULES", "CheckKind", "Measurement", "Verdict", "all_kinds", "get_kind"]

KIND_MODULES: dict[str, str] = {
    "http": "runbook.checks.http",
    "sql": "runbook.checks.sql",
    "command": "runbook.checks.command",
    "pgboss": "runbook.checks.pgboss",
    "legacy": "runbook.checks.legacy",
    "memory": "runbook.checks.memory",
    "uptime": "runbook.checks.uptime",
    "compare": "runbook.checks.compare",
    "work": "runbook.checks.work",
    "prometheus": "runbook.checks.prometheus",
}


def available_kinds() -> list[str]:
    """Kinds whose module exists in this installation."""
    out = []
    for name, mod in KIND_MODULES.items():
        if importlib.util.find_spec(mod) is not None:
            out.append(name)
    return out


def get_kind(name: str) -> CheckKind[Any]:
    """The registered kind `name`. Raises KeyError for an unknown kind."""
    module = importlib.import_module(KIND_MODULES[name])
    kind: CheckKind[Any] = module.KIND
    return kind


def all_kinds() -> dict[str, CheckKind[Any]]:
    return {name: get_kind(name) for name in available_kinds()}
