"""Rollback rules under every path: a rollback never moves forward and never crosses an irreversible stage
without --force --reason, whether the current stage is known, unreadable (state database down: a blind
rollback) or unknown to the runbook file (stage renamed or removed); automatic rollbacks (gate, watch, a
failed verify) obey the same rule and hold the breach out of an irreversible stage."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tests.reliability.conftest import NAME, UNREACHABLE, Home, record

RUNBOOK = """\
version: 1
name: reliability
settings:
  database:
    url: ${DATABASE_URL}
  state:
    url: ${STATE_URL}
  flags:
    type: dotenv
    path: app.env
  notifications:
    - url: ${HOOK_URL:-http://127.0.0.1:9/none}
      format: json
  defaults:
    verify_deadline: 1s
    verify_interval: 0.2s
flags:
  PGBOSS_ENABLED: false
  PGBOSS_FOR_NEW_EVALS: false
  PGBOSS_FOR_ALL_JOBS: false
stages:
  - id: legacy
  - id: prepared
  - id: one
    set: {PGBOSS_ENABLED: true}
  - id: two
    set: {PGBOSS_FOR_NEW_EVALS: true}
  - id: retired
    irreversible: true
    set: {PGBOSS_FOR_ALL_JOBS: true}
    verify:
      - name: retired-ok
        kind: sql
        query: SELECT ${VERIFY_VALUE:-1}
        expect: ["value == 1"]
    monitor:
      - name: healthy
        kind: sql
        query: SELECT ${MONITOR_VALUE:-0}
        expect: ["value == 0"]
"""
STAGES = ("legacy", "prepared", "one", "two", "retired")
SAFE = {"PGBOSS_ENABLED": "false", "PGBOSS_FOR_NEW_EVALS": "false", "PGBOSS_FOR_ALL_JOBS": "false"}
RETIRED = {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "true", "PGBOSS_FOR_ALL_JOBS": "true"}
TWO = {**RETIRED, "PGBOSS_FOR_ALL_JOBS": "false"}


class Hook(BaseHTTPRequestHandler):
    """The webhook receiver: keeps every JSON body posted."""

    bodies: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        Hook.bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def rules(home: Home, hook: str) -> Home:
    """The runbook, its webhook a live receiver (a dead one would cost every command its retries)."""
    home.write(RUNBOOK)
    home.env["HOOK_URL"] = hook
    return home


def flags(home: Home) -> dict[str, str]:
    return {k: v for k, v in home.flags().items() if k.startswith("PGBOSS_")}


def advance_to(home: Home, stage: str) -> None:
    confirm = ["--yes"]
    while True:
        st = json.loads(home.run("-o", "json", "status").out)["stage"]
        if st == stage:
            return
        r = home.run("advance", *confirm)
        assert r.code == 0, r.text


def state_stage(home: Home) -> str:
    with home.store() as s:
        st = s.current(NAME)
    assert st is not None
    return st.stage


def test_blind_rollback_never_moves_forward_nor_undoes_an_irreversible_stage_unforced(rules: Home) -> None:
    """State database unreachable, the real state at `one` and then at `retired` (irreversible): every
    --to, with and without --force --reason. Only a target whose flags are all safe may be flipped to, and
    only forced (an irreversible stage may be undone); every other attempt is refused with exit 5 and
    touches neither the flags nor the journal. A flipped one is journaled with `blind: true`."""
    journal = rules.dir / ".runbook-journal.jsonl"
    good = rules.env["STATE_URL"]
    tried = forward = across = refused = flipped = 0
    wrong: list[str] = []
    for real, before in (("one", {**SAFE, "PGBOSS_ENABLED": "true"}), ("retired", RETIRED)):
        rules.env["STATE_URL"] = good
        advance_to(rules, real)
        assert flags(rules) == before
        rules.env["STATE_URL"] = UNREACHABLE
        for to in (None, *STAGES):
            for force in (False, True):
                args = [*(["--to", to] if to else []), *(["--force", "--reason", "db down"] if force else [])]
                r = rules.run("rollback", *args)
                tried += 1
                after = flags(rules)
                entries = (
                    [json.loads(x) for x in journal.read_text().splitlines()] if journal.exists() else []
                )
                forward += any(after[k] not in (before[k], SAFE[k]) for k in SAFE)
                across += real == "retired" and not force and after != before
                allowed = force and to in (None, "legacy", "prepared")
                if not allowed:
                    refused += r.code == 5
                    hint = "the state database is unreachable; only a rollback to legacy is possible now"
                    if (r.code, after, entries) != (5, before, []) or hint not in r.text:
                        wrong.append(f"{real}: rollback {' '.join(args)}: exit {r.code}, flags {after}")
                    if to in (None, "legacy", "prepared") and '--force --reason "why"' not in r.text:
                        wrong.append(f"{real}: rollback {' '.join(args)}: no --force hint: {r.text}")
                else:
                    event = entries[0]["event"] if len(entries) == 1 else {}
                    if (
                        (r.code, after) != (4, SAFE)
                        or entries[0].get("blind") is not True
                        or (event["from_stage"], event["to_stage"]) != (None, to or "legacy")
                        or event["data"].get("blind") is not True
                        or event["data"].get("forced") is not True
                        or "hunter2-unreachable" in r.text
                    ):
                        wrong.append(f"{real}: rollback {' '.join(args)}: exit {r.code}, journal {entries}")
                    else:
                        flipped += 1
                # not synced: the next run starts from the real state and its flags again
                journal.unlink(missing_ok=True)
                (rules.dir / "app.env").write_text("".join(f"{k}={v}\n" for k, v in before.items()))
    rules.env["STATE_URL"] = good
    assert state_stage(rules) == "retired"
    record(
        f"RELIABILITY blind rollbacks: {tried} tried ({refused} refused with exit 5, {flipped} forced to "
        f"safe flags and journaled blind), {forward} forward, {across} across irreversible"
    )
    assert wrong == []
    assert (forward, across, tried, refused, flipped) == (0, 0, 24, 18, 6)


def test_blind_rollback_without_irreversible_stages_needs_no_force_but_never_goes_forward(
    rules: Home,
) -> None:
    rules.write(RUNBOOK.replace("    irreversible: true\n", ""))
    advance_to(rules, "two")
    rules.env["STATE_URL"] = UNREACHABLE
    for to in ("one", "two", "retired"):
        r = rules.run("rollback", "--to", to)
        assert r.code == 5, r.text
        assert "only a rollback to legacy is possible now" in r.text
        assert flags(rules) == TWO
    r = rules.run("rollback", "--to", "prepared", "--reason", "db down")
    assert r.code == 4, r.text
    assert flags(rules) == SAFE


def test_automatic_rollbacks_hold_out_of_an_irreversible_stage(rules: Home, hook: str) -> None:
    """gate --rollback-on-failure and watch on a breach in `retired`, and a failed verify entering it: no
    rollback, the flags stay, the breach is recorded and sent to the webhook, exit 1."""
    rules.env["HOOK_URL"] = hook
    advance_to(rules, "two")
    r = rules.run("advance", "--yes", extra={"VERIFY_VALUE": "0"})
    assert r.code == 1, r.text
    assert "not rolled back automatically" in r.out
    assert flags(rules) == RETIRED
    assert state_stage(rules) == "retired"
    held = 1

    bad = {"MONITOR_VALUE": "1"}
    r = rules.run("gate", "--rollback-on-failure", extra=bad)
    assert r.code == 1, r.text
    assert "Not rolled back" in r.out and "retired is irreversible" in r.out
    assert flags(rules) == RETIRED
    held += 1

    r = rules.run("-o", "json", "watch", "--max-samples", "3", "--interval", "0.1s", extra=bad)
    assert r.code == 1, r.text
    assert json.loads(r.out.splitlines()[-1])["outcome"] == "not-rolled-back"  # after a line per round
    assert flags(rules) == RETIRED
    held += 1

    assert state_stage(rules) == "retired"
    events = rules.events()
    assert not [e for e in events if e.operation in ("rollback", "auto-rollback")]
    breaches = [e for e in events if e.outcome == "not rolled back"]
    assert [e.operation for e in breaches] == ["verify-failed", "sample-breach", "sample-breach"]
    assert all(e.data["rollback_refused"]["code"] == "irreversible" for e in breaches)
    sent = [(b["type"], b["stage"]) for b in Hook.bodies if b["type"] in ("breach", "verify-failed")]
    assert sent == [("verify-failed", "retired"), ("breach", "retired"), ("breach", "retired")], Hook.bodies
    # a human can still do it, with --force --reason
    r = rules.run("rollback", "--force", "--reason", "retired broke the app")
    assert r.code == 4, r.text
    assert flags(rules) == SAFE
    record(f"RELIABILITY automatic rollbacks out of an irreversible stage: {held} breaches, 0 rolled back")


def test_rollback_when_the_state_names_a_stage_the_file_does_not_define(rules: Home) -> None:
    advance_to(rules, "two")
    rules.write(RUNBOOK.replace("  - id: two\n", "  - id: two-renamed\n"))
    r = rules.run("rollback")
    assert r.code == 1, r.text
    assert "which stages.yaml does not define" in r.text
    assert '`migrate rollback --to legacy --force --reason "why"`' in r.text
    assert flags(rules) == TWO
    r = rules.run("rollback", "--to", "one", "--force", "--reason", "renamed")
    assert r.code == 2, r.text
    assert flags(rules) == TWO
    r = rules.run("status")
    assert '--to legacy --force --reason "why"' in r.text  # the hint it gives works
    r = rules.run("rollback", "--force", "--reason", "stage two was renamed")
    assert r.code == 4, r.text
    assert flags(rules) == SAFE
    assert state_stage(rules) == "legacy"
    status = rules.run("-o", "json", "status")
    assert status.code == 0, status.text
    assert json.loads(status.out)["drift"] == []
    record(
        "RELIABILITY stage unknown to the runbook: rollback refused without --force (exit 1) and to a stage "
        "with flags on (exit 2), flags untouched; with --force --reason: exit 4, flags safe, drift 0"
    )
