"""The example app's generated code: what `migrate scaffold` writes for the shipped runbook (Express, ESM
JavaScript) and the pg-boss major the app loads. Nothing of it is committed or shipped: the launcher renders
it, through the scaffold commands API, into a folder of its own work dir and names that folder to the app
(GENERATED_DIR), so the app always runs what the installed templates write today. Rendering again writes
nothing when the files are scaffold's output already, and replaces any that differ (old templates, edits)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.resources import as_file, files
from pathlib import Path

from runbook.toolchain import installed_pgboss_version

GENERATED_DIR_ENV = "GENERATED_DIR"
"""The app's setting naming the folder whose runbook/*.js it imports."""
FRAMEWORK, LANG = "express", "js"
_PACKAGE_JSON = json.dumps({"private": True, "type": "module"}) + "\n"


def scaffold_major(pgboss_dir: Path) -> str:
    """The major scaffold writes for the pg-boss installed in `pgboss_dir` (toolchain line 11 is 12.5.0)."""
    return installed_pgboss_version(pgboss_dir).split(".")[0]


def ensure_generated(root: Path, major: str, env: Mapping[str, str] | None = None) -> Path:
    """root/pgboss<major>, holding scaffold's output for the shipped runbook read with `env` (the app's own
    settings, e.g. PGBOSS_SCHEMA), and a package.json that makes its .js files ES modules."""
    from runbook.commands.scaffold import scaffold

    out = root / f"pgboss{major}"
    with as_file(files("runbook.data").joinpath("stages.yaml")) as runbook:
        scaffold(  # force: a file that differs is replaced (it raises when it cannot write)
            runbook,
            out=out,
            framework=FRAMEWORK,
            lang=LANG,
            pgboss=major,
            app=runbook.parent,  # no package.json there: nothing to detect, nothing to warn about
            force=True,
            env=dict(env or {}),
        )
    package = out / "package.json"
    if not package.is_file() or package.read_text(encoding="utf-8") != _PACKAGE_JSON:
        package.write_text(_PACKAGE_JSON, encoding="utf-8")
    return out
