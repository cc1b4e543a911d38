"""How the spec cache (runbook.spec.cache) pickles a loaded runbook. Every string holding a value read from
the environment is stored as a template of literal parts and variable names, rebuilt from the environment
on load; each check's kind parameters are a pickle of their own, unpickled on first use (`LazyCheckSpec`),
so that a command which runs no check does not import every check kind."""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from runbook.model import CheckSpec


def dumps(runbook: Any, values: list[tuple[str, str]]) -> bytes:
    """Pickle `runbook`; `values` are (value, variable name) pairs, longest value first."""
    buf = io.BytesIO()
    _Pickler(buf, values).dump(runbook)
    return buf.getvalue()


def loads(body: bytes, env: Mapping[str, str]) -> Any:
    """Unpickle what `dumps` wrote, with the values taken from `env`."""
    return _Unpickler(io.BytesIO(body), env).load()


class LazyCheckSpec(CheckSpec):
    """A cached check whose `params` are unpickled on first use. It equals, and hashes as, the `CheckSpec`
    with the same fields (a runbook from the cache equals the one loaded from its file)."""

    if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any attribute name

        def __getattr__(self, name: str) -> Any:
            load = self.__dict__.get("_load_params") if name == "params" else None
            if load is None:
                raise AttributeError(f"{CheckSpec.__name__!r} object has no attribute {name!r}")
            value = load()
            object.__setattr__(self, "params", value)
            del self.__dict__["_load_params"]
            return value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CheckSpec):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(CheckSpec))

    __hash__ = CheckSpec.__hash__


_ENV = object()
"""Stands for the environment of the load in a pickle (see `_lazy_check`)."""


class _Pickler(pickle.Pickler):
    """Stores every string holding an environment value as a template of literal parts and variable names,
    and each check's kind parameters as a pickle of their own, loaded when first used."""

    def __init__(self, file: io.BytesIO, values: list[tuple[str, str]]) -> None:
        super().__init__(file, protocol=5)
        self._values = values

    def reducer_override(self, obj: Any) -> Any:
        if not isinstance(obj, CheckSpec):
            return NotImplemented
        params = obj.params  # a check from the cache: its parameters unpickled now
        state = {k: v for k, v in obj.__dict__.items() if k not in ("params", "_load_params")}
        buf = io.BytesIO()
        _Pickler(buf, self._values).dump(params)
        return _lazy_check, (state, buf.getvalue(), _ENV)

    def persistent_id(self, obj: Any) -> Any:
        if obj is _ENV:
            return ("environment",)
        if type(obj) is not str or not self._values:
            return None
        parts: list[str | tuple[str]] = [obj]
        for value, name in self._values:  # longest first, so a value inside another is not split out of it
            nxt: list[str | tuple[str]] = []
            for part in parts:
                if isinstance(part, tuple) or value not in part:
                    nxt.append(part)
                    continue
                pieces = part.split(value)
                for i, piece in enumerate(pieces):
                    if i:
                        nxt.append((name,))
                    if piece:
                        nxt.append(piece)
            parts = nxt
        return None if parts == [obj] else ("env", tuple(parts))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, env: Mapping[str, str]) -> None:
        super().__init__(file)
        self._env = env

    def persistent_load(self, pid: Any) -> Any:
        if pid == ("environment",):
            return self._env
        tag, parts = pid
        if tag != "env":
            raise pickle.UnpicklingError("unknown persistent id")
        return "".join(p if isinstance(p, str) else self._env[p[0]] for p in parts)


def _lazy_check(state: dict[str, Any], params: bytes, env: Mapping[str, str]) -> CheckSpec:
    """A check whose `params` are unpickled on first use."""
    spec: CheckSpec = object.__new__(LazyCheckSpec)
    spec.__dict__.update(state)
    spec.__dict__["_load_params"] = lambda: _Unpickler(io.BytesIO(params), env).load()
    return spec
