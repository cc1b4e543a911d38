"""Who is acting: user, host, pid and the CI job URL from the usual CI variables."""

from __future__ import annotations

import getpass
import os
import socket

from runbook.actor import Actor, current_actor


def test_user_host_pid() -> None:
    a = current_actor({})
    assert (a.user, a.host, a.pid, a.ci_url) == (getpass.getuser(), socket.gethostname(), os.getpid(), None)
    assert current_actor({"RUNBOOK_ACTOR": "deploy-bot"}).user == "deploy-bot"
    assert str(Actor("ops", "box", 4121)) == "ops@box pid 4121"
    b = Actor("ops", "box", 1, "https://ci/1")
    assert Actor.from_json(b.to_json()) == b


def test_ci_urls() -> None:
    gh = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/app", "GITHUB_RUN_ID": "42"}
    assert current_actor(gh).ci_url == "https://github.com/acme/app/actions/runs/42"
    assert current_actor({"CI_JOB_URL": "https://gitlab.com/acme/app/-/jobs/7"}).ci_url.endswith("/jobs/7")  # type: ignore[union-attr]
    assert current_actor({"BUILD_URL": "https://jenkins/job/x/3/"}).ci_url == "https://jenkins/job/x/3/"
    assert current_actor({"RUNBOOK_CI_URL": "https://ci/run", **gh}).ci_url == "https://ci/run"
    assert (
        current_actor({"BUILD_URL": "https://u:tok-1234@jenkins/job/x/3/"}).ci_url
        == "https://u:***@jenkins/job/x/3/"
    )
