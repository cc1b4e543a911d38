"""The dotenv flag backend: parsing, byte-exact rewriting, atomic replace, reload command, read-back."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from runbook.errors import ConfigError, FlagWriteError, UnreachableError
from runbook.flags.dotenv import DotenvFlagBackend, parse, rewrite, values_of

SAMPLE = (
    "# app settings\n"
    "DATABASE_URL=postgres://app:s3cret@db/app   # do not commit\n"
    "\n"
    "export PGBOSS_ENABLED=false # flipped by runbook\n"
    "  PGBOSS_FOR_NEW_EVALS = 'false'\n"
    'GREETING="hello \\"world\\"\\nbye"\n'
    "MULTI='line one\n"
    "line two'\n"
    "URL=http://x/#frag\n"
    "EMPTY=\n"
    "; not an assignment\n"
    "DUP=1\n"
    "DUP=2"
)


def test_parse_understands_the_usual_forms() -> None:
    lines = parse(SAMPLE)
    assert "".join(line.text for line in lines) == SAMPLE
    v = values_of(lines)
    assert v["DATABASE_URL"] == "postgres://app:s3cret@db/app"
    assert v["PGBOSS_ENABLED"] == "false"
    assert v["PGBOSS_FOR_NEW_EVALS"] == "false"
    assert v["GREETING"] == 'hello "world"\nbye'
    assert v["MULTI"] == "line one\nline two"
    assert v["URL"] == "http://x/#frag"
    assert v["EMPTY"] == ""
    assert v["DUP"] == "2"
    assert "; not an assignment" not in v


def test_rewrite_changes_only_the_values() -> None:
    new = rewrite(
        SAMPLE, {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_NEW_EVALS": "true", "DUP": "3", "NEW": "a b"}
    )
    assert new == (
        "# app settings\n"
        "DATABASE_URL=postgres://app:s3cret@db/app   # do not commit\n"
        "\n"
        "export PGBOSS_ENABLED=true # flipped by runbook\n"
        "  PGBOSS_FOR_NEW_EVALS = 'true'\n"
        'GREETING="hello \\"world\\"\\nbye"\n'
        "MULTI='line one\n"
        "line two'\n"
        "URL=http://x/#frag\n"
        "EMPTY=\n"
        "; not an assignment\n"
        "DUP=3\n"
        "DUP=3\n"
        'NEW="a b"\n'
    )
    assert values_of(parse(new))["NEW"] == "a b"
    assert rewrite(SAMPLE, {"PGBOSS_ENABLED": "false"}) == SAMPLE  # unchanged values leave bytes alone
    crlf = "A=1\r\nB=2\r\n"
    assert rewrite(crlf, {"B": "3", "C": "4"}) == "A=1\r\nB=3\r\nC=4\r\n"


def test_write_is_atomic_and_keeps_everything_else(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(SAMPLE)
    env.chmod(0o640)
    backend = DotenvFlagBackend(env)
    backend.write({"PGBOSS_ENABLED": "true", "PGBOSS_FOR_ALL_JOBS": "false"}, actor="ops@box pid 1")
    text = env.read_text()
    assert text == rewrite(SAMPLE, {"PGBOSS_ENABLED": "true", "PGBOSS_FOR_ALL_JOBS": "false"})
    assert text.splitlines()[0:3] == SAMPLE.splitlines()[0:3]  # comments byte for byte
    assert stat.S_IMODE(env.stat().st_mode) == 0o640
    # no temporary file left; the lock file of the read-modify-write stays (removing it would race)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["..env.lock", ".env"]
    assert backend.read(["PGBOSS_ENABLED", "PGBOSS_FOR_ALL_JOBS", "NOPE"]) == {
        "PGBOSS_ENABLED": "true",
        "PGBOSS_FOR_ALL_JOBS": "false",
        "NOPE": None,
    }


def test_a_symlinked_file_keeps_its_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "app.env"
    target.write_text("X=1\n")
    link = tmp_path / ".env"
    link.symlink_to(target)
    DotenvFlagBackend(link).write({"X": "2"})
    assert link.is_symlink() and target.read_text() == "X=2\n"


def test_missing_file_is_created_and_missing_folder_is_unreachable(tmp_path: Path) -> None:
    backend = DotenvFlagBackend(tmp_path / ".env")
    assert backend.read(["A"]) == {"A": None}
    backend.write({"A": "true"})
    assert (tmp_path / ".env").read_text() == "A=true\n"
    with pytest.raises(UnreachableError, match="does not exist"):
        DotenvFlagBackend(tmp_path / "nope" / ".env").read(["A"])


def test_reload_command_runs_after_the_write(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=false\n")
    seen = tmp_path / "seen"
    script = f"import pathlib; pathlib.Path({str(seen)!r}).write_text(pathlib.Path('.env').read_text())"
    DotenvFlagBackend(env, reload=(sys.executable, "-c", script)).write({"A": "true"})
    assert seen.read_text() == "A=true\n"  # ran in the file's folder, after the rename
    DotenvFlagBackend(env, reload=(f"echo $RUNBOOK_ACTOR > {tmp_path}/who",), reload_shell=True).write(
        {"A": "false"}, actor="ann@box pid 7"
    )
    assert (tmp_path / "who").read_text() == "ann@box pid 7\n"


def test_a_failing_reload_names_its_stderr_without_secrets(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=false\n")
    script = (
        "import sys; sys.stderr.write('boom\\nconnect postgres://u:tok-123456@h/db failed\\n'); sys.exit(3)"
    )
    backend = DotenvFlagBackend(
        env, reload=(sys.executable, "-c", script), env={**os.environ, "DEPLOY_TOKEN": "tok-123456"}
    )
    with pytest.raises(FlagWriteError) as err:
        backend.write({"A": "true"})
    msg = str(err.value)
    assert "the reload command" in msg and "failed with exit status 3" in msg and "boom" in msg
    assert "tok-123456" not in msg and "u:***@h" in msg
    assert env.read_text() == "A=true\n"  # the file was written; the message says so
    with pytest.raises(ConfigError, match="program not found: no-such-program-xyz"):
        DotenvFlagBackend(env, reload=("no-such-program-xyz",)).write({"A": "true"})
    with pytest.raises(FlagWriteError, match=r"did not finish within 0.5s"):
        DotenvFlagBackend(
            env, reload=(sys.executable, "-c", "import time; time.sleep(30)"), reload_timeout=0.5
        ).write({"A": "true"})


def test_read_back_mismatch_names_each_value(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("A=false\nB=false\n")
    # a "reload" that puts the old file back, as a deploy overwriting .env would
    script = "import pathlib; pathlib.Path('.env').write_text('A=false\\nB=true\\n')"
    backend = DotenvFlagBackend(env, reload=(sys.executable, "-c", script))
    with pytest.raises(FlagWriteError) as err:
        backend.write({"A": "true", "B": "true", "C": "x"})
    assert err.value.message.endswith('A: wrote "true", read back "false"; C: wrote "x", read back (not set)')
    assert "B:" not in err.value.message
    assert err.value.exit_code == 5
