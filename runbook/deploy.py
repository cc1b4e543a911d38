"""Kubernetes manifests for `migrate init --deploy kubernetes`: watchers, gate, metrics, secrets by reference.

`render_deploy("kubernetes", runbook_file, runbook_text, variables, options)` returns the files (path: text)
under `deploy/kubernetes/`: a Deployment of watcher replicas (`migrate watch --wait --metrics-port ...`;
PostgreSQL leases pick the replica that watches, so no Kubernetes leader election), a CronJob running
`migrate gate --rollback-on-failure`, a Service for the metrics port with prometheus.io annotations, an
optional ServiceMonitor, a copy of the runbook and a kustomization.yaml generating its ConfigMap.

`DATABASE_URL` and every other secret come from a Kubernetes Secret through `secretKeyRef`, never inline:
the variables named with `--secret` and those the runbook reads whose names look secret (runbook.secrets).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from runbook.dist import default_requirement, install_requirement
from runbook.errors import ConfigError, RunbookError, UsageError
from runbook.genconfig import check_cron, check_one_line, check_variable, options_from, yaml_quote
from runbook.rendering import template_env
from runbook.secrets import looks_secret, url_secrets

TARGETS = ("kubernetes",)
FOLDER = "deploy/kubernetes"
BASE_IMAGE = "python:3.11-slim"
"""The image of the default install: `pip install <requirement>` in an init container (no image to build)."""
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label (namespaces)
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # RFC 1035 label (the Service name starts with it)
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")  # a ConfigMap or Secret key
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/:]*(@sha256:[0-9a-f]{64})?$")
NAME_MAX = 47
"""The CronJob `<name>-gate` must stay within 52 characters (its Jobs add a suffix)."""


@dataclass(frozen=True)
class DeployOptions:
    """What the generated manifests may be tuned with (all have working defaults)."""

    name: str = "runbook"
    """Prefix of every object: <name>-watch, <name>-gate, <name>-metrics, <name>-runbook."""
    namespace: str | None = None
    """Written into every object and the kustomization (default: the namespace kubectl applies to)."""
    image: str | None = None
    """An image you built with runbook-pgboss installed (`migrate` on its PATH); default: BASE_IMAGE with
    the requirement pip-installed by an init container."""
    install: str = field(default_factory=default_requirement)
    replicas: int = 2
    metrics_port: int = 9464
    gate_cron: str = "*/15 * * * *"
    """When the gate runs (5 fields, UTC)."""
    secret_name: str | None = None
    """The Kubernetes Secret holding DATABASE_URL and the other secrets (default <name>-secrets)."""
    database_key: str = "DATABASE_URL"
    """The key of that Secret holding the application database URL (exported as DATABASE_URL)."""
    secrets: tuple[str, ...] = ()
    """Other variables read from the Secret (a key of the same name), beyond those found in the runbook."""
    env: tuple[str, ...] = ()
    """Plain NAME=VALUE variables (not secrets) for the runbook's `${NAME}`."""
    service_monitor: bool = False
    """List servicemonitor.yaml in the kustomization (needs the Prometheus Operator's CRD)."""


@dataclass(frozen=True)
class Manifests:
    """The files to write, and the Secret they read (for the next steps: `kubectl create secret ...`)."""

    files: dict[str, str]
    namespace: str | None
    secret_name: str
    secret_keys: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    """What works but likely not as meant: a dotenv flag backend (one file per pod), variables the manifests
    set that the runbook does not read."""


def _refuse(message: str, hint: str) -> None:
    raise ConfigError(message, hint=hint)


def _check(o: DeployOptions) -> DeployOptions:
    check_one_line(o, "deploy")
    if not (_DNS_1035.match(o.name) and len(o.name) <= NAME_MAX):
        _refuse(
            f"--name {o.name!r} is not a valid Kubernetes name",
            f"use at most {NAME_MAX} lowercase letters, digits and '-', starting with a letter (RFC 1035)",
        )
    if o.namespace is not None and not (_DNS_LABEL.match(o.namespace) and len(o.namespace) <= 63):
        _refuse(
            f"--namespace {o.namespace!r} is not a valid namespace",
            "use at most 63 lowercase letters, digits and '-', starting and ending alphanumeric (RFC 1123)",
        )
    secret_name = o.secret_name or f"{o.name}-secrets"
    if not (_SUBDOMAIN.match(secret_name) and len(secret_name) <= 253):
        _refuse(
            f"--secret-name {secret_name!r} is not a valid Secret name",
            "use lowercase letters, digits, '-' and '.' (RFC 1123 subdomain), e.g. runbook-secrets",
        )
    if not _KEY.match(o.database_key):
        _refuse(
            f"--database-key {o.database_key!r} is not a valid Secret key", "use letters, digits, -, _ and ."
        )
    for name in o.secrets:
        check_variable(name, "--secret")
    if not isinstance(o.replicas, int) or not 1 <= o.replicas <= 100:
        _refuse(f"--replicas {o.replicas!r} is out of range", "use 1 to 100 (2: one watches, one stands by)")
    if not isinstance(o.metrics_port, int) or not 1024 <= o.metrics_port <= 65535:
        _refuse(
            f"--metrics-port {o.metrics_port!r} is out of range",
            "use 1024 to 65535 (the container runs as non-root: lower ports need privileges); default 9464",
        )
    if o.image is not None and not _IMAGE.match(o.image):
        _refuse(
            f"--image {o.image!r} is not an image reference", "e.g. registry.example.com/ops/runbook:0.1.0"
        )
    return replace(o, secret_name=secret_name, gate_cron=check_cron(o.gate_cron, "--gate-cron"))


