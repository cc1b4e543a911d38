"""`migrate init`: write the shipped pg-boss runbook, a flags file with every flag at its safe value, and
optionally a CI pipeline and Kubernetes manifests."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from runbook.errors import UsageError
from runbook.exitcodes import ExitCode
from runbook.model import DOTENV_FLAGS_FILE, Runbook
from runbook.result import FieldsJson
from runbook.roles import ROLE_FILE, check_role_name, role_sql


@dataclass
class InitResult(FieldsJson):
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    kept_flags: str | None = None
    """The flags file when it exists, kept even with --force: it holds the flags as they are now (the dotenv
    backend writes them); rewriting it at the safe values would roll a live app back with no record."""
    role: str | None = None
    role_file: str | None = None
    deploy: str | None = None
    """The folder of Kubernetes manifests (`--deploy kubernetes`)."""
    secret: dict[str, Any] | None = None
    """The Secret those manifests read: namespace, name and keys."""
    warnings: list[str] = field(default_factory=list)
    """What the manifests would do that is likely not meant (runbook.deploy.Manifests.warnings)."""
    template: str = "init"
    exit_code: ExitCode = ExitCode.OK


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
    deploy: str | None = None,
    deploy_options: Mapping[str, Any] | None = None,
) -> InitResult:
    """Write the files; existing files are kept unless `force`. With `role`, also the SQL script creating
    that least-privilege role, with the names of the runbook in the folder (the shipped one if none).
    `install_from` is what the pipeline installs (runbook.dist.install_requirement; default this version),
    and what the manifests' init step installs with `deploy` ("kubernetes", tuned by `deploy_options`)."""
    from runbook.deploy import FOLDER, render_deploy
    from runbook.dist import install_requirement
    from runbook.spec import load_runbook_text

    if install_from is not None and not (ci or deploy):
        raise UsageError(
            "--install-from is what a CI pipeline or the Kubernetes manifests install",
            hint="add --ci github, --ci gitlab or --deploy kubernetes",
        )
    install = install_requirement(install_from)
    if deploy_options and not deploy:
        option = "--" + next(iter(deploy_options)).replace("_", "-").replace("secrets", "secret")
        raise UsageError(f"{option} is an option of the Kubernetes manifests", hint="add --deploy kubernetes")

    if role is not None:
        check_role_name(role)
    root = Path(directory)
    text = default_runbook_text()
    env_with_url = {"DATABASE_URL": "postgresql://localhost/app", **(env or {})}
    rb = load_runbook_text(text, "stages.yaml", env={"DATABASE_URL": "postgresql://localhost/app"})
    files: dict[str, str] = {Path(runbook_file).name: text}
    result = InitResult(role=role)
    own = root / Path(runbook_file).name
    kept = not force and _exists(own, "-f", file=True)  # the operator's runbook, kept: its names count

    @functools.cache
    def names() -> Runbook:
        if not kept:
            return rb
        return load_runbook_text(own.read_text(encoding="utf-8"), str(own), env=env_with_url)

    if role is not None:
        files[ROLE_FILE] = role_sql(names(), role)
        result.role_file = str(root / ROLE_FILE)
    if _exists(root / DOTENV_FLAGS_FILE, "--dir"):  # it holds the live flags: kept, even with --force
        result.kept_flags = str(root / DOTENV_FLAGS_FILE)
    else:  # at the safe values of the runbook the folder will hold
        env_lines = [
            "# Feature flags of the pg-boss migration, at their safe values (the legacy path).",
            "# `migrate` rewrites the values in place; comments and other lines are kept.",
        ]
        env_lines += [f"{f.name}={f.safe}" for f in names().flags]
        files[DOTENV_FLAGS_FILE] = "\n".join(env_lines) + "\n"
    if ci:
        from runbook.ciconfig import render_ci

        files.update(render_ci(ci, Path(runbook_file).name, {"install": install}))
    if deploy:
        # the runbook the folder will hold: the operator's (kept unless --force), else the shipped one
        deployed = own.read_text(encoding="utf-8") if kept else text
        variables = names().variables
        options = {**(deploy_options or {}), "install": install}
        manifests = render_deploy(deploy, own.name, deployed, variables, options)
        files.update(manifests.files)
        result.deploy = str(root / FOLDER)
        result.secret = {
            "namespace": manifests.namespace,
            "name": manifests.secret_name,
            "keys": list(manifests.secret_keys),
        }
        result.warnings.extend(manifests.warnings)
    _write_guard(
        root, "--dir", functools.partial(_folder, root)
    )  # after every check: refused = nothing written
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
