"""Kubernetes manifests (`migrate init --deploy kubernetes`): every one valid against the Kubernetes schemas
(kubernetes-validate, offline, strict), secrets only by reference, the runbook mounted from its ConfigMap,
the ServiceMonitor against a vendored minimal schema of the Prometheus Operator's CRD."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kubernetes  # type: ignore[import-untyped]

from runbook.commands.init import default_runbook_text
from runbook.deploy import FOLDER, Manifests, render_deploy
from runbook.errors import RunbookError

K8S_VERSIONS = ("1.29.0", "1.37.0")
"""The oldest Kubernetes written for (CronJob timeZone: GA in 1.27) and the newest the validator ships."""
SERVICE_MONITOR_SCHEMA = json.loads(
    (Path(__file__).parents[1] / "data" / "servicemonitor.schema.json").read_text(encoding="utf-8")
)
SHIPPED_VARIABLES = frozenset(
    {"DATABASE_URL", "RUNBOOK_STATE_URL", "APP_URL", "PGBOSS_SCHEMA", "SOAK_INCREMENT_1"}
)
NON_DEFAULT: dict[str, Any] = {
    "name": "billing-migration",
    "namespace": "ops",
    "replicas": 3,
    "metrics_port": 9100,
    "gate_cron": "0 */2 * * MON-FRI",
    "secret_name": "billing.db",
    "database_key": "billing-db-url",
    "secrets": ["RUNBOOK_STATE_URL"],
    "env": ["APP_URL=http://billing.ops.svc:3000", "PGBOSS_SCHEMA=jobs"],
    "service_monitor": True,
    "install": "runbook-pgboss==0.2.0",
}


def render(options: dict[str, Any] | None = None, variables: frozenset[str] = SHIPPED_VARIABLES) -> Manifests:
    return render_deploy("kubernetes", "stages.yaml", default_runbook_text(), variables, options)


def docs(manifests: Manifests) -> dict[str, Any]:
    """The YAML documents by file name (the runbook copy kept as text)."""
    return {
        Path(path).name: text if path.endswith("stages.yaml") else yaml.safe_load(text)
        for path, text in manifests.files.items()
    }


def generated_configmap(kustomization: dict[str, Any], files: dict[str, Any]) -> dict[str, Any]:
    """The ConfigMap kustomize's configMapGenerator builds from the kustomization (less its hash suffix)."""
    (gen,) = kustomization["configMapGenerator"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": gen["name"], "labels": kustomization["generatorOptions"]["labels"]},
        "data": {name: files[name] for name in gen["files"]},
    }


def assert_valid(manifests: Manifests) -> dict[str, Any]:
    d = docs(manifests)
    assert set(d) == {
        "deployment.yaml",
        "cronjob.yaml",
        "service.yaml",
        "servicemonitor.yaml",
        "kustomization.yaml",
        "stages.yaml",
    }
    assert all(path.startswith(f"{FOLDER}/") for path in manifests.files)
    kustomization = d["kustomization.yaml"]
    resources = [d[name] for name in kustomization["resources"]]
    assert {"deployment.yaml", "cronjob.yaml", "service.yaml"} <= set(kustomization["resources"])
    for doc in [*resources, generated_configmap(kustomization, d)]:
        for version in K8S_VERSIONS:
            if doc["kind"] != "ServiceMonitor":  # a CRD: checked against its schema below
                kubernetes.validate(doc, version, strict=True)  # raises on the first error
    jsonschema.validate(d["servicemonitor.yaml"], SERVICE_MONITOR_SCHEMA)
    return d


@pytest.mark.parametrize(
    "options",
    [None, NON_DEFAULT, {"image": "registry.example.com/ops/runbook:0.1.0@sha256:" + "a" * 64}],
    ids=["defaults", "non-default", "own-image"],
)
def test_every_manifest_validates(options: dict[str, Any] | None) -> None:
    d = assert_valid(render(options))
    assert d["stages.yaml"] == default_runbook_text()
    assert yaml.safe_load(d["stages.yaml"])["name"]  # the copy is the runbook the ConfigMap is built from


def test_the_validators_are_strict() -> None:
    d = docs(render())
    typo = json.loads(json.dumps(d["deployment.yaml"]))
    typo["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes.ValidationError, match="'livenesProbe' was unexpected"):
        kubernetes.validate(typo, K8S_VERSIONS[-1], strict=True)
    wrong = json.loads(json.dumps(d["cronjob.yaml"]))
    wrong["spec"]["concurrencyPolicy"] = 3
    with pytest.raises(kubernetes.ValidationError, match="3 is not of type 'string'"):
        kubernetes.validate(wrong, K8S_VERSIONS[0], strict=True)
    monitor = d["servicemonitor.yaml"]
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    del monitor["spec"]["selector"]
    with pytest.raises(jsonschema.ValidationError, match="'selector' is a required property"):
        jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)