def _install(o: DeployOptions) -> str | None:
    """What the init container pip-installs into BASE_IMAGE (None: the user's --image has it)."""
    requirement = install_requirement(o.install)
    if o.image is not None:
        if requirement != default_requirement():
            raise UsageError(
                "--install-from installs migrate into the default image; an --image you built has it already",
                hint="drop --install-from, or drop --image",
            )
        return None
    if requirement.endswith(".whl") or " @ " in requirement:
        raise UsageError(
            f"--install-from {o.install!r} cannot be installed in {BASE_IMAGE} (no wheel file, no git there)",
            hint=f"build an image with `pip install '{requirement}'` and pass --image, "
            "or pin runbook-pgboss==X.Y.Z",
        )
    return requirement


def _plain_env(o: DeployOptions, secret_keys: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in o.env:
        name, eq, value = item.partition("=")
        if not eq:
            _refuse(f"--env {item!r} is not NAME=VALUE", "e.g. --env APP_URL=http://app.default.svc:3000")
        check_variable(name, "--env name")
        if name in secret_keys or looks_secret(name) or url_secrets(value):
            _refuse(
                f"--env {name} looks like a secret: values in manifests are not secret",
                f"use --secret {name}",
            )
        out[name] = value
    return out


def render_deploy(
    target: str,
    runbook_file: str,
    runbook_text: str,
    variables: frozenset[str] = frozenset(),
    options: DeployOptions | Mapping[str, Any] | None = None,
) -> Manifests:
    """The manifests of `target` for the runbook `runbook_file` (its name), whose text is `runbook_text` and
    which reads the environment `variables`."""
    if target not in TARGETS:
        raise ConfigError(f"unknown deploy target {target!r}", hint=f"use --deploy {' or '.join(TARGETS)}")
    o = _check(options_from(DeployOptions, options, "deploy"))
    if not _KEY.match(runbook_file):
        _refuse(
            f"runbook file name {runbook_file!r} cannot be a ConfigMap key",
            "rename it (letters, digits, -_.)",
        )
    secrets = sorted((set(o.secrets) | {v for v in variables if looks_secret(v)}) - {"DATABASE_URL"})
    plain = _plain_env(o, {"DATABASE_URL", *secrets})
    env = template_env(autoescape=False)
    env.filters["q"] = yaml_quote
    context = {
        "o": o,
        "install": _install(o),
        "base_image": BASE_IMAGE,
        "runbook_file": runbook_file,
        "secrets": [(s, s in o.secrets) for s in secrets],
        "plain": plain,
        "unset": sorted(variables - {"DATABASE_URL", *secrets, *plain}),
        "ns": o.namespace,
        "folder": FOLDER,
    }
    names = ["deployment", "cronjob", "service", "servicemonitor", "kustomization"]
    files = {
        f"{FOLDER}/{n}.yaml": env.get_template(f"deploy/kubernetes/{n}.yaml.j2").render(context)
        for n in names
    }
    files[f"{FOLDER}/{runbook_file}"] = runbook_text
    assert o.secret_name is not None  # set by _check
    warnings = _warnings(runbook_file, runbook_text, variables, secrets, plain)
    return Manifests(files, o.namespace, o.secret_name, (o.database_key, *secrets), warnings)


def _warnings(
    runbook_file: str,
    runbook_text: str,
    variables: frozenset[str],
    secrets: list[str],
    plain: Mapping[str, str],
) -> tuple[str, ...]:
    """The flag backend the pods would use, read with the variables the manifests give them (a dotenv file
    lives in each pod's emptyDir: a flip in one pod is seen by no other), and the variables the manifests set
    that the runbook does not read (`${...}`), e.g. a misspelt `--env` or a runbook reading another URL."""
    from runbook.model import DotenvFlags
    from runbook.spec import load_runbook_text

    out: list[str] = []
    pod_env = {"DATABASE_URL": "postgresql://localhost/app", **plain}
    try:
        backend = load_runbook_text(runbook_text, runbook_file, env=pod_env).settings.flags
    except RunbookError:  # a variable only the Secret holds is required: the backend cannot be told here
        backend = None
    if isinstance(backend, DotenvFlags):
        out.append(
            f"the flag backend is dotenv ({backend.path}): each pod gets its own file, so a flag flipped in "
            "one pod is not seen by the others (nor by the app); use the postgres backend "
            "(settings.flags.type: postgres, a flags table every pod and the app share)"
        )
    unread = [name for name in ("DATABASE_URL", *secrets, *plain) if name not in variables]
    if unread:
        out.append(
            f"the manifests set {', '.join(unread)}, which the runbook does not read (no ${{...}} names "
            f"{'it' if len(unread) == 1 else 'them'}): check the names, or drop them"
        )
    return tuple(out)
