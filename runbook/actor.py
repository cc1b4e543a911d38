"""Who is acting: the user, the machine, the process and, in CI, the URL of the job (recorded in events).

`RUNBOOK_ACTOR` and `RUNBOOK_CI_URL` may say who acted (a CI job acting for a person), but they are claims:
the login name of the process is kept beside them (`os_user`), and the host is always the real one."""

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
    os_user: str | None = None
    """The login name of the process when `user` or `ci_url` was claimed through the environment."""

    def __str__(self) -> str:
        return f"{self.user}@{self.host} pid {self.pid}"

    def to_json(self) -> dict[str, Any]:
        """Return a plain mapping (journal lines, JSON output)."""
        out: dict[str, Any] = {"user": self.user, "host": self.host, "pid": self.pid, "ci_url": self.ci_url}
        if self.os_user is not None:
            out["os_user"] = self.os_user
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Actor:
        """Rebuild an actor written by `to_json`."""
        return cls(
            user=str(data.get("user") or "unknown"),
            host=str(data.get("host") or "unknown"),
            pid=int(data.get("pid") or 0),
            ci_url=data.get("ci_url") or None,
            os_user=str(data["os_user"]) if data.get("os_user") else None,
        )


def ci_url(env: Mapping[str, str]) -> str | None:
    """Return the URL of this CI job (RUNBOOK_CI_URL, GitHub Actions, GitLab or Jenkins), if any."""
    if env.get("RUNBOOK_CI_URL"):
        return env["RUNBOOK_CI_URL"]
    server, repo, run = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    if repo and run:
        return f"{(server or 'https://github.com').rstrip('/')}/{repo}/actions/runs/{run}"
    return env.get("CI_JOB_URL") or env.get("BUILD_URL") or None


def _login() -> str:
    """The login name of this process (LOGNAME or USER, else its uid's account)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with a random uid)
        return f"uid{os.getuid()}"


def _account() -> str:
    """The account of this process's uid: what the environment cannot claim (unlike LOGNAME or USER)."""
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):  # not POSIX, or no passwd entry for the uid
        return _login()


def current_actor(env: Mapping[str, str] | None = None) -> Actor:
    """Describe this process: user (RUNBOOK_ACTOR or the login name), host, pid and CI job URL; when the
    user or the CI URL is claimed through the environment, the account of the process too (`os_user`)."""
    env = os.environ if env is None else env
    url = ci_url(env)
    user = env.get("RUNBOOK_ACTOR") or _login()
    account = _account()
    claimed = user != account or bool(env.get("RUNBOOK_CI_URL"))
    return Actor(
        user=user,
        host=socket.gethostname() or "localhost",
        pid=os.getpid(),
        ci_url=redact_url(url) if url else None,
        os_user=account if claimed else None,
    )
