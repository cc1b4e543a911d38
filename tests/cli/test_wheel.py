"""A wheel built from the repo works outside the source tree: templates and the shipped runbook are package
data, and every import lives under `runbook`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
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
    assert "runbook/stages/base.py" in names
    assert "runbook/templates/plan.txt.j2" in names
    assert "runbook/data/pgboss-app/server.mjs" in names  # `migrate demo` works from a wheel
    assert {f"runbook/data/pgboss-app/generated/pgboss{m}/runbook/flags.js" for m in (10, 12)} <= names
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
            "import runbook.checks, runbook.stages; print(runbook.checks.__file__)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert str(venv) in where.stdout
