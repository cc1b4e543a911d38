"""`migrate schema`: the JSON Schema of the runbook format, for editors and linters; `--contract`: the JSON
Schema of an app endpoint with the runbook's names (runbook.contract_runbook), to check the app's answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.exitcodes import ExitCode


@dataclass(frozen=True)
class SchemaResult:
    schema: dict[str, Any]
    template: str = "schema"
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return self.schema


def schema() -> SchemaResult:
    """Build the JSON Schema from the model and every installed check kind."""
    from runbook.spec import json_schema

    return SchemaResult(json_schema())


def contract_schema(
    runbook_file: str | Path, name: str, env: Mapping[str, str] | None = None
) -> SchemaResult:
    """The JSON Schema of app endpoint `name` (health, pgboss-status) for the runbook in `runbook_file`."""
    from runbook import contract_runbook
    from runbook.spec import load_runbook

    if name != contract_runbook.STATUS:  # /api/health names nothing of a runbook: none is needed
        return SchemaResult(contract_runbook.schema(None, name))
    return SchemaResult(contract_runbook.schema(load_runbook(runbook_file, env=env), name))
