"""Fixtures for tests of the commands API (runbook.commands.*) called directly, as alembic's
tests/test_command.py does: a runbook folder on a fresh PostgreSQL database (tests/conftest.py `pg_url`), and
real `Session`s opened on it with an explicit environment. The tests assert on result objects and errors,
never on rendered text.

The runbook is the CLI tests' (tests/cli/conftest.py), with stage two's verify a `command` check: its checks
pass or fail by the environment a session is opened with (`VERIFY_VALUE`, `MONITOR_VALUE`, `TWO_VALUE`...)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from runbook.session import Session
from tests.cli.conftest import RUNBOOK

SQL_VERIFY_OF_TWO = """\
      - name: two-ok
        kind: sql
        query: SELECT ${TWO_VALUE:-1}
        expect: ["value == 1"]
"""
COMMAND_VERIFY_OF_TWO = """\
      - name: two-ok
        kind: command
        run: [test, "${TWO_VALUE:-1}", "=", "1"]
"""
assert SQL_VERIFY_OF_TWO in RUNBOOK, "tests/cli/conftest.py RUNBOOK changed: update the replacement"
COMMANDS_RUNBOOK = RUNBOOK.replace(SQL_VERIFY_OF_TWO, COMMAND_VERIFY_OF_TWO)
"""Stages legacy -> one (sql preflight, verify, monitor) -> two (command verify) -> done (irreversible,
one manual item); flags in the dotenv file app.env, or in the state database with FLAG_BACKEND=postgres."""
FLAGS_FILE = "# flags of the app\nPGBOSS_ENABLED=false\nOTHER=keep-me\n"


@dataclass
class Workspace:
    """A runbook folder (stages.yaml, app.env) whose state lives in `database_url`."""

    root: Path
    database_url: str
    sessions: list[Session] = field(default_factory=list)

    @property
    def runbook(self) -> Path:
        return self.root / "stages.yaml"

    def open(self, **env: str) -> Session:
        """A session on the runbook with DATABASE_URL and `env` (closed at the end of the test)."""
        session = Session.open(self.runbook, env={"DATABASE_URL": self.database_url, **env})
        self.sessions.append(session)
        return session

    def edit(self, old: str, new: str) -> None:
        """Replace `old` (which must occur) by `new` in the runbook file."""
        text = self.runbook.read_text()
        assert old in text, old
        self.runbook.write_text(text.replace(old, new))

    def flags(self) -> dict[str, str]:
        """The dotenv flags file as name -> value (comments left out)."""
        lines = (self.root / "app.env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


@pytest.fixture
def ws(tmp_path: Path, pg_url: str) -> Iterator[Workspace]:
    (tmp_path / "stages.yaml").write_text(COMMANDS_RUNBOOK)
    (tmp_path / "app.env").write_text(FLAGS_FILE)
    space = Workspace(tmp_path, pg_url)
    yield space
    for session in space.sessions:
        session.close()
