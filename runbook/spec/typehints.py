"""Read dataclass type hints for the loader and the schema: resolved hints, the `Duration`/`Size` markers,
unions, the `type:` discriminator of unions of dataclasses, and did-you-mean suggestions."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

NONE = type(None)
LOCATION = "location"
"""A dataclass field of this name is filled by the loader with `FILE:LINE:COL`; users cannot write it."""
_hints: dict[type, dict[str, Any]] = {}
_fields: dict[type, dict[str, dataclasses.Field[Any]]] = {}


def user_fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    """Fields a user may write: all but `location` (cached)."""
    found = _fields.get(cls)
    if found is None:
        found = _fields[cls] = {f.name: f for f in dataclasses.fields(cls) if f.name != LOCATION and f.init}
    return found


def has_location(cls: type) -> bool:
    """Whether the loader fills a `location` field of `cls`."""
    return LOCATION in hints(cls) and LOCATION not in user_fields(cls)


def hints(cls: type) -> dict[str, Any]:
    """Resolved type hints of a dataclass, with `Annotated` extras kept (cached)."""
    found = _hints.get(cls)
    if found is None:
        found = _hints[cls] = typing.get_type_hints(cls, include_extras=True)
    return found


def marker(tp: Any) -> str | None:
    """`duration` / `size` for the model's Annotated markers, else None."""
    if get_origin(tp) is Annotated:
        extra = tp.__metadata__
        return extra[0] if extra and isinstance(extra[0], str) else None
    return None


def union_args(tp: Any) -> tuple[Any, ...] | None:
    """Members of a union type, or None if `tp` is not one."""
    origin = get_origin(tp)
    return get_args(tp) if origin is Union or origin is types.UnionType else None


def close_match(word: str, choices: typing.Iterable[str]) -> str | None:
    """The choice closest to `word` (difflib), if any is close enough."""
    import difflib

    found = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def suggest(word: str, choices: typing.Iterable[str], what_: str = "key", where: str = "") -> str:
    """`unknown key "monitr"; did you mean "monitor"?`, else the list of valid names."""
    names = sorted(choices)
    close = close_match(word, names)
    if close:
        return f'unknown {what_} "{word}"{where}; did you mean "{close}"?'
    return f'unknown {what_} "{word}"{where}; expected one of: {", ".join(names)}'


def discriminator(members: tuple[Any, ...]) -> tuple[str, dict[str, type]] | None:
    """For dataclasses that each have a Literal field of one name: that name and value -> class."""
    if not all(dataclasses.is_dataclass(m) for m in members):
        return None
    for name, tp in hints(members[0]).items():
        if get_origin(tp) is not Literal:
            continue
        table: dict[str, type] = {}
        for m in members:
            mtp = hints(m).get(name)
            if mtp is None or get_origin(mtp) is not Literal:
                break
            table.update({str(v): m for v in get_args(mtp)})
        else:
            return name, table
    return None
