"""The audit record: who acted, by the real `migrate` process. `RUNBOOK_ACTOR` (and `USER`, `LOGNAME`,
`RUNBOOK_CI_URL`) may claim who acted, but the record keeps the account of the process and the real host
beside the claim; text and markdown `history` mark forced and blind operations as JSON does."""

from __future__ import annotations

import json
import os
import pwd
import socket

from tests.reliability.conftest import UNREACHABLE, Home, record

ACCOUNT = pwd.getpwuid(os.getuid()).pw_name
HOST = socket.gethostname()


def test_a_claimed_actor_is_recorded_beside_the_account_and_host(home: Home) -> None:
    claims = [
        {"RUNBOOK_ACTOR": "alice"},
        {"USER": "mallory", "LOGNAME": "mallory"},
        {"RUNBOOK_ACTOR": "bob", "RUNBOOK_CI_URL": "https://ci.example.com/jobs/7"},
    ]
    assert home.run("advance", "--yes", extra=claims[0]).code == 0
    assert home.run("rollback", "--reason", "claimed", extra=claims[1]).code == 4
    assert home.run("advance", "--yes", extra=claims[2]).code == 0
    events = [e for e in home.events() if e.operation in ("advance", "rollback")]
    got = [(e.actor.user, e.actor.host, e.data.get("os_user"), e.actor.os_user) for e in events]
    assert got == [
        ("alice", HOST, ACCOUNT, ACCOUNT),
        ("mallory", HOST, ACCOUNT, ACCOUNT),
        ("bob", HOST, ACCOUNT, ACCOUNT),
    ]
    history = json.loads(home.run("-o", "json", "history", "-n", "100").out)["events"]
    shown = [e["actor"] for e in history if e["operation"] in ("advance", "rollback")]
    assert [(a["user"], a["host"], a["os_user"]) for a in shown] == [(u, h, o) for u, h, o, _ in got]
    text = home.run("history", "-n", "100").out
    assert f"by alice@{HOST} (account {ACCOUNT})" in text
    assert f"by mallory@{HOST} (account {ACCOUNT})" in text
    # not claimed: the account is the actor, nothing beside it
    assert home.run("rollback", "--reason", "plain", extra={"USER": ACCOUNT, "LOGNAME": ACCOUNT}).code == 4
    last = home.events()[-1]
    assert (last.actor.user, last.actor.os_user, "os_user" in last.data) == (ACCOUNT, None, False)
    record(
        f"RELIABILITY audit actor: {len(claims)} claimed actors, "
        f"{len(claims)} recorded with the account and host beside"
    )


def test_history_text_marks_forced_and_blind_operations(home: Home) -> None:
    assert home.run("advance", "--yes").code == 0
    # stage one soaks for an hour: leaving it early needs --force (audited)
    assert home.run("advance", "--yes", extra={"SOAK": "1h"}).code == 1
    r = home.run("advance", "--yes", "--force", "--reason", "hotfix", extra={"SOAK": "1h"})
    assert r.code == 0, r.text
    assert home.run("rollback", "--reason", "back").code == 4
    assert home.run("advance", "--yes").code == 0
    # the state database down: the rollback is blind, journaled, synced by the next command
    assert home.run("rollback", "--reason", "db down", extra={"STATE_URL": UNREACHABLE}).code == 4
    events = json.loads(home.run("-o", "json", "history", "-n", "100").out)["events"]
    forced = [e for e in events if e["data"].get("forced")]
    blind = [e for e in events if e["data"].get("blind")]
    assert [e["operation"] for e in forced] == ["advance"] and len(blind) == 1
    text = home.run("history", "-n", "100").out.splitlines()
    marked_forced = [line for line in text if "[FORCED]" in line]
    marked_blind = [line for line in text if "[BLIND" in line]
    assert len(marked_forced) == 1 and f"#{forced[0]['id']} advance" in marked_forced[0]
    assert len(marked_blind) == 1 and f"#{blind[0]['id']} rollback" in marked_blind[0]
    md = home.run("-o", "markdown", "history", "-n", "100").out
    assert md.count("**forced**") == 1 and md.count("**blind**") == 1
    record(
        f"RELIABILITY audit history: {len(forced)} forced and {len(blind)} blind operations, "
        f"marked in text {len(marked_forced)} + {len(marked_blind)}, in markdown"
    )
