"""The ruff rule (TID251, pyproject.toml) that keeps the top-level checks/ and stages/ folders from being
imported by those names: only runbook.checks / runbook.flags, so every module is loaded once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def banned(tmp_path: Path, source: str) -> list[str]:
    """The TID251 messages ruff gives `source`, checked with the project's configuration."""
    module = tmp_path / "module.py"
    module.write_text(source, encoding="utf-8")
    ruff = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "json"]
    ran = subprocess.run(
        [*ruff, "--config", str(ROOT / "pyproject.toml"), "--select", "TID251", str(module)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode in (0, 1), ran.stderr
    return [d["message"] for d in json.loads(ran.stdout)]


@pytest.mark.parametrize(
    "source",
    [
        "import checks.base\n",
        "from checks.base import Verdict\n",
        "from checks import http\n",
        "from stages.backends import make_backend\n",
        "import stages\n",
    ],
)
def test_top_level_folders_are_refused(tmp_path: Path, source: str) -> None:
    messages = banned(tmp_path, source)
    assert len(messages) >= 1
    assert all("is banned: import runbook." in m for m in messages), messages


def test_the_package_names_are_allowed(tmp_path: Path) -> None:
    source = "from runbook.checks.base import Verdict\nfrom runbook.flags import backends\nimport checksum\n"
    assert banned(tmp_path, source) == []