def test_the_watchers() -> None:
    d = docs(render())
    dep = d["deployment.yaml"]
    pod = dep["spec"]["template"]["spec"]
    (watch,) = pod["containers"]
    assert dep["metadata"]["name"] == "runbook-watch" and "namespace" not in dep["metadata"]
    assert dep["spec"]["replicas"] == 2 and dep["spec"]["strategy"] == {"type": "Recreate"}
    assert watch["command"] == [
        "migrate",
        "watch",
        "-f",
        "/etc/runbook/stages.yaml",
        "--wait",
        "--metrics-port",
        "9464",
        "--metrics-address",
        "0.0.0.0",
    ]
    assert watch["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    assert watch["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert watch["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert watch["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    # no Kubernetes leader election: no API access at all, the leases live in PostgreSQL
    assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
    text = render().files[f"{FOLDER}/deployment.yaml"]
    assert "No Kubernetes leader election" in text and "69.3 MB" in text  # the footprint cited
    assert watch["resources"] == {
        "requests": {"cpu": "50m", "memory": "96Mi"},
        "limits": {"cpu": "1", "memory": "256Mi"},
    }
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65532
    for container in [*pod["initContainers"], watch]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["tmp"] and "emptyDir" in volumes["work"]
    assert volumes["runbook"]["configMap"] == {"name": "runbook-runbook"}
    assert d["kustomization.yaml"]["configMapGenerator"][0]["name"] == "runbook-runbook"
    mounts = {m["name"]: m for m in watch["volumeMounts"]}
    assert mounts["runbook"] == {
        "name": "runbook",
        "mountPath": "/etc/runbook/stages.yaml",
        "subPath": "stages.yaml",
        "readOnly": True,
    }
    assert mounts["work"]["mountPath"] == "/etc/runbook"  # the local journal beside the runbook is writable
    (install,) = pod["initContainers"]
    assert install["image"] == watch["image"] == "python:3.11-slim"
    assert install["command"][:4] == ["python", "-m", "pip", "install"]
    assert install["command"][-3:] == ["--target", "/opt/runbook", "runbook-pgboss==0.1.0"]
    env = {e["name"]: e for e in watch["env"]}
    assert (
        env["PATH"]["value"].startswith("/opt/runbook/bin:") and env["PYTHONPATH"]["value"] == "/opt/runbook"
    )


def test_the_gate() -> None:
    cron = docs(render({"gate_cron": "5 * * * *"}))["cronjob.yaml"]
    assert cron["spec"]["schedule"] == "5 * * * *" and cron["spec"]["timeZone"] == "Etc/UTC"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (gate,) = pod["containers"]
    assert gate["command"] == ["migrate", "gate", "-f", "/etc/runbook/stages.yaml", "--rollback-on-failure"]
    assert "livenessProbe" not in gate and "ports" not in gate


def test_secrets_only_by_reference() -> None:
    variables = frozenset({"DATABASE_URL", "APP_URL", "APP_TOKEN", "SLACK_WEBHOOK_SECRET", "SOAK"})
    m = render(
        {"secrets": ["RUNBOOK_STATE_URL"], "env": ["APP_URL=http://app:3000"], "database_key": "db"},
        variables,
    )
    d = docs(m)
    for pod in (
        d["deployment.yaml"]["spec"]["template"]["spec"],
        d["cronjob.yaml"]["spec"]["jobTemplate"]["spec"]["template"]["spec"],
    ):
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        refs = {name: e["valueFrom"]["secretKeyRef"] for name, e in env.items() if "valueFrom" in e}
        assert refs == {
            "DATABASE_URL": {"name": "runbook-secrets", "key": "db"},
            "APP_TOKEN": {"name": "runbook-secrets", "key": "APP_TOKEN", "optional": True},
            "RUNBOOK_STATE_URL": {"name": "runbook-secrets", "key": "RUNBOOK_STATE_URL"},
            "SLACK_WEBHOOK_SECRET": {
                "name": "runbook-secrets",
                "key": "SLACK_WEBHOOK_SECRET",
                "optional": True,
            },
        }
        assert env["APP_URL"] == {"name": "APP_URL", "value": "http://app:3000"}
        assert "SOAK" not in env
    assert (m.secret_name, m.secret_keys) == (
        "runbook-secrets",
        ("db", "APP_TOKEN", "RUNBOOK_STATE_URL", "SLACK_WEBHOOK_SECRET"),
    )
    text = m.files[f"{FOLDER}/deployment.yaml"]
    assert "The runbook also reads SOAK" in text and "postgresql://" not in text
    assert (
        "create secret generic runbook-secrets --from-literal=db=" in m.files[f"{FOLDER}/kustomization.yaml"]
    )


def test_warnings_name_what_the_pods_would_not_use_as_meant() -> None:
    """The shipped runbook (postgres flags) with the variables it reads: no warning. Its flag backend read
    with the manifests' --env (dotenv: one file per pod), and variables set but never read, are named."""
    assert render({"env": ["APP_URL=http://app:3000"]}).warnings == ()
    variables = SHIPPED_VARIABLES | {"RUNBOOK_FLAG_BACKEND"}
    m = render({"env": ["RUNBOOK_FLAG_BACKEND=dotenv", "APP_URL=http://app:3000"]}, variables)
    (dotenv,) = m.warnings
    assert dotenv.startswith("the flag backend is dotenv (.env.flags): each pod gets its own file")
    assert "use the postgres backend" in dotenv
    m = render({"secrets": ["SLACK_TOKEN"], "env": ["APP_URL=http://app:3000"]}, frozenset({"SOAK"}))
    assert m.warnings == (
        "the manifests set DATABASE_URL, SLACK_TOKEN, APP_URL, which the runbook does not read (no ${...} "
        "names them): check the names, or drop them",
    )


def test_metrics_service_and_monitor() -> None:
    d = docs(render({"metrics_port": 9100, "namespace": "ops"}))
    svc, monitor, dep = d["service.yaml"], d["servicemonitor.yaml"], d["deployment.yaml"]
    assert svc["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9100",
        "prometheus.io/path": "/metrics",
    }
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": 9100, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]
    assert {doc["metadata"]["namespace"] for doc in (svc, monitor, dep)} == {"ops"}
    assert d["kustomization.yaml"]["namespace"] == "ops"
    assert "servicemonitor.yaml" not in d["kustomization.yaml"]["resources"]  # the CRD may be missing
    assert "servicemonitor.yaml" in docs(render({"service_monitor": True}))["kustomization.yaml"]["resources"]


def test_an_image_you_built_needs_no_install_step() -> None:
    pod = docs(render({"image": "ghcr.io/acme/runbook:1"}))["deployment.yaml"]["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    (watch,) = pod["containers"]
    assert watch["image"] == "ghcr.io/acme/runbook:1"
    assert not {"PATH", "PYTHONPATH"} & {e["name"] for e in watch["env"]}
    assert "install" not in {v["name"] for v in pod["volumes"]}


@pytest.mark.parametrize(
    ("options", "message", "hint"),
    [
        ({"metrics_port": 80}, "--metrics-port 80 is out of range", "1024 to 65535"),
        ({"metrics_port": 70000}, "--metrics-port 70000 is out of range", "default 9464"),
        ({"replicas": 0}, "--replicas 0 is out of range", "1 to 100"),
        ({"gate_cron": "*/15 * * *"}, "is not a 5-field cron", 'e.g. "*/15 * * * *"'),
        ({"gate_cron": "0 25 * * *"}, "hour '25' is not a value from 0 to 23", "minute hour"),
        ({"name": "Billing_DB"}, "--name 'Billing_DB' is not a valid Kubernetes name", "RFC 1035"),
        ({"name": "a" * 48}, "is not a valid Kubernetes name", "at most 47"),
        ({"name": "9lives"}, "is not a valid Kubernetes name", "starting with a letter"),
        ({"namespace": "-ops"}, "--namespace '-ops' is not a valid namespace", "RFC 1123"),
        ({"namespace": "a" * 64}, "is not a valid namespace", "at most 63"),
        ({"secret_name": "DB Secret"}, "--secret-name 'DB Secret' is not a valid Secret name", "subdomain"),
        ({"database_key": "db url"}, "--database-key 'db url' is not a valid Secret key", "letters"),
        ({"secrets": ["APP-TOKEN"]}, "--secret 'APP-TOKEN' is not valid", "letters, digits and _"),
        ({"env": ["APP_URL"]}, "--env 'APP_URL' is not NAME=VALUE", "--env APP_URL="),
        ({"env": ["DB_PASSWORD=hunter2"]}, "--env DB_PASSWORD looks like a secret", "--secret DB_PASSWORD"),
        ({"env": ["OTHER_DB=postgresql://u:pw@db/app"]}, "--env OTHER_DB looks like a secret", "--secret"),
        ({"image": "my image"}, "--image 'my image' is not an image reference", "registry.example.com"),
        ({"image": "acme/runbook:1", "install": "runbook-pgboss==0.2.0"}, "an --image you built", "drop"),
        (
            {"install": "dist/runbook_pgboss-0.1.0-py3-none-any.whl"},
            "cannot be installed in python:3.11-slim",
            "pass --image",
        ),
        ({"install": "git+https://github.com/acme/ops@" + "a" * 40}, "no wheel file, no git", "--image"),
        ({"install": "runbook-pgboss>=0.1"}, "is not a source runbook can pin", "runbook-pgboss==X.Y.Z"),
        ({"replica": 2}, "unknown deploy option: replica", "known: "),
        ({"gate_cron": "0 * * * *\nrm -rf /"}, "deploy option gate_cron must be one line", "line break"),
    ],
)
def test_bad_options_name_the_fix(options: dict[str, Any], message: str, hint: str) -> None:
    with pytest.raises(RunbookError) as e:
        render(options)
    assert message in e.value.message, e.value.message
    assert e.value.hint and hint in e.value.hint, e.value.hint
    assert e.value.exit_code == 2


def test_unknown_target() -> None:
    with pytest.raises(RunbookError, match="unknown deploy target 'nomad'") as e:
        render_deploy("nomad", "stages.yaml", "", frozenset())
    assert e.value.hint == "use --deploy kubernetes" and e.value.exit_code == 2
