"""`advance` called directly when the flag backend refuses a write: the `command` backend over files beside
the runbook, with a switch file that makes `set` fail. A refused flip is rolled back by itself (outcome
flag-write-failed, exit 5); a backend that refuses the rollback too raises FlagWriteError (exit 5)."""

from __future__ import annotations

import pytest

from runbook.commands.advance import advance
from runbook.commands.history import history
from runbook.commands.status import status
from runbook.errors import FlagWriteError
from runbook.exitcodes import ExitCode
from tests.commands.conftest import Workspace

DOTENV = "    type: ${FLAG_BACKEND:-dotenv}\n    path: app.env\n"
COMMAND = """\
    type: command
    shell: true
    get: "cat {name}.flag 2>/dev/null || true"
    set: >-
      if [ -e refuse ] && { [ {value} = true ] || [ -e refuse-all ]; };
      then echo 'the flag service said no' >&2; exit 3; fi; printf %s {value} > {name}.flag
"""
"""Each flag in NAME.flag; with a file `refuse`, setting a flag to true fails (`refuse-all`: any value)."""


@pytest.fixture
def cmd(ws: Workspace) -> Workspace:
    ws.edit(DOTENV, COMMAND)
    return ws


def flag_files(ws: Workspace) -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted(ws.root.glob("*.flag"))}


def test_a_refused_flip_is_rolled_back_with_exit_5(cmd: Workspace) -> None:
    (cmd.root / "refuse").write_text("")
    r = advance(cmd.open(), yes=True)
    assert (r.outcome, r.rolled_back_to, r.exit_code) == ("flag-write-failed", "legacy", ExitCode.UNREACHABLE)
    assert r.failure == (
        "setting flag PGBOSS_ENABLED (`sh: if`) failed with exit status 3: the flag service said no"
    )
    assert r.to_json()["exit_code"] == 5 and r.verify == []
    assert flag_files(cmd) == {"PGBOSS_ENABLED": "false", "PGBOSS_FOR_NEW_EVALS": "false"}
    assert [e["operation"] for e in history(cmd.open()).events] == [
        "init",
        "intent",
        "intent",
        "auto-rollback",
    ]
    s = status(cmd.open())
    assert (s.stage, s.drift, s.exit_code) == ("legacy", [], ExitCode.OK)
    (cmd.root / "refuse").unlink()
    assert advance(cmd.open(), yes=True).outcome == "advanced"
    assert flag_files(cmd)["PGBOSS_ENABLED"] == "true"


def test_a_backend_refusing_the_rollback_too_raises_flag_write_error(cmd: Workspace) -> None:
    (cmd.root / "refuse").write_text("")
    (cmd.root / "refuse-all").write_text("")
    with pytest.raises(FlagWriteError, match="the flag service said no") as err:
        advance(cmd.open(), yes=True)
    assert err.value.exit_code is ExitCode.UNREACHABLE
    assert err.value.hint == "run it by hand to see why; see settings.flags.set"
    assert "advance" not in [e["operation"] for e in history(cmd.open()).events]
