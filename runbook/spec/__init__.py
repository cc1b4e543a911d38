"""Load `stages.yaml` strictly into the frozen `runbook.model.Runbook`, and export the format's JSON Schema.

Every problem is a `SpecIssue` reading `FILE:LINE:COL: key.path: message`; all issues found are raised
together as one `SpecError`, first one first. Nothing here touches a database or the network.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from runbook.errors import SpecError, SpecIssue
from runbook.model import Runbook

__all__ = ["RegistryKinds", "SpecError", "SpecIssue", "json_schema", "load_runbook", "load_runbook_text"]


class RegistryKinds(Mapping[str, type]):
    """The real check kinds, name -> params dataclass; a kind's module is imported only when used."""

    def __init__(self) -> None:
        from runbook.checks import available_kinds

        self._names = available_kinds()
        self._params: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._params:
            from runbook.checks import get_kind

            self._params[name] = get_kind(name).params
        return self._params[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def load_runbook(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    time_scale: float | None = None,
    kinds: Mapping[str, type] | None = None,
) -> Runbook:
    """Read and validate the runbook at `path`. Raises SpecError listing every issue."""
    source = str(path)
    from runbook.spec.budget import MAX_FILE_BYTES

    try:
        with Path(path).open("rb") as fh:  # bounded: `-f /dev/zero` or a 2 GB file is not read whole
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise _one(source, "no such file; create it with `migrate init`, or pass --file PATH") from None
    except OSError as exc:
        raise _one(source, f"cannot read the runbook: {exc.strerror or exc}") from None
    except ValueError:  # a NUL byte in the path
        raise _one(source, "the file name contains a NUL byte; pass --file PATH") from None
    if len(data) > MAX_FILE_BYTES:
        raise _one(
            source,
            f"the file is larger than {MAX_FILE_BYTES // 1024**2} MiB, too large for a runbook; "
            "is it the right file? pass --file PATH",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _one(source, "the file is not UTF-8 text; save it as UTF-8", line) from None
    if kinds is not None:  # a caller's own registry (tests): never cached
        return load_runbook_text(text, source, env=env, time_scale=time_scale, kinds=kinds)
    from runbook.spec import cache

    env = os.environ if env is None else env
    scale = _time_scale(source, env, time_scale)
    base = cache.folder(env)
    key = cache.entry_key(data, source, scale) if base is not None else ""
    if base is not None:
        hit = cache.load(base, key, env)
        if isinstance(hit, Runbook):
            return hit
    recording = cache.RecordingEnv(env)
    runbook = load_runbook_text(text, source, env=recording, time_scale=scale)
    if base is not None:
        cache.store(base, key, runbook, recording.read, env)
    return runbook


def load_runbook_text(
    text: str,
    source: str,
    *,
    env: Mapping[str, str] | None = None,
    time_scale: float | None = None,
    kinds: Mapping[str, type] | None = None,
) -> Runbook:
    """Validate runbook `text`; `source` names it in messages. Raises SpecError listing every issue."""
    from runbook.spec.build import build_runbook
    from runbook.spec.convert import Converter
    from runbook.spec.leaves import INVALID
    from runbook.spec.yamlnodes import Issues, compose

    time_scale = _time_scale(source, env, time_scale)
    issues = Issues(source)
    root = compose(text, issues)
    if len(issues):
        raise SpecError(issues.ordered())
    from runbook.spec.cache import RecordingEnv

    recording = RecordingEnv(os.environ if env is None else env)
    conv = Converter(issues, recording, time_scale)
    runbook = build_runbook(root, conv, RegistryKinds() if kinds is None else kinds)
    if len(issues) or runbook is INVALID:
        found = issues.ordered() or [SpecIssue(source, 1, 1, "", "invalid runbook")]
        raise SpecError(_masked(found, [v for v in recording.read.values() if v]))
    from dataclasses import replace

    result: Runbook = replace(runbook, variables=frozenset(recording.read))
    return result


def json_schema(kinds: Mapping[str, type] | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the runbook format, for editors (`migrate schema`)."""
    from runbook.spec.schema import runbook_schema

    if kinds is not None:
        return runbook_schema(kinds)
    registry = RegistryKinds()
    usable: dict[str, type] = {}
    broken: list[str] = []
    for name in registry:
        try:
            usable[name] = registry[name]
        except Exception as exc:  # an installed kind that cannot be imported is left out, and said so
            broken.append(f"{name} ({exc})")
    schema = runbook_schema(usable)
    if broken:
        schema["$comment"] = "check kinds left out because they cannot be loaded: " + "; ".join(broken)
    return schema


def _time_scale(source: str, env: Mapping[str, str] | None, given: float | None) -> float:
    """The time scale given, else the environment's; a bad one is an issue of the file."""
    from runbook.units import time_scale as env_time_scale

    if given is None:
        try:
            return env_time_scale(env)
        except ValueError as exc:
            raise _one(source, str(exc)) from None
    if not 0 < given <= 1:
        raise _one(source, f"the time scale must be in (0, 1] (e.g. 0.001 runs a day in 86s), got {given:g}")
    return given


def _masked(issues: list[SpecIssue], values: list[str]) -> list[SpecIssue]:
    """The issues with every value read from the environment masked in their messages (a check's own
    validation, such as an assertion it cannot parse, may quote one)."""
    from dataclasses import replace

    from runbook.redact import Redactor

    redact = Redactor(values)
    return [replace(i, message=redact(i.message)) for i in issues]


def _one(source: str, message: str, line: int = 1) -> SpecError:
    return SpecError([SpecIssue(source, line, 1, "", message)])
