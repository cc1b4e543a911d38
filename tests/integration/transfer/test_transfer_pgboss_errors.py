"""Bad input to `migrate transfer pgboss`: a clear error, exit 2 (or 5 for an unreachable database), nothing
moved: source = target (also under two spellings of one URL), a target of an unsupported layout (pg-boss 10),
a missing source schema, a missing source queue, a target queue of another policy, an unreachable source (no
password shown)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runbook.exitcodes import ExitCode
from tests.integration.transfer.conftest import Boss, migrate, sql_rows, write_runbook


@pytest.fixture
def pair(bosses: dict[str, Boss], database: Callable[[str], str]) -> tuple[str, str]:
    """A pg-boss 10 source with 3 jobs in evals, and a pg-boss 12 target."""
    src, dst = database("10"), database("12")
    bosses["10"].run(src, "send", "evals", "3")
    return src, dst


def run(tmp_path: Path, dst: str, *args: str) -> tuple[int, str]:
    result = migrate(write_runbook(tmp_path), dst, "transfer", "pgboss", *args)
    return result.exit_code, result.output


def run_from(tmp_path: Path, src: str, dst: str, *extra: str) -> tuple[int, str]:
    """Transfer schema pgboss of `src` into schema pgboss of `dst`, with `extra` options."""
    return run(tmp_path, dst, "--from-schema", "pgboss", "--from-url", src, "--to-schema", "pgboss", *extra)


def nothing_moved(src: str, dst: str) -> None:
    assert sql_rows(src, "SELECT count(*), min(state::text) FROM pgboss.job WHERE name = 'evals'") == [
        (3, "created")
    ]
    assert sql_rows(dst, "SELECT count(*) FROM pgboss.job") == [(0,)]


def test_source_equal_to_target_is_refused(pair: tuple[str, str], tmp_path: Path) -> None:
    src, dst = pair
    code, out = run(tmp_path, src, "--from-schema", "pgboss", "--to-schema", "pgboss")
    assert code == ExitCode.USAGE
    assert 'the source and the target are the same pg-boss schema "pgboss"' in out
    nothing_moved(src, dst)


def respelled(url: str, option: str) -> str:
    """The same database under another URL: one more connection option."""
    return f"{url}{'&' if '?' in url else '?'}{option}"


@pytest.mark.parametrize("option", ["application_name=other-spelling", "connect_timeout=11"])
def test_source_equal_to_target_under_another_spelling_is_refused(
    bosses: dict[str, Boss], database: Callable[[str], str], tmp_path: Path, option: str
) -> None:
    """URLs that differ as text but reach one pg-boss 12 database: refused, not copied onto itself and
    deleted (it used to report 'already in pg-boss 3, removed from the source 3' and leave no job)."""
    url = database("12")
    sent = bosses["12"].run(url, "send", "evals", "3")
    code, out = run(
        tmp_path,
        url,
        "--from-schema",
        "pgboss",
        "--from-url",
        respelled(url, option),
        "--to-schema",
        "pgboss",
    )
    assert code == ExitCode.USAGE, out
    assert 'the source and the target are the same pg-boss schema "pgboss"' in out
    assert "reach the same database" in out
    left = sql_rows(url, "SELECT id::text, state::text FROM pgboss.job WHERE name = 'evals'")
    assert sorted(left) == sorted((i, "created") for i in sent)


def test_a_pgboss_10_target_is_refused(
    pair: tuple[str, str], tmp_path: Path, database: Callable[[str], str]
) -> None:
    src, dst = pair
    other10 = database("10")
    code, out = run_from(tmp_path, src, dst, "--to-url", other10)
    assert code == ExitCode.USAGE
    assert 'target pg-boss schema "pgboss" has the v10 layout' in out and "pg-boss 11 and 12" in out
    assert "new PgBoss({ schema: 'pgboss_v12' })" in out
    nothing_moved(src, dst)
    assert sql_rows(other10, "SELECT count(*) FROM pgboss.job") == [(0,)]


def test_a_missing_source_schema_is_refused(pair: tuple[str, str], tmp_path: Path) -> None:
    src, dst = pair
    code, out = run(tmp_path, dst, "--from-schema", "nope", "--from-url", src, "--to-schema", "pgboss")
    assert code == ExitCode.USAGE
    assert 'source: pg-boss schema "nope" not installed' in out
    # the fix is this command's option, not the checks' settings.pgboss.schema
    assert "--from-schema" in out and "settings.pgboss.schema" not in out
    nothing_moved(src, dst)


def test_a_missing_target_schema_names_the_options_that_fix_it(pair: tuple[str, str], tmp_path: Path) -> None:
    src, dst = pair
    code, out = run(tmp_path, dst, "--from-schema", "pgboss", "--from-url", src, "--to-schema", "boss12")
    assert code == ExitCode.USAGE
    assert 'target: pg-boss schema "boss12" not installed' in out
    assert "new PgBoss({ schema: 'boss12' })" in out and "--to-schema" in out
    assert "settings.pgboss.schema" not in out
    nothing_moved(src, dst)


def test_a_missing_source_queue_is_refused(pair: tuple[str, str], tmp_path: Path) -> None:
    src, dst = pair
    code, out = run_from(tmp_path, src, dst, "--queue", "nope")
    assert code == ExitCode.USAGE
    assert "no queue 'nope' in source schema \"pgboss\"" in out and "evals, imports, ref" in out
    nothing_moved(src, dst)


def test_a_target_queue_of_another_policy_is_refused(pair: tuple[str, str], tmp_path: Path) -> None:
    src, dst = pair
    sql_rows(dst, "UPDATE pgboss.queue SET policy = 'singleton' WHERE name = 'evals'")
    code, out = run_from(tmp_path, src, dst)
    assert code == ExitCode.USAGE
    assert 'queue "evals" has policy "standard" in the source and "singleton" in the target' in out
    nothing_moved(src, dst)


def test_an_unreachable_source_exits_5_without_the_password(pair: tuple[str, str], tmp_path: Path) -> None:
    src, dst = pair
    bad = "postgresql://someone:s3cret-pw@127.0.0.1:1/nowhere"
    code, out = run(tmp_path, dst, "--from-schema", "pgboss", "--from-url", bad, "--to-schema", "pgboss")
    assert code == ExitCode.UNREACHABLE
    assert "127.0.0.1:1/nowhere" in out and "s3cret-pw" not in out
    # the URL came from --from-url: the hint names it (it said: check settings.database.url)
    assert "that --from-url (default: settings.pgboss.url" in out
    nothing_moved(src, dst)


def test_an_unreachable_target_names_to_url(pair: tuple[str, str], tmp_path: Path) -> None:
    src, dst = pair
    bad = "postgresql://someone@127.0.0.1:1/nowhere"
    code, out = run_from(tmp_path, src, dst, "--to-url", bad)
    assert code == ExitCode.UNREACHABLE
    assert "could not connect to the target (--to-url) at 127.0.0.1:1/nowhere" in out
    assert "that --to-url (default: settings.pgboss.url" in out
    nothing_moved(src, dst)
