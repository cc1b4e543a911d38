"""make_backend: each flag backend from a runbook's settings, with errors naming the setting."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runbook.errors import ConfigError
from runbook.flags.backends import make_backend
from runbook.flags.command import CommandFlagBackend
from runbook.flags.dotenv import DotenvFlagBackend
from runbook.flags.postgres import PostgresFlagBackend
from runbook.model import (
    CommandFlags,
    DatabaseSettings,
    DotenvFlags,
    FlagBackendSettings,
    FlagDecl,
    PostgresFlags,
    Runbook,
    Settings,
    Stage,
)


def runbook(flags: FlagBackendSettings, source: str = "stages.yaml", db_url: str | None = None) -> Runbook:
    settings = Settings(database=DatabaseSettings(url=db_url), flags=flags)
    return Runbook(1, "rb", settings, (FlagDecl("A", "false"),), (Stage("a"),), source=source)


def test_dotenv_paths_are_relative_to_the_runbook_file(tmp_path: Path) -> None:
    (tmp_path / "stages.yaml").write_text("x: 1\n")
    backend = make_backend(runbook(DotenvFlags(path="app/.env"), str(tmp_path / "stages.yaml")), {})
    assert isinstance(backend, DotenvFlagBackend)
    assert backend.path == tmp_path / "app" / ".env"
    (tmp_path / "app").mkdir()
    backend.write({"A": "true"})
    assert (tmp_path / "app" / ".env").read_text() == "A=true\n"
    absolute = make_backend(runbook(DotenvFlags(path=str(tmp_path / "x.env"))), {})
    assert absolute.describe() == f"dotenv {tmp_path / 'x.env'}"


def test_postgres_url_defaults_to_the_database(pg_url: str) -> None:
    backend = make_backend(runbook(PostgresFlags(), db_url=pg_url), {})
    assert isinstance(backend, PostgresFlagBackend) and backend.url == pg_url
    backend.write({"A": "true"}, actor="t")
    other = make_backend(runbook(PostgresFlags(url=pg_url, table="f2"), db_url="postgresql://nowhere/x"), {})
    assert other.read(["A"]) == {"A": None}  # its own table, on the flags URL
    with pytest.raises(ConfigError) as err:
        make_backend(runbook(PostgresFlags()), {})
    assert err.value.hint == "set settings.flags.url, or settings.database.url (usually ${DATABASE_URL})"


def test_command_backend_gets_the_environment(tmp_path: Path) -> None:
    (tmp_path / "stages.yaml").write_text("x: 1\n")
    get = (sys.executable, "-c", "import os; print(os.environ['FLAG_' + os.environ['RUNBOOK_FLAG_NAME']])")
    rb = runbook(CommandFlags(get=get, set=("true",)), str(tmp_path / "stages.yaml"))
    backend = make_backend(rb, {"FLAG_A": "on"})
    assert isinstance(backend, CommandFlagBackend) and backend.cwd == str(tmp_path)
    assert backend.read(["A"]) == {"A": "on"}
    with pytest.raises(ConfigError, match=r"hint: set settings\.flags\.set"):
        make_backend(runbook(CommandFlags(get=get)), {})
