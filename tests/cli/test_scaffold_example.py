"""The example app (examples/pgboss-app) runs what `migrate scaffold` writes, and no copy of it is kept: the
launcher (runbook.demo.ExampleApp) renders it through the scaffold commands API into its work dir
(runbook.demo.generated). Here: that folder is exactly what `scaffold --check` expects of the shipped
runbook, for the major of the pg-boss the app loads; rendering again writes nothing; a stale or edited file
is replaced; the app's own PGBOSS_SCHEMA reaches the code. The app's refusals without it:
tests/e2e/test_app_generated.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from runbook.demo import ExampleApp
from runbook.demo.generated import ensure_generated
from tests.cli.conftest import Outcome
from tests.conftest import REPO

Migrate = Callable[..., Outcome]
FILES = ("express", "flags", "queue-manager", "runtime", "status")


def scaffold_check(migrate: Migrate, major: str, out: Path) -> Outcome:
    return migrate("-f", str(REPO / "stages.yaml"), "scaffold", "--framework", "express", "--lang", "js",
                   "--pgboss", major, "--out", str(out), "--check")  # fmt: skip


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every file: a rewrite, even of equal text, changes the inode (atomic replace)."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("major", ["10", "11", "12"])
def test_the_launchers_folder_is_what_scaffold_writes(major: str, migrate: Migrate, tmp_path: Path) -> None:
    out = ensure_generated(tmp_path / "generated", major)
    assert out == tmp_path / "generated" / f"pgboss{major}"
    assert sorted(p.name for p in (out / "runbook").iterdir()) == [f"{n}.js" for n in FILES]
    assert (out / "package.json").read_text() == '{"private": true, "type": "module"}\n'
    r = scaffold_check(migrate, major, out)
    assert r.code == 0, r.text
    assert r.out.rstrip().endswith("up to date")
    queue = (out / "runbook" / "queue-manager.js").read_text()
    assert f"export const PGBOSS_MAJOR = {major}\n" in queue
    assert ("import { PgBoss } from 'pg-boss'" in queue) is (major == "12")


def test_rendering_again_writes_nothing(tmp_path: Path) -> None:
    out = ensure_generated(tmp_path, "12")
    before = stamps(out)
    assert len(before) == len(FILES) + 1
    assert ensure_generated(tmp_path, "12") == out
    assert stamps(out) == before


def test_a_stale_or_edited_file_is_replaced(migrate: Migrate, tmp_path: Path) -> None:
    out = ensure_generated(tmp_path, "12")
    flags, status = out / "runbook" / "flags.js", out / "runbook" / "status.js"
    flags.write_text(flags.read_text().replace("'dotenv' ? 500 : 2000", "'dotenv' ? 500 : 5000", 1))  # edited
    v10 = ensure_generated(tmp_path / "v10", "10")
    status.write_text((v10 / "runbook" / "status.js").read_text())  # stale: another template's output
    (out / "package.json").write_text("{}\n")
    r = scaffold_check(migrate, "12", out)
    assert r.code == 1
    assert "-    const pollMs = this.options.pollMs ?? (this.source === 'dotenv' ? 500 : 5000)" in r.out
    ensure_generated(tmp_path, "12")
    r = scaffold_check(migrate, "12", out)
    assert r.code == 0, r.text
    assert "'dotenv' ? 500 : 2000" in flags.read_text()
    assert "archive" not in status.read_text()  # the v10 archive query is gone
    assert (out / "package.json").read_text() == '{"private": true, "type": "module"}\n'


def test_the_apps_pgboss_schema_reaches_the_code(migrate: Migrate, tmp_path: Path) -> None:
    out = ensure_generated(tmp_path, "10", {"PGBOSS_SCHEMA": "jobs_v10"})
    assert 'export const PGBOSS_SCHEMA = "jobs_v10"\n' in (out / "runbook" / "queue-manager.js").read_text()
    r = scaffold_check(migrate, "10", out)
    assert r.code == 1 and "jobs_v10" in r.out  # the default runbook names pgboss


@pytest.mark.parametrize(("line", "major"), [("10", "10"), ("11", "12"), ("12", "12")])
def test_example_app_gets_the_code_of_the_pgboss_it_loads(line: str, major: str, tmp_path: Path) -> None:
    """Toolchain line 11 is pg-boss 12.5.0 (the v11 layout): a 12.x package, so the 12 code (named export)."""
    app = ExampleApp("postgresql://unused", line, {"PGBOSS_SCHEMA": "pgboss"}, tmp_path / "run")
    env = app.environment()
    assert env["GENERATED_DIR"] == str(tmp_path / "run" / "generated" / f"pgboss{major}")
    queue = Path(env["GENERATED_DIR"], "runbook", "queue-manager.js").read_text()
    assert f"export const PGBOSS_MAJOR = {major}\n" in queue
    assert not (app.app_dir / "generated").exists()  # nothing beside the app (in a wheel: site-packages)


def test_the_app_keeps_no_copy_of_the_queue_manager() -> None:
    """The app's pg-boss use is the generated QueueManager's (lib/manager.mjs configures it): no code of the
    app's own (comments aside) imports pg-boss, creates a queue, starts workers, sends to pg-boss or routes by
    the flags."""
    app = REPO / "examples" / "pgboss-app"
    code = {
        p.relative_to(app).as_posix(): re.sub(r"(^|\s)//.*$", "", p.read_text(), flags=re.MULTILINE)
        for p in sorted(app.rglob("*.mjs"))
    }
    assert "new QueueManager({" in code["lib/manager.mjs"]
    patterns = ("PgBoss", "from 'pg-boss'", "createQueue", ".work(name", "boss.send(", "ENABLED'", "_FOR_")
    copies = {p: names for p in patterns if (names := [name for name, text in code.items() if p in text])}
    assert copies == {}, "use the generated QueueManager (lib/manager.mjs)"
