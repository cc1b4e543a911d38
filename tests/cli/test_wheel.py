"""A wheel built from the repo works outside the source tree: templates and the shipped runbook are package
data, and every import lives under `runbook`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

SOURCES = (
    "pyproject.toml",
    "README.md",
    "stages.yaml",
    "runbook",
    "checks",
    "stages",
    "templates",
    "examples",
)
"""What the build reads. It builds a copy: setuptools' build/ folder in the checkout would keep stale files
(one since removed from the tree) and put them in the wheel."""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, src = tmp_path_factory.mktemp("dist"), tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            junk = shutil.ignore_patterns("__pycache__", "node_modules", "*.egg-info")
            shutil.copytree(REPO / name, src / name, symlinks=True, ignore=junk)
        else:
            shutil.copy2(REPO / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(src)],
        check=True,
        capture_output=True,
        text=True,
    )
    (whl,) = out.glob("runbook_pgboss-*.whl")
    return whl


def test_wheel_holds_real_copies_of_the_top_level_folders(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "runbook/data/stages.yaml" in names
    assert "runbook/checks/pgboss.py" in names or "runbook/checks/http.py" in names
    assert "runbook/flags/base.py" in names and not any(n.startswith("runbook/stages/") for n in names)
    assert "runbook/templates/plan.txt.j2" in names
    assert "runbook/data/pgboss-app/server.mjs" in names  # `migrate demo` works from a wheel
    assert "runbook/data/pgboss-app/legacy-job.sql" in names
    assert "runbook/templates/app/flags.j2" in names  # its scaffolded code is rendered at launch, not shipped
    assert not any("/generated/" in n for n in names)
    assert {f"runbook/data/contract/{n}.schema.json" for n in ("health", "pgboss-status")} <= names
    assert "runbook/state/store.py" in names and "runbook/demo/app.py" in names
    assert not any(n.startswith(("checks/", "stages/", "templates/")) for n in names)


def test_installed_wheel_runs_version_and_validate_outside_the_repo(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RUNBOOK_FILE")}
    migrate = str(venv / "bin" / "migrate")
    version = subprocess.run([migrate, "--version"], cwd=work, env=env, capture_output=True, text=True)
    assert version.returncode == 0 and "migrate, version 0.1.0" in version.stdout
    init = subprocess.run([migrate, "init"], cwd=work, env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    assert (work / "stages.yaml").read_text() == (REPO / "stages.yaml").read_text()
    val = subprocess.run([migrate, "validate"], cwd=work, env=env, capture_output=True, text=True)
    assert val.returncode == 0, val.stderr
    assert val.stdout.startswith("stages.yaml: valid (")
    where = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import runbook.checks, runbook.flags; print(runbook.checks.__file__)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert str(venv) in where.stdout
    launch = "from pathlib import Path; from runbook.demo.generated import ensure_generated; "
    launch += "print(ensure_generated(Path('gen').resolve(), '12'))"
    gen = subprocess.run(
        [str(venv / "bin" / "python"), "-c", launch], cwd=work, env=env, capture_output=True, text=True
    )
    assert gen.returncode == 0, gen.stderr
    assert gen.stdout.strip() == str(work / "gen" / "pgboss12")  # the example app's code, outside the venv
    check = subprocess.run(
        [migrate, "scaffold", "--framework", "express", "--lang", "js", "--pgboss", "12",
         "--out", "gen/pgboss12", "--check"], cwd=work, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0 and check.stdout.rstrip().endswith("up to date"), check.stdout + check.stderr
