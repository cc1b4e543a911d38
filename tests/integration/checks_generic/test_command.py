"""The command kind with real child processes."""

from __future__ import annotations

import sys
import time

import pytest

from runbook.checkrun import run_check
from runbook.checks.base import Verdict
from runbook.checks.command import CommandParams

from .conftest import ContextFactory, spec

PY = sys.executable


def test_exit_code_and_last_line_value(make_ctx: ContextFactory) -> None:
    check = spec("command", run=(PY, "-c", "print('warming up'); print(42)"), expect=("value >= 40",))
    m = run_check(check, make_ctx())
    assert (m.verdict, m.value) == (Verdict.PASS, 42)
    assert m.explanation.endswith("exited 0; value = 42, >= 40")


def test_wrong_exit_code_fails_with_stderr(make_ctx: ContextFactory) -> None:
    code = "import sys; sys.stderr.write('queue not empty\\n'); sys.exit(3)"
    m = run_check(spec("command", run=(PY, "-c", code)), make_ctx())
    assert m.verdict is Verdict.FAIL
    assert m.explanation.endswith("exited 3, expected 0: queue not empty")
    assert run_check(spec("command", run=(PY, "-c", code), exit_code=3), make_ctx()).verdict is Verdict.PASS


def test_no_shell_unless_asked(make_ctx: ContextFactory, tmp_path: object) -> None:
    m = run_check(spec("command", run=("echo", "$HOME", "|", "wc")), make_ctx())
    assert (m.verdict, m.value) == (Verdict.PASS, "$HOME | wc")
    m = run_check(spec("command", run=("echo one two | wc -w",), shell=True), make_ctx())
    assert (m.verdict, m.value) == (Verdict.PASS, 2)


def test_timeout_kills_and_is_an_error(make_ctx: ContextFactory) -> None:
    started = time.monotonic()
    m = run_check(spec("command", run=("sleep 30; echo late",), shell=True, timeout=1.0), make_ctx())
    assert m.verdict is Verdict.ERROR
    assert "timed out after" in m.explanation
    assert time.monotonic() - started < 25  # generous: the 30 s child was killed, not awaited


def test_missing_program_is_an_error(make_ctx: ContextFactory) -> None:
    m = run_check(spec("command", run=("no-such-program-xyz",)), make_ctx())
    assert m.verdict is Verdict.ERROR
    assert m.explanation == "cannot run `no-such-program-xyz`: No such file or directory"
    m = run_check(spec("command", run=("echo hello",)), make_ctx())
    assert m.verdict is Verdict.ERROR
    assert m.explanation.endswith(
        "(run is one string: write an argv list such as [pg_isready, -q], or set shell: true)"
    )


def test_env_values_are_secret(make_ctx: ContextFactory) -> None:
    code = "import os; print(os.environ['API_TOKEN'])"
    m = run_check(spec("command", run=(PY, "-c", code), env={"API_TOKEN": "tok-abcdef-123"}), make_ctx())
    assert m.verdict is Verdict.PASS
    assert m.inputs["env"] == ["API_TOKEN"]
    assert "tok-abcdef-123" not in str(m.to_json())


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="run: required"):
        CommandParams()
    with pytest.raises(ValueError, match="one command string"):
        CommandParams(run=("a", "b"), shell=True)
