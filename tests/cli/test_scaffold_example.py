"""The example app (examples/pgboss-app) runs what `migrate scaffold` writes: its generated/pgboss10 and
generated/pgboss12 folders (Express, ESM JavaScript, from the shipped stages.yaml) must be exactly what the
templates produce today, so `make demo` and tests/e2e exercise what users get. When this fails, regenerate
both (examples/pgboss-app/README.md has the two commands: `migrate -f stages.yaml scaffold --framework express
--lang js --pgboss 12 --out examples/pgboss-app/generated/pgboss12`, and 10), then run tests/e2e."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Outcome
from tests.conftest import REPO

Migrate = Callable[..., Outcome]
GENERATED = REPO / "examples" / "pgboss-app" / "generated"


def scaffold_check(migrate: Migrate, major: str, out: Path) -> Outcome:
    return migrate("-f", str(REPO / "stages.yaml"), "scaffold", "--framework", "express", "--lang", "js",
                   "--pgboss", major, "--out", str(out), "--check")  # fmt: skip


@pytest.mark.parametrize("major", ["10", "12"])
def test_the_example_apps_generated_code_matches_the_templates(major: str, migrate: Migrate) -> None:
    r = scaffold_check(migrate, major, GENERATED / f"pgboss{major}")
    assert r.code == 0, f"examples/pgboss-app/generated/pgboss{major} drifted from templates/app:\n{r.text}"
    assert r.out.rstrip().endswith("up to date")


def test_an_edit_to_the_example_apps_copy_is_caught(migrate: Migrate, tmp_path: Path) -> None:
    copy = tmp_path / "pgboss12"
    shutil.copytree(GENERATED / "pgboss12", copy)
    flags = copy / "runbook" / "flags.js"
    flags.write_text(flags.read_text().replace("pollMs ?? 2000", "pollMs ?? 5000", 1))
    r = scaffold_check(migrate, "12", copy)
    assert r.code == 1
    assert "-    const pollMs = this.options.pollMs ?? 5000" in r.out
    assert "+    const pollMs = this.options.pollMs ?? 2000" in r.out
