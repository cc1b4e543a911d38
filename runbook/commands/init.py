"""`migrate init`: write the shipped pg-boss runbook, a flags file with every flag at its safe value, and
optionally a CI pipeline."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from runbook.errors import UsageError
from runbook.exitcodes import ExitCode
from runbook.model import DOTENV_FLAGS_FILE
from runbook.roles import ROLE_FILE, check_role_name, role_sql


@dataclass
class InitResult:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    role: str | None = None
    role_file: str | None = None
    template: str = "init"
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "skipped": self.skipped,
            "role": self.role,
            "role_file": self.role_file,
        }


def default_runbook_text() -> str:
    """The shipped stages.yaml (package data)."""
    return resources.files("runbook.data").joinpath("stages.yaml").read_text(encoding="utf-8")


def init(
    directory: str | Path,
    *,
    ci: str | None = None,
    force: bool = False,
    runbook_file: str = "stages.yaml",
    role: str | None = None,
    env: Mapping[str, str] | None = None,
    install_from: str | None = None,
) -> InitResult:
    """Write the files; existing files are kept unless `force`. With `role`, also the SQL script creating
    that least-privilege role, with the names of the runbook in the folder (the shipped one if none).
    `install_from` is what the pipeline installs (runbook.dist.install_requirement; default this version)."""
    from runbook.dist import install_requirement
    from runbook.spec import load_runbook_text

    if install_from is not None and not ci:
        raise UsageError(
            "--install-from is what a CI pipeline installs", hint="add --ci github or --ci gitlab"
        )
    install = install_requirement(install_from)

    if role is not None:
        check_role_name(role)
    root = Path(directory)
    _write_guard(root, "--dir", functools.partial(_folder, root))
    text = default_runbook_text()
    rb = load_runbook_text(text, "stages.yaml", env={"DATABASE_URL": "postgresql://localhost/app"})
    files: dict[str, str] = {Path(runbook_file).name: text}
    result = InitResult(role=role)
    if role is not None:
        own = root / Path(runbook_file).name
        names = rb
        if _exists(own, "-f", file=True):  # the operator's runbook: its schema and table names
            env_with_url = {"DATABASE_URL": "postgresql://localhost/app", **(env or {})}
            names = load_runbook_text(own.read_text(encoding="utf-8"), str(own), env=env_with_url)
        files[ROLE_FILE] = role_sql(names, role)
        result.role_file = str(root / ROLE_FILE)
    env_lines = [
        "# Feature flags of the pg-boss migration, at their safe values (the legacy path).",
        "# `migrate` rewrites the values in place; comments and other lines are kept.",
    ]
    env_lines += [f"{f.name}={f.safe}" for f in rb.flags]
    files[DOTENV_FLAGS_FILE] = "\n".join(env_lines) + "\n"
    if ci:
        from runbook.ciconfig import render_ci

        files.update(render_ci(ci, Path(runbook_file).name, {"install": install}))
    for rel, content in files.items():
        path = root / rel
        if _exists(path, "-f" if rel == Path(runbook_file).name else "--dir") and not force:
            result.skipped.append(str(path))
            continue
        _write_guard(path, "--dir", functools.partial(_write, path, content))
        result.written.append(str(path))
    return result


def _exists(path: Path, option: str, *, file: bool = False) -> bool:
    """Whether `path` exists (is a file); a name the OS refuses (too long, ...) is a usage error naming it."""
    try:
        return path.is_file() if file else path.exists()
    except OSError as exc:
        raise UsageError(
            f"cannot use {str(path)!r}: {exc.strerror or exc}",
            hint=f"pass {option} with a shorter, valid name",
        ) from None


def _folder(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is not a folder", hint="pass --dir with a folder")
    root.mkdir(parents=True, exist_ok=True)


def _write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def _write_guard(path: Path, option: str, write: Callable[[], None]) -> None:
    """Run `write`; an OS error (not a folder, no permission, name too long) is a usage error naming it."""
    try:
        write()
    except OSError as exc:
        raise UsageError(
            f"cannot write {str(path)!r}: {exc.strerror or exc}", hint=f"pass {option} with a writable folder"
        ) from None
