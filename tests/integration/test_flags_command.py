"""The command flag backend with small Python scripts as get and set (a file-backed flag store)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from runbook.errors import ConfigError, FlagWriteError, UnreachableError
from runbook.flags.command import CommandFlagBackend

STORE = """
import json, os, sys, pathlib
path = pathlib.Path(os.environ["FLAG_STORE"])
data = json.loads(path.read_text()) if path.exists() else {}
op, name = sys.argv[1], sys.argv[2]
if op == "get":
    print(data.get(name, ""))
else:
    if os.environ.get("FLAG_STUCK") == name:
        sys.exit(0)  # claims success but changes nothing
    if os.environ.get("FLAG_FAIL") == name:
        sys.stderr.write("permission denied for token " + os.environ.get("API_TOKEN", "") + "\\n")
        sys.exit(4)
    data[name] = sys.argv[3]
    data.setdefault("_log", []).append([name, sys.argv[3], os.environ["RUNBOOK_ACTOR"]])
    path.write_text(json.dumps(data))
"""


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    script = tmp_path / "flags.py"
    script.write_text(STORE)
    path = tmp_path / "store.json"
    return script, path, {**os.environ, "FLAG_STORE": str(path), "API_TOKEN": "tok-abcdef"}


def make(store: tuple[Path, Path, dict[str, str]], **env: str) -> CommandFlagBackend:
    script, _, base = store
    return CommandFlagBackend(
        (sys.executable, str(script), "get", "{name}"),
        (sys.executable, str(script), "set", "{name}", "{value}"),
        env={**base, **env},
    )


def test_set_and_get_without_a_shell(store: tuple[Path, Path, dict[str, str]]) -> None:
    backend = make(store)
    assert backend.read(["A"]) == {"A": None}
    backend.write({"A": "true", "B": "it's; $(rm -rf /) two words"}, actor="ops@box pid 1")
    data = json.loads(store[1].read_text())
    assert data["B"] == "it's; $(rm -rf /) two words"  # one argument, never interpreted
    assert data["_log"][0] == ["A", "true", "ops@box pid 1"]
    assert backend.read(["A", "B"]) == {"A": "true", "B": "it's; $(rm -rf /) two words"}
    assert backend.describe() == f"command {Path(sys.executable).name} / {Path(sys.executable).name}"


def test_shell_mode_quotes_values(store: tuple[Path, Path, dict[str, str]]) -> None:
    script, path, env = store
    py = sys.executable
    backend = CommandFlagBackend(
        (f"{py} {script} get {{name}}",),
        (f"{py} {script} set {{name}} {{value}} && echo done",),
        shell=True,
        env=env,
    )
    backend.write({"A": "a b'c"})
    assert json.loads(path.read_text())["A"] == "a b'c"
    assert backend.read(["A"]) == {"A": "a b'c"}


def test_failures_are_named_without_secrets(store: tuple[Path, Path, dict[str, str]]) -> None:
    with pytest.raises(FlagWriteError) as err:
        make(store, FLAG_FAIL="B").write({"A": "1", "B": "2"})
    msg = str(err.value)
    assert "setting flag B" in msg and "exit status 4" in msg and "permission denied for token ***" in msg
    assert "tok-abcdef" not in msg
    with pytest.raises(FlagWriteError, match=r'did not stick .*: A: wrote "x", read back "1"'):
        make(store, FLAG_STUCK="A").write({"A": "x"})
    slow = CommandFlagBackend((sys.executable, "-c", "import time; time.sleep(30)"), ("true",), timeout=0.5)
    with pytest.raises(UnreachableError, match=r"reading flag A .* did not finish within 0.5s"):
        slow.read(["A"])
    broken = CommandFlagBackend((sys.executable, "-c", "import sys; sys.exit(2)"), ("true",))
    with pytest.raises(UnreachableError, match="exit status 2"):
        broken.read(["A"])
    with pytest.raises(ConfigError, match=r"settings.flags.get"):
        CommandFlagBackend((), ("true",))
    with pytest.raises(ConfigError, match="program not found: nope-xyz"):
        CommandFlagBackend(("nope-xyz", "{name}"), ("true",)).read(["A"])
