"""`migrate init`, `validate` and `schema` through the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import Outcome
from tests.conftest import REPO

Migrate = Callable[..., Outcome]


@pytest.fixture
def empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNBOOK_FILE", raising=False)
    return tmp_path


def test_init_writes_the_shipped_runbook_and_a_safe_flags_file(empty: Path, migrate: Migrate) -> None:
    r = migrate("init")
    assert r.code == 0, r.text
    assert r.out.splitlines()[:2] == ["wrote stages.yaml", "wrote .env.flags"]
    assert (empty / "stages.yaml").read_text() == (REPO / "stages.yaml").read_text()
    flags = [ln for ln in (empty / ".env.flags").read_text().splitlines() if not ln.startswith("#")]
    assert flags == ["PGBOSS_ENABLED=false", "PGBOSS_FOR_NEW_EVALS=false", "PGBOSS_FOR_ALL_JOBS=false"]
    again = migrate("init")
    assert again.code == 0
    assert "kept  stages.yaml (exists; --force overwrites)" in again.out
    v = migrate("validate")
    assert v.code == 0, v.text
    assert v.out.startswith("stages.yaml: valid (6 stages, 3 flags, ")


def test_init_force_keeps_the_live_flags_file(empty: Path, migrate: Migrate) -> None:
    """--force rewrites the runbook and adds a pipeline, but never the flags file: the dotenv backend keeps
    the flags there as they are now, and the safe values written over them flipped a live app back with no
    record (a new-user trial: `init --ci gitlab --force` at increment-1)."""
    assert migrate("init").code == 0
    flags = empty / ".env.flags"
    live = flags.read_text().replace("PGBOSS_ENABLED=false", "PGBOSS_ENABLED=true")
    flags.write_text(live)
    r = migrate("init", "--ci", "gitlab", "--force")
    assert r.code == 0, r.text
    assert flags.read_text() == live
    assert "wrote stages.yaml" in r.out and "wrote .gitlab-ci.yml" in r.out
    assert "kept  .env.flags (the flags as they are now, even with --force" in r.out
    flags.unlink()
    again = migrate("init", "--force")
    assert "wrote .env.flags" in again.out and "PGBOSS_ENABLED=false" in flags.read_text()


def test_init_with_a_github_pipeline(empty: Path, migrate: Migrate) -> None:
    r = migrate("init", "--ci", "github")
    assert r.code == 0, r.text
    wf = yaml.safe_load((empty / ".github/workflows/runbook.yml").read_text())
    jobs = wf["jobs"]
    assert any("migrate gate" in str(job) for job in jobs.values())
    on = wf.get("on", wf.get(True))
    assert "schedule" in on and "workflow_dispatch" in on
    assert "secrets.DATABASE_URL" in (empty / ".github/workflows/runbook.yml").read_text()


SHA = "89abcdef0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("args", "install"),
    [
        ((), "python -m pip install runbook-pgboss==0.1.0"),
        (
            ("--install-from", "wheels/runbook_pgboss-0.1.0-py3-none-any.whl"),
            "python -m pip install wheels/runbook_pgboss-0.1.0-py3-none-any.whl",
        ),
        (
            ("--install-from", f"git+https://github.com/acme/ops@{SHA}"),
            f"python -m pip install 'runbook-pgboss @ git+https://github.com/acme/ops@{SHA}'",
        ),
        (  # an ssh user is no secret: the CI's deploy key authenticates
            ("--install-from", f"git+ssh://git@github.com/acme/ops@{SHA}"),
            f"python -m pip install 'runbook-pgboss @ git+ssh://git@github.com/acme/ops@{SHA}'",
        ),
    ],
)
def test_init_pipelines_install_the_chosen_source(
    empty: Path, migrate: Migrate, args: tuple[str, ...], install: str
) -> None:
    assert migrate("init", "--ci", "github", *args).code == 0
    assert migrate("init", "--ci", "gitlab", *args).code == 0
    wf = yaml.safe_load((empty / ".github/workflows/runbook.yml").read_text())
    assert [job["steps"][2]["run"].strip() for job in wf["jobs"].values()] == [install, install]
    gl = yaml.safe_load((empty / ".gitlab-ci.yml").read_text())
    assert gl[".runbook"]["before_script"] == [install]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--ci", "github", "--install-from", "git+https://github.com/acme/ops@main"),
            "does not name a commit: a branch or tag can move under you",
        ),
        (("--ci", "gitlab", "--install-from", "runbook==0.1.0"), "is not a source runbook can pin"),
        (
            ("--install-from", "runbook-pgboss==0.1.0"),
            "--install-from is what a CI pipeline or the Kubernetes manifests install",
        ),
    ],
)
def test_init_refuses_an_install_source_it_cannot_pin(
    empty: Path, migrate: Migrate, args: tuple[str, ...], message: str
) -> None:
    r = migrate("init", *args)
    assert r.code == 2, r.text
    assert message in r.err
    assert not (empty / "stages.yaml").exists()  # refused before anything is written


@pytest.mark.parametrize(
    "url",
    [
        f"git+https://user:TokPw1@github.com/acme/ops@{SHA}",
        f"git+https://TokPw1@github.com/acme/ops@{SHA}",  # a token as the user name
        f"git+ssh://git:TokPw1@github.com/acme/ops@{SHA}",
        "git+https://user:TokPw1@github.com/acme/ops@main",  # refused for the secret before the branch
        f"runbook-pgboss @ git+https://user:TokPw1@github.com/acme/ops@{SHA}",
    ],
)
def test_init_refuses_credentials_in_the_install_url_and_never_shows_them(
    empty: Path, migrate: Migrate, url: str
) -> None:
    for ci in (("--ci", "github"), ("--ci", "gitlab"), ("--deploy", "kubernetes")):
        r = migrate("init", *ci, "--install-from", url)
        assert r.code == 2, r.text
        assert "carries credentials, which would be written into the committed pipeline" in r.err
        assert "TokPw1" not in r.text and "***@github.com/acme/ops@" in r.err
        assert sorted(p.name for p in empty.iterdir()) == []  # refused before anything is written


def test_validate_markdown_and_json(empty: Path, migrate: Migrate) -> None:
    assert migrate("init").code == 0
    md = migrate("-o", "markdown", "validate")
    assert md.code == 0 and "| 5 | `retired` Legacy system retired |" in md.out
    data = json.loads(migrate("-o", "json", "validate").out)
    assert [s["id"] for s in data["stages"]] == [
        "legacy",
        "increment-1",
        "increment-2",
        "increment-3",
        "increment-4",
        "retired",
    ]
    assert data["stages"][5]["irreversible"] is True


def test_schema_is_json_with_every_kind(empty: Path, migrate: Migrate) -> None:
    r = migrate("schema")
    assert r.code == 0
    schema = json.loads(r.out)
    assert schema["$schema"].endswith("2020-12/schema")
    text = json.dumps(schema)
    for kind in (
        "http",
        "sql",
        "command",
        "pgboss",
        "legacy",
        "memory",
        "uptime",
        "compare",
        "work",
        "prometheus",
    ):
        assert f'"{kind}"' in text, kind


def test_init_next_to_a_runbook_of_ones_own_writes_its_flags(
    tmp_path: Path, migrate: Migrate, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    mine = (
        "version: 1\nname: thumbs\nsettings:\n  database: {url: '${DATABASE_URL}'}\n"
        "  flags: {type: dotenv, path: .env.flags}\nflags:\n  THUMBS_ON_BOSS: false\n  MAIL_ON_BOSS: 'off'\n"
        "stages:\n  - id: legacy\n  - id: thumbs\n    set: {THUMBS_ON_BOSS: true}\n"
    )
    (tmp_path / "stages.yaml").write_text(mine)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    r = migrate("init")
    assert r.code == 0, r.text
    assert (tmp_path / "stages.yaml").read_text() == mine  # kept
    assert (tmp_path / ".env.flags").read_text().splitlines()[2:] == [
        "THUMBS_ON_BOSS=false",
        "MAIL_ON_BOSS=off",
    ]
    r = migrate("status")
    assert (r.code, "DRIFT" in r.out) == (0, False), r.text  # right after init: nothing differs
    (tmp_path / "stages.yaml").write_text("stages: [not, a, runbook\n")
    (tmp_path / ".env.flags").unlink()
    r = migrate("init")
    assert r.code == 2 and "stages.yaml" in r.err, r.text  # its flags cannot be known: fix it first
    assert not (tmp_path / ".env.flags").exists()
