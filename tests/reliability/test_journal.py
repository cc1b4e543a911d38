"""The local journal never blocks a command, and lives with the runbook.

A corpus of broken journal entries, each alone beside a good one, through the real `migrate status` and
`migrate rollback`: the command goes on (no traceback, its usual exit code), the good entry is synced, the
broken one is quarantined in `<journal>.rejected` with its reason, and a warning says so. Blind rollbacks
(decided while the state database was down) that the state as it really was refuses are not applied, and
the flags end at their safe values. The journal sits beside the runbook file whatever the current folder,
and a 200 MB journal is read in constant memory with a bounded `.rejected`.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from runbook.actor import Actor
from runbook.state import JournalEntry, NewEvent
from tests.reliability.conftest import MIGRATE, NAME, UNREACHABLE, Home, Ran, record, runbook_yaml

SAFE = {"PGBOSS_ENABLED": "false", "PGBOSS_FOR_NEW_EVALS": "false"}
ONE = {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "false"}
JOURNAL = ".runbook-journal.jsonl"
WHO = Actor(user="ops", host="box", pid=4121, ci_url=None)
Entry = dict[str, Any]
DUPLICATE = "(a duplicate of the good entry's uuid)"


def entry(operation: str = "note", reason: str = "good", **event: Any) -> Entry:
    """A journal line as `append_journal` writes it (a JSON-ready mapping)."""
    ev = NewEvent(operation, WHO, reason=reason, at=dt.datetime.now(dt.UTC), **event)
    applies = operation in ("rollback", "auto-rollback") and ev.to_stage is not None
    return JournalEntry(NAME, ev, None, applies).to_json()


def dumps(d: Entry) -> str:
    return json.dumps(d, sort_keys=True)


def changed(path: tuple[str, ...], value: Any) -> Callable[[], str]:
    """A broken entry: a good one with the value at `path` replaced."""

    def make() -> str:
        d = entry(reason="broken")
        node = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return dumps(d)

    return make


CORPUS: dict[str, tuple[Callable[[], str], str]] = {
    "bad JSON": (lambda: "{not json at all", "not JSON"),
    "truncated last line": (lambda: dumps(entry(reason="cut"))[:57], "not JSON"),
    "not UTF-8": (lambda: "\udcff\udcfe{}", "not UTF-8"),
    "not an object": (lambda: "[1, 2, 3]", "not a JSON object"),
    "uuid not a UUID": (changed(("event", "uuid"), "not-a-uuid-at-all"), "event.uuid: not a UUID"),
    "wrong type: expected_version": (changed(("expected_version",), "two"), "expected_version"),
    "wrong type: flags_after": (changed(("event", "flags_after"), ["PGBOSS_ENABLED"]), "event.flags_after"),
    "wrong type: at": (changed(("event", "at"), 1700000000), "event.at"),
    "wrong type: actor pid": (changed(("event", "actor", "pid"), "many"), "event.actor.pid"),
    "wrong type: runbook": (changed(("runbook",), 42), "runbook: expected"),
    "unknown runbook": (changed(("runbook",), "somebody-else"), "another runbook"),
    "unknown operation": (changed(("event", "operation"), "drop-table"), "unknown operation"),
    "unknown stage": (
        lambda: dumps({**entry("rollback", to_stage="nowhere", flags_after=SAFE), "applies_state": True}),
        "not a stage",
    ),
    "NUL character": (changed(("event", "reason"), "a\x00b"), "NUL"),
    "intent that does not exist": (changed(("event", "intent_id"), 987654321), "refused it"),
    "duplicate uuid": (lambda: DUPLICATE, "already used"),
}


def write_journal(path: Path, good: Entry, broken: str, kind: str) -> None:
    """The good entry, then the broken one (the last line; without its newline when cut by a crash)."""
    if broken == DUPLICATE:  # the good entry's uuid on another event
        dup = entry("sample-breach", reason="same uuid, other event")
        dup["event"]["uuid"] = good["event"]["uuid"]
        broken = dumps(dup)
    end = "" if kind == "truncated last line" else "\n"
    path.write_bytes((dumps(good) + "\n" + broken + end).encode("utf-8", "surrogateescape"))


def rejected(home: Home) -> list[dict[str, Any]]:
    path = home.dir / f"{JOURNAL}.rejected"
    return [_record(x) for x in path.read_text("utf-8", "replace").splitlines()] if path.exists() else []


def _record(text: str) -> dict[str, Any]:
    try:
        got = json.loads(text)
    except ValueError:
        got = None
    return got if isinstance(got, dict) else {"reason": "(no reason)", "text": text}


def _is_json(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def test_broken_journal_entries_never_block_a_command(home: Home) -> None:
    journal = home.dir / JOURNAL
    blocked: list[str] = []
    broken = 0
    for kind, (make, why) in CORPUS.items():
        journal.unlink(missing_ok=True)  # (emptied by the previous sync; left behind only by a blocked one)
        adv = home.popen("advance", "--yes")
        adv.communicate(timeout=120)
        if adv.returncode != 0:
            blocked.append(f"{kind}: advance before it: exit {adv.returncode}")
        for command in ("status", "rollback"):
            good = entry(reason=f"good before {kind} ({command})")
            write_journal(journal, good, make(), kind)
            before = len(rejected(home))
            # status in JSON: the warning still reaches stderr, and stdout stays one JSON document
            args = ("-o", "json", "status") if command == "status" else (command, "--reason", f"with {kind}")
            proc = home.popen(*args)
            out, err = proc.communicate(timeout=120)
            r = Ran(proc.returncode, out, err)
            expected = 0 if command == "status" else 4
            new = rejected(home)[before:]
            notes = [e.reason for e in home.events() if e.operation == "note"]
            problems = [
                "traceback" if "Traceback" in r.text else "",
                f"exit {r.code} (expected {expected})" if r.code != expected else "",
                "" if "not synced" in r.err else "no warning",
                "" if command != "status" or _is_json(out) else "stdout is not one JSON document",
                "" if journal.read_bytes() == b"" else "journal not emptied",
                "" if len(new) == 1 and why in str(new[0].get("reason")) else f"rejected {new}",
                "" if good["event"]["reason"] in notes else "good entry not synced",
                "" if command == "status" or home.flags() == {**home.flags(), **SAFE} else "flags not safe",
            ]
            broken += 1
            if any(problems):
                blocked.append(f"{kind} / {command}: {[p for p in problems if p]}\n{r.text}")
    assert blocked == [], f"{len(blocked)} of {broken}:\n" + "\n".join(blocked)
    assert json.loads(home.run("-o", "json", "status").out)["stage"] == "legacy"
    record(f"RELIABILITY journal: {broken} broken entries ({len(CORPUS)} kinds), 0 blocked commands")


def test_the_journal_lives_beside_the_runbook_whatever_the_current_folder(home: Home, tmp_path: Path) -> None:
    assert home.run("advance", "--yes").code == 0
    elsewhere = tmp_path / "ci-workspace"
    elsewhere.mkdir()
    runbook = str(home.dir / "stages.yaml")

    def migrate(*args: str, state: str) -> subprocess.CompletedProcess[str]:
        env = home.environ({"STATE_URL": state})
        got = subprocess.run(
            [*MIGRATE, "-f", runbook, *args], cwd=elsewhere, env=env, capture_output=True, text=True
        )
        assert "Traceback" not in got.stdout + got.stderr, got.stderr
        return got

    down = migrate("rollback", "--reason", "state db down, run from CI", state=UNREACHABLE)
    assert down.returncode == 4, down.stdout + down.stderr
    assert (home.dir / JOURNAL).exists() and not (elsewhere / JOURNAL).exists()
    assert home.flags()["PGBOSS_ENABLED"] == "false"
    (tmp_path / "third").mkdir()
    status = subprocess.run(
        [*MIGRATE, "-f", runbook, "-o", "json", "status"],
        cwd=tmp_path / "third",
        env=home.environ(),
        capture_output=True,
        text=True,
    )
    data = json.loads(status.stdout)
    assert (status.returncode, data["stage"], data["drift"]) == (0, "legacy", [])
    assert (home.dir / JOURNAL).read_text() == ""
    [rollback] = [e for e in home.events() if e.operation == "rollback"]
    assert rollback.data["journal"]["applied"] is True


BLIND = (
    runbook_yaml()
    .replace("  - id: one\n", "  - id: observe\n    title: nothing flipped yet\n  - id: one\n")
    .replace("  - id: two\n", "  - id: two\n    irreversible: true\n")
)
TWO = {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "true"}


def put_state(home: Home, stage: str, flags: dict[str, str]) -> None:
    """Move the recorded state to `stage` (as earlier advances would have) and the app's flags with it."""
    with home.store() as store:
        cur = store.current(NAME)
        assert cur is not None
        store.transition(NAME, cur.version, stage, flags, NewEvent("advance", WHO, to_stage=stage))
    (home.dir / "app.env").write_text(env_text(flags))


