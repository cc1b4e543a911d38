"""Write CI pipelines that run the migration: a scheduled gate and a manual advance/rollback job.

`render_ci("github" | "gitlab", runbook_path, options)` returns `{relative path: file text}`:

- GitHub: `.github/workflows/runbook.yml` with `on: schedule` (the gate, every 15 minutes by default:
  `migrate gate --junit ... --summary ... --rollback-on-failure`) and `on: workflow_dispatch` (inputs
  `action` = plan | advance | rollback, `reason`, `confirm`, `to_stage`, `force`).
- GitLab: `.gitlab-ci.yml` with the gate on scheduled pipelines (create the schedule in the UI with the
  cron shown at the top of the file) and the operate job on pipelines run by hand with `RUNBOOK_*` variables.

`DATABASE_URL` (and any other secret named in `options.secrets`) comes from the CI's secret store, never
inline. User inputs reach the shell only through environment variables (no expression injection).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from runbook.dist import default_requirement, install_requirement
from runbook.errors import ConfigError
from runbook.genconfig import check_cron, check_one_line, check_variable, yaml_quote
from runbook.genconfig import options_from as _options_from
from runbook.rendering import template_env

KINDS = ("github", "gitlab")
OUTPUTS = {"github": ".github/workflows/runbook.yml", "gitlab": ".gitlab-ci.yml"}


@dataclass(frozen=True)
class CiOptions:
    """What a generated pipeline may be tuned with (all have working defaults)."""

    cron: str = "*/15 * * * *"
    """When the gate runs (5 fields, UTC)."""
    install: str = field(default_factory=default_requirement)
    """What pip installs: runbook-pgboss==X.Y.Z (default: this version), a wheel of it, or a VCS URL at a
    commit (runbook.dist.install_requirement refuses anything else)."""
    python: str = "3.11"
    database_secret: str = "DATABASE_URL"
    """Name of the CI secret holding the application database URL (exported as DATABASE_URL)."""
    secrets: tuple[str, ...] = ()
    """Other secrets the runbook reads through `${VAR}` (app tokens, webhook URLs), exported by name."""
    variables: tuple[str, ...] = ("APP_URL",)
    """Plain (not secret) settings the runbook reads through `${VAR}`, exported by name: APP_URL, the app the
    shipped runbook's http checks call (unset, they call http://localhost:3000, which a CI runner is not)."""
    rollback_on_failure: bool = True
    environment: str | None = None
    """A deployment environment for the manual job (GitHub required reviewers, GitLab protection)."""
    runner: str = "ubuntu-latest"
    image: str = "python:3.11-slim"
    """GitLab job image."""
    junit: str = "runbook-junit.xml"
    summary: str = "runbook-summary.md"
    timeout_minutes: int = 30
    name: str = "runbook"
    """Pipeline name; also the concurrency group, so runs of one runbook never overlap."""


def options_from(value: CiOptions | Mapping[str, Any] | None) -> CiOptions:
    """Build `CiOptions` from a mapping (unknown keys are errors naming the known ones)."""
    return _options_from(CiOptions, value, "CI")


def _check(opts: CiOptions) -> CiOptions:
    check_one_line(opts, "CI")
    cron = check_cron(opts.cron, "CI")
    for name in opts.variables:
        check_variable(name, "CI variable name")
    for name in (opts.database_secret, *opts.secrets):
        check_variable(name, "CI secret name")
        if name.upper().startswith("GITHUB_"):
            raise ConfigError(f"CI secret name {name!r} is reserved by GitHub", hint="rename the secret")
    return replace(opts, cron=cron, install=install_requirement(opts.install))


def render_ci(
    kind: Literal["github", "gitlab"] | str,
    runbook_path: str,
    options: CiOptions | Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Render the pipeline of `kind` for the runbook at `runbook_path` (relative to the repository)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown CI kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}")
    opts = _check(options_from(options))
    env = template_env(autoescape=False)
    env.filters["q"] = yaml_quote
    env.filters["sh"] = shlex.quote
    env.globals["gh"] = lambda expr: "${{ " + expr + " }}"
    slug = re.sub(r"[^a-z0-9]+", "-", opts.name.lower()).strip("-") or "runbook"
    text = env.get_template(f"ci/{'github.yml' if kind == 'github' else 'gitlab-ci.yml'}.j2").render(
        o=opts,
        runbook_path=runbook_path,
        slug=slug,
        rollback_flag=" --rollback-on-failure" if opts.rollback_on_failure else "",
        secrets=[s for s in opts.secrets if s != "DATABASE_URL"],
        variables=[v for v in opts.variables if v not in opts.secrets and v != "DATABASE_URL"],
    )
    return {OUTPUTS[kind]: text}
