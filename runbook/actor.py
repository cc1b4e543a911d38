"""Who is acting: the user, the machine, the process and, in CI, the URL of the job (recorded in events)."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runbook.redact import redact_url


@dataclass(frozen=True)
class Actor:
    """The person or job behind an operation, as recorded in events and lock holders."""

    user: str
    host: str
    pid: int
    ci_url: str | None = None

    def __str__(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid}"

    def to_json(self) -> dict[str, Any]:
        """Return a plain mapping (journal lines, JSON output)."""
        return {"user": self.user, "host": self.host, "pid": self.pid, "ci_url": self.ci_url}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        """Rebuild an actor written by `to_json`."""
        return cls(
            user=str(data.get("user") or "unknown"),
            host=str(data.get("host") or "unknown"),
            pid=int(data.get("pid") or 0),
            ci_url=data.get("ci_url") or None,
        )


def ci_url(env: Mapping[str, str]) -> str | None:
    """Return the URL of this CI job (RUNBOOK_CI_URL, GitHub Actions, GitLab or Jenkins), if any."""
    if env.get("RUNBOOK_CI_URL"):
        return env["RUNBOOK_CI_URL"]
    server, repo, run = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    if repo and run:
        return f"{(server or 'https://github.com').rstrip('/')}/{repo}/actions/runs/{run}"
    return env.get("CI_JOB_URL") or env.get("BUILD_URL") or None


def _user(env: Mapping[str, str]) -> str:
    if env.get("RUNBOOK_ACTOR"):
        return env["RUNBOOK_ACTOR"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with a random uid)
        return f"uid{os.getuid()}"


def current_actor(env: Mapping[str, str] | None = None) -> Actor:
    """Describe this process: user (RUNBOOK_ACTOR or the login name), host, pid and CI job URL."""
    env = os.environ if env is None else env
    url = ci_url(env)
    return Actor(
        user=_user(env),
        host=socket.gethostname() or "localhost",
        pid=os.getpid(),
        ci_url=redact_url(url) if url else None,
    )
