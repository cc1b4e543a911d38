"""Read one YAML scalar: interpolate it, give it a Python value, and render it for error messages.

Plain (unquoted) scalars keep YAML's implicit typing even after interpolation, so `timeout: ${T:-10}` is
the number 10; quoted scalars are always text. Interpolated values are never echoed in messages (`got the
value of ${SIZE}`): any value read from the environment may be a secret. URL passwords are always masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from runbook.redact import redact_url
from runbook.spec.interpolate import Expanded, interpolate
from runbook.spec.yamlnodes import BOOL, FLOAT, INT, NULL, STR, TIMESTAMP

_RESOLVER = Resolver()
_TYPED = (INT, FLOAT, BOOL, NULL)


@dataclass(frozen=True)
class Scalar:
    """A scalar's value (`value`), its text (`text`, what a string field receives) and, when it was
    interpolated, the expansion (`expanded`)."""

    value: Any
    text: str
    expanded: Expanded | None = None
    raw: str = ""

    def shown(self) -> str:
        """How the value reads after `got` in a message: `"ten"`, `3`, `true`, `null`."""
        if self.expanded is not None:  # a value from the environment is never echoed: it may be a secret
            kind = "text" if isinstance(self.value, str) else what(self.value).removeprefix("the ") or "null"
            return f"the value of {render(self.raw)[1:-1]} ({kind})"
        return render(self.value)


def render(value: Any) -> str:
    """A value as written in YAML, strings quoted and shortened; URL passwords masked."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        text = "".join(  # one line: newlines and other invisible characters escaped
            c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in redact_url(value)
        )
        return '"' + (text if len(text) <= 60 else text[:57] + "...") + '"'
    return str(value)


def what(value: Any) -> str:
    """A value's kind in words, for `got the number 3`."""
    if value is True or value is False:
        return "the boolean"
    if isinstance(value, int | float):
        return "the number"
    return ""


class ScalarReader:
    """Reads scalars of one file with one environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self._ctor = SafeConstructor()

    def read(self, node: ScalarNode) -> Scalar:
        """The scalar's value. Raises ValueError (interpolation, unsupported tag) with the fix."""
        tag, text = node.tag, node.value
        if tag == STR:
            if "${" not in text:
                return Scalar(text, text)
            expanded = interpolate(text, self.env)
            value: Any = expanded.value
            if not node.style:  # plain (the C parser says "", the Python one None)
                value = self.typed(expanded.value)
            return Scalar(value, expanded.value, expanded, text)
        if tag in _TYPED:
            return Scalar(self._ctor.construct_object(node), text)
        if tag == TIMESTAMP:
            return Scalar(text, text)
        raise ValueError(f"unsupported YAML tag {tag.replace('tag:yaml.org,2002:', '!!')}; remove it")

    def typed(self, text: str) -> Any:
        """The value YAML would give `text` written plain (`10` -> 10, `true` -> True, `` -> None)."""
        tag = _RESOLVER.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
        if tag in _TYPED:
            return self._ctor.construct_object(ScalarNode(tag, text))
        return text
