"""Which pg-boss major an app uses, read from its package-lock.json (the installed version) or, failing
that, its package.json (the declared range). Any problem is a UsageError naming --pgboss / --app."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.errors import UsageError

MAJORS = ("10", "11", "12")
_SECTIONS = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
_RANGE = re.compile(r"^\s*(?:npm:pg-boss@)?\s*(?:[\^~=v]|>=?)*\s*v?(\d+)(?:[.\s]|$|x)")
_MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Detected:
    major: str | None
    """10, 11 or 12; None when the app declares no pg-boss (or there is no package.json)."""
    source: str
    """Where it was read: `package-lock.json: node_modules/pg-boss 10.4.2`, or why nothing was."""


def detect_pgboss(app: Path) -> Detected:
    """The app's pg-boss major. A package.json or lockfile that is not JSON is a UsageError."""
    lock = _read_json(app / "package-lock.json")
    if lock is not None:
        version = _lock_version(lock)
        if version:
            return Detected(
                _major(version, f"{app / 'package-lock.json'}"), f"{app}/package-lock.json: {version}"
            )
    pkg = _read_json(app / "package.json")
    if pkg is None:
        return Detected(None, f"no package.json in {app}")
    for section in _SECTIONS:
        deps = pkg.get(section)
        spec = deps.get("pg-boss") if isinstance(deps, dict) else None
        if isinstance(spec, str):
            m = _RANGE.match(spec)
            if not m:
                raise UsageError(
                    f"{app / 'package.json'}: cannot tell the pg-boss major from {section}.pg-boss {spec!r}",
                    hint="pass --pgboss 10, 11 or 12",
                )
            return Detected(_major(m.group(1), str(app / "package.json")), f"{app}/package.json: {spec}")
    return Detected(None, f"{app}/package.json declares no pg-boss")


def _lock_version(lock: dict[str, Any]) -> str | None:
    packages = lock.get("packages")
    if isinstance(packages, dict):
        entry = packages.get("node_modules/pg-boss")
        if isinstance(entry, dict) and isinstance(entry.get("version"), str):
            return str(entry["version"])
    deps = lock.get("dependencies")  # lockfileVersion 1
    if isinstance(deps, dict):
        entry = deps.get("pg-boss")
        if isinstance(entry, dict) and isinstance(entry.get("version"), str):
            return str(entry["version"])
    return None


def _major(version: str, where: str) -> str:
    m = re.match(r"\D*(\d+)", version)
    major = m.group(1) if m else ""
    if major not in MAJORS:
        raise UsageError(
            f"{where}: pg-boss {version} is not a line scaffold writes for (10, 11 or 12)",
            hint="upgrade pg-boss to 10 or later, or pass --pgboss 10, 11 or 12",
        )
    return major


def _read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, None when there is no such file."""
    try:
        if not path.is_file():
            return None
        if path.stat().st_size > _MAX_BYTES:
            raise UsageError(f"{path} is larger than 50 MB", hint="pass --pgboss 10, 11 or 12")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", hint="pass --app with the app's folder") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg})",
            hint="fix the file, or pass --pgboss 10, 11 or 12 and --app with another folder",
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: not a JSON object", hint="pass --app with the app's folder")
    return data
