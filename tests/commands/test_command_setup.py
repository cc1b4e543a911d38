"""`init`, `validate` and `schema` called directly (no session, no database), and the errors every
command meets before or while opening its session: an invalid runbook, a missing variable, an unreachable
state database (and the blind rollback it still allows), a flags file that cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.commands.advance import advance
from runbook.commands.history import history
from runbook.commands.init import default_runbook_text, init
from runbook.commands.rollback import rollback
from runbook.commands.schema import schema
from runbook.commands.status import status
from runbook.commands.validate import validate
from runbook.errors import SpecError, UnreachableError, UsageError
from runbook.exitcodes import ExitCode
from runbook.model import DOTENV_FLAGS_FILE
from runbook.session import Session
from tests.commands.conftest import COMMANDS_RUNBOOK, Workspace

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nothere"
"""A state database nothing listens for (port 1: refused at once)."""


def test_init_writes_then_keeps_then_overwrites(tmp_path: Path) -> None:
    r = init(tmp_path)
    files = [str(tmp_path / "stages.yaml"), str(tmp_path / DOTENV_FLAGS_FILE)]
    assert (r.written, r.skipped, r.role_file, r.exit_code) == (files, [], None, ExitCode.OK)
    assert (tmp_path / DOTENV_FLAGS_FILE).read_text().splitlines()[2:] == [
        "PGBOSS_ENABLED=false",
        "PGBOSS_FOR_NEW_EVALS=false",
        "PGBOSS_FOR_ALL_JOBS=false",
    ]
    (tmp_path / "stages.yaml").write_text("# mine\n")
    (tmp_path / DOTENV_FLAGS_FILE).write_text("PGBOSS_ENABLED=true\n")  # live flags
    r = init(tmp_path)
    assert (r.written, r.skipped, r.kept_flags) == ([], files[:1], files[1])
    assert (tmp_path / "stages.yaml").read_text() == "# mine\n"
    r = init(tmp_path, force=True)
    assert (r.written, r.skipped, r.kept_flags) == (files[:1], [], files[1])
    assert (tmp_path / "stages.yaml").read_text() != "# mine\n"
    assert (tmp_path / DOTENV_FLAGS_FILE).read_text() == "PGBOSS_ENABLED=true\n"  # never reset, even forced
    r = init(tmp_path, force=True, role="runbook_ops")
    assert r.role == "runbook_ops" and r.role_file == str(tmp_path / "runbook-role.sql")
    assert sorted(r.written) == sorted([files[0], r.role_file]) and r.skipped == []
    assert r.to_json()["written"] == r.written
    assert "runbook_ops" in (tmp_path / "runbook-role.sql").read_text()


def test_init_force_role_never_reads_the_runbook_it_replaces(tmp_path: Path) -> None:
    (tmp_path / "stages.yaml").write_text("stages: [not, a, runbook\n")  # invalid: never loaded
    with pytest.raises(SpecError):  # kept without --force: its names are the role's, so it is read
        init(tmp_path, role="runbook_ops")
    r = init(tmp_path, force=True, role="runbook_ops")
    assert str(tmp_path / "stages.yaml") in r.written and r.skipped == []
    assert (tmp_path / "stages.yaml").read_text() == default_runbook_text()
    sql = (tmp_path / "runbook-role.sql").read_text()
    assert "runbook_ops" in sql and '"pgboss"' in sql  # the shipped runbook's names


@pytest.mark.parametrize(
    ("kwargs", "message", "hint"),
    [
        (
            {"install_from": "dist/x.whl"},
            "--install-from is what a CI pipeline or the Kubernetes manifests install",
            "add --ci github, --ci gitlab or --deploy kubernetes",
        ),
        ({"deploy_options": {"replicas": 3}}, "--replicas is an option of the Kubernetes manifests", None),
        ({"role": "bad name;"}, "--role 'bad name;' is not a plain role name", None),
    ],
)
def test_init_refuses_bad_options_and_writes_nothing(
    tmp_path: Path, kwargs: dict[str, object], message: str, hint: str | None
) -> None:
    with pytest.raises(UsageError) as err:
        init(tmp_path / "out", **kwargs)  # type: ignore[arg-type]
    assert (err.value.message, err.value.exit_code) == (message, ExitCode.USAGE)
    assert err.value.hint is not None and (hint is None or err.value.hint == hint)
    assert not (tmp_path / "out").exists()


def test_init_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    with pytest.raises(UsageError, match="is not a folder") as err:
        init(tmp_path / "taken")
    assert err.value.hint == "pass --dir with a folder"


def test_validate_returns_the_loaded_runbook(ws: Workspace) -> None:
    r = validate(ws.runbook, {"DATABASE_URL": ws.database_url})
    assert (r.path, r.runbook.name, r.warnings, r.exit_code) == (str(ws.runbook), "cli-test", [], ExitCode.OK)
    data = r.to_json()
    assert [(s["id"], s["checks"], s["irreversible"]) for s in data["stages"]] == [
        ("legacy", 0, False),
        ("one", 3, False),
        ("two", 1, False),
        ("done", 0, True),
    ]
    assert (data["valid"], data["checks"], [f["name"] for f in data["flags"]]) == (
        True,
        4,
        ["PGBOSS_ENABLED", "PGBOSS_FOR_NEW_EVALS"],
    )


def test_validate_locates_every_problem(ws: Workspace) -> None:
    ws.edit("kind: command", "kind: nope")
    with pytest.raises(SpecError) as err:
        validate(ws.runbook, {"DATABASE_URL": ws.database_url})
    assert err.value.exit_code is ExitCode.USAGE
    [issue] = err.value.issues
    assert (issue.file, issue.path) == (str(ws.runbook), "stages[2].verify[0].kind")
    assert issue.line == COMMANDS_RUNBOOK.splitlines().index("        kind: command") + 1
    assert issue.message.startswith('unknown check kind "nope"; expected one of: command,')
    with pytest.raises(SpecError, match="no such file; create it with `migrate init`"):
        validate(ws.root / "missing.yaml", {})


def test_schema_lists_every_check_kind() -> None:
    r = schema()
    assert (r.exit_code, r.to_json()) == (ExitCode.OK, r.schema)
    assert r.schema["$schema"].startswith("https://json-schema.org/")
    check = r.schema["$defs"]["Check"]
    assert {"command", "sql", "http", "pgboss"} <= set(check["properties"]["kind"]["enum"])
    per_kind = {c["if"]["properties"]["kind"]["const"]: c["then"]["properties"] for c in check["allOf"]}
    assert {"run", "exit_code", "expect"} <= set(per_kind["command"])
    assert {"query", "expect"} <= set(per_kind["sql"])


def test_a_missing_variable_is_a_spec_error_before_any_connection(ws: Workspace) -> None:
    with pytest.raises(SpecError, match="environment variable DATABASE_URL is not set") as err:
        Session.open(ws.runbook, env={})
    assert err.value.exit_code is ExitCode.USAGE and err.value.issues[0].line == 5


def test_an_unreachable_state_database_exits_5_and_allows_only_a_blind_rollback(ws: Workspace) -> None:
    down = Workspace(ws.root, UNREACHABLE)
    with pytest.raises(UnreachableError, match="could not connect to the state database") as err:
        status(down.open())
    assert err.value.exit_code is ExitCode.UNREACHABLE
    assert err.value.hint is not None and "DATABASE_URL" in err.value.hint
    with pytest.raises(UnreachableError, match="refusing the rollback") as refused:
        rollback(down.open(), reason="db down")  # the stage may be past an irreversible one
    assert refused.value.hint is not None and "--force --reason" in refused.value.hint
    r = rollback(down.open(), force=True, reason="db down")
    assert (r.to_stage, r.journaled, r.forced, r.exit_code) == ("legacy", True, True, ExitCode.ROLLED_BACK)
    assert ws.flags()["PGBOSS_FOR_NEW_EVALS"] == "false"  # the flags were written all the same
    down.sessions.pop().close()
    assert [e["operation"] for e in history(ws.open()).events][-1] == "rollback"  # the journal synced


def test_an_unreachable_flags_file_stops_advance_before_any_flip(ws: Workspace) -> None:
    ws.edit("path: app.env", "path: nofolder/app.env")
    with pytest.raises(UnreachableError, match="the folder of the flags file") as err:
        advance(ws.open(), yes=True)
    assert err.value.exit_code is ExitCode.UNREACHABLE
    assert err.value.hint == "fix settings.flags.path (relative paths are relative to the runbook file)"
    assert "advance" not in [e["operation"] for e in history(ws.open()).events]
