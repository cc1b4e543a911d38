"""What a command's result shares: a JSON form that is its own fields, for the results that add nothing to
them (the output object renders `to_json()` as JSON and hands it to the result's template)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, cast

NOT_DATA = ("template", "exit_code")
"""A result's fields that say how to show it and how to exit, not what it found."""


class FieldsJson:
    """Mixed into a result dataclass: `to_json()` is every field but `template` and `exit_code`, in order,
    each under its name or the one `json_names` gives it."""

    json_names: ClassVar[dict[str, str]] = {}
    """Fields whose JSON key differs from the field's name (a stable key the code names otherwise)."""

    def to_json(self) -> dict[str, Any]:
        fields = dataclasses.fields(cast(Any, self))
        names = self.json_names
        return {names.get(f.name, f.name): getattr(self, f.name) for f in fields if f.name not in NOT_DATA}