def env_text(flags: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in flags.items()) + "OTHER=keep-me\n"


def blind_rollback(home: Home, to: str, *, forced: bool = False) -> str:
    """Journal a rollback to `to` as one made while the state database was down (stage not known), with
    `--force --reason` when `forced`."""
    data = {"blind": True, **({"forced": True} if forced else {})}
    ev = NewEvent("rollback", WHO, reason="state db down", to_stage=to, flags_after=SAFE, data=data)
    ev = replace(ev, at=dt.datetime.now(dt.UTC))
    line = {**JournalEntry(NAME, ev, None, True).to_json(), "blind": True}
    (home.dir / JOURNAL).write_text(dumps(line) + "\n")
    return ev.uuid


def test_blind_rollbacks_the_real_state_refuses_are_not_applied_and_flags_end_safe(home: Home) -> None:
    home.write(BLIND)
    with home.store() as store:
        store.initialize(NAME, "legacy", SAFE, WHO)
    cases = [  # (state before, its flags, blind rollback target, forced?, applied?)
        ("legacy", SAFE, "observe", True, False),  # forward: never, even forced
        ("two", TWO, "legacy", False, False),  # across the irreversible stage two, not forced
        ("two", TWO, "legacy", True, True),  # the same with --force --reason: applied as a forced one
        ("one", ONE, "legacy", False, True),  # a plain rollback: applied
    ]
    refused = 0
    for stage, flags, to, forced, applied in cases:
        put_state(home, stage, flags)
        if not applied:  # someone set the flags again since: the sync must put them back to safe
            (home.dir / "app.env").write_text(env_text(TWO))
        else:  # as the blind rollback left them
            (home.dir / "app.env").write_text(env_text(SAFE))
        uid = blind_rollback(home, to, forced=forced)
        r = home.run("-o", "json", "status")
        drift = stage == "two" and not applied  # the state stays at two, whose flags are not the safe ones
        assert r.code == (1 if drift else 0), r.text
        data = json.loads(r.out)
        events = home.events()
        [synced] = [e for e in events if e.uuid == uid]
        conflicts = [e for e in events if e.operation == "conflict" and e.data.get("journal_uuid") == uid]
        assert synced.data["journal"]["applied"] is applied, synced.data
        assert data["stage"] == (to if applied else stage)
        assert data["flags"]["actual"] == SAFE
        assert home.flags()["OTHER"] == "keep-me"
        if not applied:
            refused += 1
            assert len(conflicts) == 1 and "not applied" in (conflicts[0].reason or "")
            assert synced.data["journal"]["note"].startswith("conflict: the state was at " + stage)
        else:
            assert conflicts == []
    history = home.run("history")
    assert history.code == 0 and history.out.count("conflict") >= 2, history.text
    record(
        f"RELIABILITY journal: {len(cases)} blind rollbacks synced, {refused} refused by the real state "
        "(forward, across irreversible without --force), 0 applied wrongly, flags safe after each"
    )


