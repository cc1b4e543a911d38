"""Tools the tests take from Debian's packages, installed with apt-get where missing (as root, once per
package, under a file lock so parallel workers do not race; a package's service is never started)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from filelock import FileLock

APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


@cache
def ensure(package: str, *binaries: str) -> list[Path]:
    """The paths of `binaries` (names on PATH), installing Debian's `package` when one is missing."""

    def found() -> list[Path | None]:
        return [Path(p) if (p := shutil.which(b)) else None for b in binaries]

    with FileLock(os.path.join(tempfile.gettempdir(), f"runbook-apt-{package}.lock"), timeout=900):
        if None in found():
            install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
            done = subprocess.run(install, env=APT_ENV, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:  # no package lists yet (a fresh image): fetch them once, then retry
                subprocess.run(["apt-get", "update", "-q"], env=APT_ENV, capture_output=True, timeout=900)
                done = subprocess.run(install, env=APT_ENV, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, f"apt-get install {package} failed (run as root?):\n{done.stderr}"
    paths = found()
    assert None not in paths, f"Debian's {package} did not provide {', '.join(binaries)}"
    return [p for p in paths if p is not None]
