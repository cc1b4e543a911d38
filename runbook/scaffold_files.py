"""Compare rendered files with the disk, and write them: a file is created when absent, updated when its body
still matches the hash its header recorded (nobody edited it), and kept when it was edited (or was never
written by scaffold) unless forced. Everything is checked before the first file is written."""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runbook.errors import UsageError
from runbook.scaffold_render import Rendered, body_hash, split_generated


@dataclass(frozen=True)
class Planned:
    path: Path
    rel: str
    text: str
    current: str | None
    """The file's text on disk; None when absent."""
    action: str
    """create, update, same, edited (its body no longer matches its hash), foreign (not scaffold's)."""

    @property
    def kept(self) -> bool:
        return self.action in ("edited", "foreign")

    def diff(self) -> str:
        before = (self.current or "").splitlines(keepends=True)
        after = self.text.splitlines(keepends=True)
        old = str(self.path) if self.current is not None else "/dev/null"
        lines = difflib.unified_diff(before, after, old, f"{self.path} (scaffold)")
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def plan_files(out: Path, files: list[Rendered]) -> list[Planned]:
    """What writing `files` under `out` would do; a UsageError naming --out when it cannot be written."""
    _check_folder(out)
    planned = []
    for f in files:
        path = out / f.rel_path()
        for parent in path.relative_to(out).parents:
            if (out / parent).exists() and not (out / parent).is_dir():
                raise UsageError(f"{out / parent} is not a folder", hint="pass --out with another folder")
        current = _read(path)
        planned.append(Planned(path, f.path, f.text, current, _action(current, f.text)))
    return planned


def write_files(planned: list[Planned], *, force: bool) -> None:
    """Write the files that differ (edited ones only with `force`), each atomically."""
    for p in planned:
        if p.action == "same" or (p.kept and not force):
            continue
        try:
            p.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{p.path.name}.", dir=p.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(p.text)
            os.replace(tmp, p.path)
        except OSError as exc:
            raise UsageError(
                f"cannot write {p.path}: {exc.strerror or exc}", hint="pass --out with a writable folder"
            ) from None


def _action(current: str | None, text: str) -> str:
    if current is None:
        return "create"
    if current == text:
        return "same"
    recorded, body = split_generated(current)
    if recorded is None:
        return "foreign"
    return "update" if body_hash(body) == recorded else "edited"


def _read(path: Path) -> str | None:
    try:
        if path.is_dir():
            raise UsageError(
                f"{path} is a folder, where scaffold writes a file", hint="pass --out with another folder"
            )
        if not path.exists():
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", hint="pass --out with another folder") from None


def _check_folder(out: Path) -> None:
    """`out` is, or can be made, a writable folder: its nearest existing ancestor must be a folder in which a
    file can be created (tried with a temporary file, removed at once: this also catches root on a read-only
    file system, where permission bits say nothing)."""
    probe = out
    try:
        while not probe.exists():
            if probe.parent == probe:
                break
            probe = probe.parent
        if not probe.is_dir():
            raise UsageError(
                f"cannot write under {out}: {probe} is not a folder", hint="pass --out with a folder"
            )
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot write under {out}: {probe}: {exc.strerror or exc}",
            hint="pass --out with a writable folder",
        ) from None