RSS = """
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.stderr.write(p.stdout + p.stderr)
"""


def test_a_200_mb_journal_is_read_in_constant_memory_and_rejected_lines_are_bounded(home: Home) -> None:
    assert home.run("advance", "--yes").code == 0
    journal = home.dir / JOURNAL
    junk = b"x" * (2 << 20)  # lines over the 1 MiB line limit
    with open(journal, "wb") as f:
        for i in range(100):
            f.write(dumps(entry(reason=f"good {i}")).encode() + b"\n")
            f.write(junk + b"\n")
    size = journal.stat().st_size
    assert size > 200_000_000
    got = subprocess.run(
        [sys.executable, "-c", RSS, *MIGRATE, "status"],
        cwd=home.dir,
        env=home.environ(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    code, peak_kb = (int(x) for x in got.stdout.split())
    assert "Traceback" not in got.stderr, got.stderr
    assert code == 0, got.stderr
    assert peak_kb < 100 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB reading a {size >> 20} MB journal"
    assert "100 journal lines" in got.stderr and "90 more not listed" in got.stderr
    kept = [p for p in home.dir.iterdir() if p.name.startswith(f"{JOURNAL}.rejected")]
    total = sum(p.stat().st_size for p in kept)
    assert {p.name for p in kept} == {f"{JOURNAL}.rejected", f"{JOURNAL}.rejected.1"}
    assert total <= 2 * (4 << 20), total
    assert len([e for e in home.events() if e.operation == "note"]) == 100
    assert journal.read_text() == ""
    record(
        f"RELIABILITY journal: {size >> 20} MB journal synced by status at peak RSS {peak_kb >> 10} MB; "
        f"100 overlong lines quarantined in {total >> 10} KiB"
    )


def test_a_journal_that_cannot_be_written_or_read_is_an_error_naming_it_not_a_traceback(home: Home) -> None:
    home.write(
        runbook_yaml().replace("    url: ${STATE_URL}\n", "    url: ${STATE_URL}\n    journal: jdir\n")
    )
    (home.dir / "jdir").mkdir()  # settings.state.journal names a folder
    advanced = home.run("advance", "--yes")
    assert advanced.code == 0, advanced.text
    assert "cannot sync the local journal" in advanced.err and "jdir" in advanced.err
    down = home.run("rollback", "--reason", "state db down", extra={"STATE_URL": UNREACHABLE})
    assert down.code == 5, down.text
    assert "cannot write the local journal" in down.err and "settings.state.journal" in down.err
    assert home.flags()["PGBOSS_ENABLED"] == "false"  # the rollback itself was not blocked
    status = home.run("status")
    assert status.code == 1 and "drift" in status.out.lower()  # the state still says one: drift shown
