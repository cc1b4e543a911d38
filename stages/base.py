"""The flag backend interface. A backend reads and writes flag values; after every write it reads back and
raises `FlagWriteError` if a value did not stick (`mismatches` words what did not)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class FlagBackend(Protocol):
    """Reads and writes the app's feature flags."""

    def describe(self) -> str:
        """One line naming where the flags live, without secrets (`dotenv /srv/app/.env`)."""
        ...

    def read(self, names: Sequence[str]) -> dict[str, str | None]:
        """Current values; None for a flag that is not set at all."""
        ...

    def write(self, values: Mapping[str, str], *, actor: str = "") -> None:
        """Set every value (atomically where the backend can), run any reload, then read back.

        Raises FlagWriteError when a value read back differs, UnreachableError when the backend cannot
        be reached."""
        ...


def mismatches(wanted: Mapping[str, str], got: Mapping[str, str | None]) -> list[str]:
    """List `NAME: wrote "x", read back "y"` for each value that did not stick ("" equals unset)."""
    out = []
    for name, value in wanted.items():
        seen = got.get(name)
        if (seen or "") != value:
            shown = "(not set)" if seen is None else f'"{seen}"'
            out.append(f'{name}: wrote "{value}", read back {shown}')
    return out
