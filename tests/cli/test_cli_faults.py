"""Bad input and faults through the CLI: each gives a clear error, the right exit code, no traceback, no
password, and loses nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from runbook.actor import Actor
from runbook.state import StateStore
from tests.cli.conftest import Outcome, with_setting

Migrate = Callable[..., Outcome]
UNREACHABLE = "postgresql://runbook:hunter2secret@127.0.0.1:1/nowhere"


def test_malformed_runbook_exits_2_with_a_location_and_no_traceback(rb_dir: Path, migrate: Migrate) -> None:
    (rb_dir / "stages.yaml").write_text(
        "version: 1\nname: x\nflags: {A: false}\nstages:\n  - id: a\n    sett: {}\n"
    )
    for cmd in (["validate"], ["plan"], ["advance", "--yes"], ["status"]):
        r = migrate(*cmd)
        assert r.code == 2, (cmd, r.text)
        assert r.err.startswith('error: stages.yaml:6:5: stages[0]: unknown key "sett"; did you mean "set"?')
        assert "Traceback" not in r.text


def test_missing_runbook_file_is_a_usage_error(rb_dir: Path, migrate: Migrate) -> None:
    r = migrate("-f", "nope.yaml", "validate")
    assert r.code == 2
    assert "nope.yaml" in r.err and "Traceback" not in r.err


def test_no_database_url_names_the_setting(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    (rb_dir / "stages.yaml").write_text(
        (rb_dir / "stages.yaml").read_text().replace("url: ${DATABASE_URL}", "url: ${DATABASE_URL:-}")
    )
    r = migrate("status")
    assert r.code == 2
    assert "error: no database URL for the state database" in r.err
    assert "settings.state.url (or settings.database.url / DATABASE_URL)" in r.err


def test_refused_connection_exits_5_without_the_password(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    for fmt in ("text", "json"):
        r = migrate("-o", fmt, "status")
        assert r.code == 5, r.text
        assert "hunter2secret" not in r.text
        assert "127.0.0.1:1/nowhere" in r.text and "connection refused" in r.text


@pytest.fixture
def password_user(pg_server_url: str, pg_url: str) -> Iterator[str]:
    """A role that must log in with a password: hba switched to scram for it, restored after."""
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        hba = Path(str(conn.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
        try:
            original = hba.read_text()
            hba.write_text(
                "local all pwuser scram-sha-256\nhost all pwuser 127.0.0.1/32 scram-sha-256\n" + original
            )
        except OSError:
            pytest.fail(f"this test rewrites the test server's pg_hba.conf ({hba}): not writable here")
        conn.execute("DROP ROLE IF EXISTS pwuser")
        conn.execute("CREATE ROLE pwuser LOGIN PASSWORD 'right-one'")
        conn.execute("SELECT pg_reload_conf()")
        try:
            yield pg_url.replace("postgresql://postgres:@", "postgresql://pwuser:wrong-Pa55word@").replace(
                "postgresql://postgres@", "postgresql://pwuser:wrong-Pa55word@"
            )
        finally:
            hba.write_text(original)
            conn.execute("SELECT pg_reload_conf()")


def test_wrong_password_exits_5_and_never_shows_it(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch, password_user: str
) -> None:
    assert "wrong-Pa55word" in password_user
    monkeypatch.setenv("DATABASE_URL", password_user)
    r = migrate("-o", "json", "plan")
    assert r.code == 5, r.text
    assert "wrong-Pa55word" not in r.text
    err = json.loads(r.out)["error"]
    assert "password authentication failed" in err["message"]
    assert err["exit_code"] == 5


def test_a_held_lock_exits_3_naming_the_holder(rb_dir: Path, migrate: Migrate, pg_url: str) -> None:
    assert migrate("advance", "--yes").code == 0
    store = StateStore.open(pg_url)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.lock("cli-test", "advance", Actor("alice", "ops-box", 4121, None)):
            held.set()
            release.wait(20)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(10)
        r = migrate("advance", "--yes")
        assert r.code == 3, r.text
        assert 'runbook "cli-test" is locked by alice@ops-box pid 4121 since' in r.err
        assert "run `migrate unlock` if that process is gone" in r.err
    finally:
        release.set()
        t.join()
        store.close()


def test_unlock_releases_a_lock_whose_holder_hangs(rb_dir: Path, migrate: Migrate, pg_url: str) -> None:
    assert migrate("advance", "--yes").code == 0
    code = (
        "import sys, time\nfrom runbook.state import StateStore\nfrom runbook.actor import Actor\n"
        f"s = StateStore.open({pg_url!r})\n"
        "with s.lock('cli-test', 'rollback', Actor('bob', 'hung-box', 99, None)):\n"
        "    print('held', flush=True)\n    time.sleep(60)\n"
    )  # a hung rollback: a rollback waits for it (an advance it would preempt, see test_preemption)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        assert migrate("rollback").code == 3
        r = migrate("unlock", "--reason", "bob's shell hung")
        assert r.code == 0, r.text  # another host: not looked at, released as asked
        assert r.out.startswith("Released the lock of cli-test: terminated backend ")
        assert r.out.endswith("; its process was not looked at (another host, hung-box)\n")
        r = migrate("rollback")
        assert r.code == 4, r.text
        unlocks = json.loads(migrate("-o", "json", "history", "--operation", "unlock").out)["events"]
        assert len(unlocks) == 1 and unlocks[0]["reason"] == "bob's shell hung"
    finally:
        child.kill()
        child.wait()


def _paused_advance(rb_dir: Path, release: Path) -> subprocess.Popen[str]:
    """`migrate advance --yes` in a process of its own, holding the lock, paused after its flip (before
    verify) until `release` exists."""
    env = {**os.environ, "RUNBOOK_PAUSE_AT": "advance:flipped", "RUNBOOK_PAUSE_RELEASE": str(release)}
    child = subprocess.Popen(
        [sys.executable, "-m", "runbook", "advance", "--yes"],
        cwd=rb_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    for line in child.stderr:
        if line.startswith("paused at advance:flipped"):
            return child
    raise AssertionError(child.communicate())


def test_unlock_refuses_a_holder_still_running_here_and_releases_a_stopped_one(
    rb_dir: Path, migrate: Migrate
) -> None:
    """A new-user trial: `unlock` ended a healthy advance mid-verify on the same host, and the next advance
    then reverted its flags ("reconciled unfinished advance") while the first went on to commit."""
    release = rb_dir / "release"
    first = _paused_advance(rb_dir, release)
    try:
        r = migrate("unlock")
        assert r.code == 3, r.text
        lines = r.err.splitlines()
        assert re.fullmatch(
            rf'error: not unlocking "cli-test": it is held by \S+ pid {first.pid} since '
            r"\d\d:\d\d:\d\d UTC \(advance\), a process still running on this host",
            lines[0],
        ), r.err
        assert lines[1:] == [
            "  hint: wait for it to finish, or take the lock anyway (its database session is ended): "
            '`migrate unlock --force --reason "why"`'
        ]
        assert r.out == ""
        r = migrate("unlock", "--force")
        assert (r.code, r.err.splitlines()[0]) == (2, "error: --force needs --reason"), r.text
        second = migrate("advance", "--yes")
        assert second.code == 3, second.text  # locked: nothing reconciled under the live advance
        assert "reconciled" not in second.text
        release.touch()
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, out + err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    events = json.loads(migrate("-o", "json", "history").out)["events"]
    assert [e["operation"] for e in events if e["operation"] in ("unlock", "reconcile", "advance")] == [
        "advance"
    ]
    assert json.loads(migrate("-o", "json", "status").out)["stage"] == "one"

    release.unlink()
    hung = _paused_advance(rb_dir, release)  # one -> two, then stopped (Ctrl-Z, SIGSTOP): hung
    try:
        hung.send_signal(signal.SIGSTOP)
        r = migrate("unlock", "--reason", "advance stopped")
        assert r.code == 0, r.text
        assert r.out.startswith("Released the lock of cli-test: terminated backend "), r.out
        assert r.out.endswith(f"; its process (pid {hung.pid} on this host) was stopped (hung)\n"), r.out
    finally:
        hung.kill()
        hung.wait()
    ev = json.loads(migrate("-o", "json", "history", "--operation", "unlock").out)["events"][-1]
    assert (ev["reason"], ev["data"]["holder_process"], "forced" in ev["data"]) == (
        "advance stopped",
        "stopped",
        False,
    )


def test_a_flag_write_that_does_not_stick_is_not_recorded_as_done(rb_dir: Path, migrate: Migrate) -> None:
    spec = rb_dir / "stages.yaml"
    (rb_dir / "revert.py").write_text(
        "import pathlib\np = pathlib.Path('app.env')\n"
        "p.write_text(p.read_text().replace('PGBOSS_ENABLED=true', 'PGBOSS_ENABLED=false'))\n"
    )
    reload = f"    path: app.env\n    reload: [{json.dumps(sys.executable)}, revert.py]\n"
    spec.write_text(spec.read_text().replace("    path: app.env\n", reload))
    r = migrate("advance", "--yes")
    assert r.code == 5, r.text
    assert "Not advanced: the flags of one did not stick:" in r.out
    assert "PGBOSS_ENABLED" in r.out
    status = json.loads(migrate("-o", "json", "status").out)
    assert status["stage"] == "legacy"
    ops = [e["operation"] for e in json.loads(migrate("-o", "json", "history").out)["events"]]
    assert "advance" not in ops


def test_rollback_with_the_state_database_down_flips_flags_and_journals(
    rb_dir: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    spec = rb_dir / "stages.yaml"
    spec.write_text(with_setting(spec.read_text(), "  state:\n    url: ${STATE_URL}\n"))
    monkeypatch.setenv("STATE_URL", pg_url)
    assert migrate("advance", "--yes").code == 0
    monkeypatch.setenv("STATE_URL", UNREACHABLE)
    r = migrate("rollback", "--reason", "state db is down, app is failing")
    assert r.code == 5, r.text  # without the state, it may undo the irreversible `done`: --force needed
    assert '--force --reason "why"' in r.text
    assert "PGBOSS_ENABLED=true" in (rb_dir / "app.env").read_text()
    r = migrate("rollback", "--force", "--reason", "state db is down, app is failing")
    assert r.code == 4, r.text
    assert "hunter2secret" not in r.text
    assert "the state database was unreachable: the event is in the local journal" in r.out
    assert "PGBOSS_ENABLED=false" in (rb_dir / "app.env").read_text()
    journal = rb_dir / ".runbook-journal.jsonl"
    assert journal.exists() and "state db is down" in journal.read_text()
    monkeypatch.setenv("STATE_URL", pg_url)
    status = json.loads(migrate("-o", "json", "status").out)
    assert status["stage"] == "legacy"
    assert status["drift"] == []
    rollbacks = json.loads(migrate("-o", "json", "history", "--operation", "rollback").out)["events"]
    assert [e["reason"] for e in rollbacks] == ["state db is down, app is failing"]
    assert not journal.exists() or journal.read_text() == ""


def test_an_interrupted_advance_is_reconciled_by_the_next_command(
    rb_dir: Path, migrate: Migrate, pg_url: str
) -> None:
    assert migrate("advance", "--yes").code == 0
    with StateStore.open(pg_url) as store:
        st = store.require("cli-test")
        store.begin_intent(
            "cli-test",
            expected_version=st.version,
            operation="advance",
            to_stage="two",
            flags_target={"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "true"},
            actor=Actor("crashed", "box", 1, None),
        )
    env = rb_dir / "app.env"
    env.write_text(env.read_text().replace("PGBOSS_FOR_NEW_EVALS=false", "PGBOSS_FOR_NEW_EVALS=true"))
    status = migrate("status")
    assert status.code == 1
    assert "Unfinished advance by crashed@box" in status.out
    r = migrate("advance", "--yes", "--dry-run")
    assert r.code == 1, r.text  # a dry run may not repair, so it reports the intent (never "ready")
    assert "unfinished advance (intent #" in r.text, r.text
    r = migrate("rollback", "--to", "legacy")
    assert r.code == 4, r.text
    events = json.loads(migrate("-o", "json", "history").out)["events"]
    rec = [e for e in events if e["operation"] == "reconcile"]
    assert len(rec) == 1 and rec[0]["outcome"] == "reverted"
    assert "unfinished advance" in rec[0]["reason"]
    assert json.loads(migrate("-o", "json", "status").out)["pending_intent"] is None
