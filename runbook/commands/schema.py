"""`migrate schema`: the JSON Schema of the runbook format, for editors and linters."""

from __future__ import annotations

from dataclasses import dataclass
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
