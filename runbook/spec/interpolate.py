"""`${VAR}` and `${VAR:-default}` in string scalars, read from the environment; `$${` writes a literal `${`.

As in the shell, the default applies when the variable is unset or empty.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_TOKEN = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)
_SECRETISH = re.compile(r"PASS|SECRET|TOKEN|KEY|AUTH|CREDENTIAL|PRIVATE", re.IGNORECASE)


class InterpolationError(ValueError):
    """A reference is malformed, or names a variable that is unset and has no default."""


@dataclass(frozen=True)
class Expanded:
    """A string after interpolation, and the variables it read."""

    value: str
    names: tuple[str, ...] = ()

    @property
    def secretish(self) -> bool:
        """Whether any variable read looks like a secret (its value must then not be echoed)."""
        return any(_SECRETISH.search(n) for n in self.names)


def needs_interpolation(text: str) -> bool:
    """Whether `text` holds a reference or an escape (cheap test before `interpolate`)."""
    return "${" in text


def interpolate(text: str, env: Mapping[str, str]) -> Expanded:
    """Replace every `${VAR}` / `${VAR:-default}` in `text`. Raises InterpolationError naming the fix."""
    if "${" not in text:
        return Expanded(text)
    out: list[str] = []
    names: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        out.append(text[pos : m.start()])
        pos = m.end()
        token = m.group(0)
        if token == "$${":
            out.append("${")
            continue
        body = m.group("body")
        if body is None:
            raise InterpolationError(
                'unclosed "${"; write ${NAME} or ${NAME:-default}, or $${ for a literal "${"'
            )
        ref = _BODY.fullmatch(body)
        if ref is None:
            raise InterpolationError(
                f'bad reference "{token}"; write ${{NAME}} or ${{NAME:-default}} (NAME: letters, digits, _)'
            )
        name, default = ref.group("name"), ref.group("default")
        names.append(name)
        value = env.get(name)
        if default is not None and not value:
            value = default
        if value is None:
            raise InterpolationError(
                f"environment variable {name} is not set; set it, or write ${{{name}:-default}}"
            )
        out.append(value)
    out.append(text[pos:])
    return Expanded("".join(out), tuple(names))
