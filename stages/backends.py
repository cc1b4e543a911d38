"""Build the flag backend a runbook's `settings.flags` describes."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from runbook.errors import ConfigError
from runbook.flags.base import FlagBackend
from runbook.model import CommandFlags, DotenvFlags, PostgresFlags, Runbook


def base_dir(runbook: Runbook) -> Path:
    """Return the folder relative paths are resolved against: the runbook file's, else the current one."""
    source = Path(runbook.source)
    return source.parent.resolve() if source.is_file() else Path.cwd()


def make_backend(
    runbook: Runbook,
    env: Mapping[str, str] | None = None,
    *,
    state_connection: Callable[[], Any] | None = None,
) -> FlagBackend:
    """Build the flag backend of `runbook` (ConfigError naming the setting when something is missing).

    `env` is the environment of the commands it runs (default: this process's). `state_connection` returns
    the state store's open connection, or None: the postgres backend reads on it when the flags live in the
    same database."""
    env = dict(os.environ if env is None else env)
    flags = runbook.settings.flags
    # each backend's module is imported only when used: every command that touches flags starts faster
    if isinstance(flags, DotenvFlags):
        from runbook.flags.dotenv import DotenvFlagBackend

        path = Path(flags.path)
        return DotenvFlagBackend(
            path if path.is_absolute() else base_dir(runbook) / path,
            reload=flags.reload,
            reload_shell=flags.reload_shell,
            reload_timeout=flags.reload_timeout,
            env=env,
        )
    if isinstance(flags, PostgresFlags):
        from runbook.flags.postgres import PostgresFlagBackend

        url = flags.url or runbook.settings.database.url
        if not url:
            raise ConfigError(
                "the postgres flag backend has no database URL",
                hint="set settings.flags.url, or settings.database.url (usually ${DATABASE_URL})",
            )
        return PostgresFlagBackend(
            url,
            schema=flags.schema,
            table=flags.table,
            channel=flags.channel,
            connect_timeout=runbook.settings.database.connect_timeout,
            shared=state_connection if url == runbook.state_url() else None,
        )
    if isinstance(flags, CommandFlags):
        from runbook.flags.command import CommandFlagBackend

        return CommandFlagBackend(
            flags.get,
            flags.set,
            shell=flags.shell,
            timeout=flags.timeout,
            env=env,
            cwd=str(base_dir(runbook)),
        )
    raise ConfigError(f"unknown flag backend {type(flags).__name__}", hint="set settings.flags.type")
