"""`migrate init --deploy kubernetes` through the CLI: the manifests it writes validate against the Kubernetes
schemas, carry the operator's runbook, and bad options exit 2 naming the fix with nothing written."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from kubernetes_validate import utils as kubernetes  # type: ignore[import-untyped]

from tests import debian
from tests.cli.conftest import RUNBOOK, Outcome
from tests.conftest import REPO
from tests.unit.test_deploy import K8S_VERSIONS, SERVICE_MONITOR_SCHEMA, generated_configmap

Migrate = Callable[..., Outcome]
DEPLOY = Path("deploy/kubernetes")


@pytest.fixture
def empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RUNBOOK_FILE", raising=False)
    return tmp_path


def written(root: Path) -> dict[str, object]:
    """Every file of the deploy folder, validated: Kubernetes objects strictly against both versions, the
    ServiceMonitor against its CRD's schema, the ConfigMap the kustomization generates."""
    import jsonschema

    folder = root / DEPLOY
    docs: dict[str, object] = {
        p.name: p.read_text() if p.name == "stages.yaml" else yaml.safe_load(p.read_text())
        for p in folder.iterdir()
    }
    kustomization = docs["kustomization.yaml"]
    assert isinstance(kustomization, dict)
    objects = [docs[name] for name in ("deployment.yaml", "cronjob.yaml", "service.yaml")]
    for doc in [*objects, generated_configmap(kustomization, docs)]:
        for version in K8S_VERSIONS:
            kubernetes.validate(doc, version, strict=True)
    jsonschema.validate(docs["servicemonitor.yaml"], SERVICE_MONITOR_SCHEMA)
    return docs


def test_init_deploy_kubernetes_with_defaults(empty: Path, migrate: Migrate) -> None:
    r = migrate("init", "--deploy", "kubernetes")
    assert r.code == 0, r.text
    assert "wrote deploy/kubernetes/deployment.yaml" in r.out
    assert (
        "create the Secret runbook-secrets (keys DATABASE_URL), then\n  kubectl apply -k deploy/kubernetes"
        in r.out
    )
    docs = written(empty)
    assert docs["stages.yaml"] == (REPO / "stages.yaml").read_text()  # the ConfigMap holds the runbook
    v = migrate("validate", str(DEPLOY / "stages.yaml"))
    assert v.code == 0, v.text
    again = migrate("init", "--deploy", "kubernetes")
    assert "kept  deploy/kubernetes/deployment.yaml (exists; --force overwrites)" in again.out
    assert "warning" not in r.text  # the shipped runbook: postgres flags, reads DATABASE_URL


def test_init_deploy_warns_of_a_dotenv_backend_and_variables_the_runbook_does_not_read(
    empty: Path, migrate: Migrate
) -> None:
    """Found by a new-user trial: with the dotenv backend each pod has its own flags file (a flip in one pod
    is seen by no other), and a variable the runbook does not read is set in the manifests for nothing."""
    own = RUNBOOK.replace("    path: app.env\n", "")  # flags: ${FLAG_BACKEND:-dotenv}; reads DATABASE_URL
    (empty / "stages.yaml").write_text(own)
    r = migrate("init", "--deploy", "kubernetes", "--env", "APP_URL=http://app:3000", "--env", "SOAK=1m")
    assert r.code == 0, r.text
    assert (
        "warning: the flag backend is dotenv (.env.flags): each pod gets its own file, so a flag flipped "
        "in one pod is not seen by the others" in r.out
    )
    assert "use the postgres backend" in r.out
    assert "warning: the manifests set APP_URL, which the runbook does not read (no ${...} names it)" in r.out
    assert len(r.out.split("warning:")) == 3  # SOAK and DATABASE_URL are read by the runbook
    md = migrate("-o", "markdown", "init", "--deploy", "kubernetes")
    assert md.code == 0 and "> warning: the flag backend is dotenv" in md.out
    data = yaml.safe_load(migrate("-o", "json", "init", "--deploy", "kubernetes").out)
    assert [w.split(":")[0] for w in data["warnings"]] == ["the flag backend is dotenv (.env.flags)"]

    # the backend the pods get: the manifests' --env picks postgres, no warning about it
    p = migrate("init", "--deploy", "kubernetes", "--env", "FLAG_BACKEND=postgres")
    assert p.code == 0, p.text
    assert "warning" not in p.text
    assert "dotenv" in migrate("init", "--deploy", "kubernetes", "--env", "FLAG_BACKEND=dotenv").out

    # a runbook reading its database URL under another name: the injected DATABASE_URL is named
    (empty / "stages.yaml").write_text(
        own.replace("${DATABASE_URL}", "${APP_DB_URL:-postgresql:///app}").replace("${FLAG_BACKEND", "${F")
    )
    u = migrate("init", "--deploy", "kubernetes", "--secret", "RUNBOOK_STATE_URL", "--env", "F=postgres")
    assert u.code == 0, u.text
    assert (
        "warning: the manifests set DATABASE_URL, RUNBOOK_STATE_URL, which the runbook does not read "
        "(no ${...} names them)" in u.out
    )
    assert "dotenv" not in u.out


def test_init_deploy_with_options_and_the_operators_runbook(empty: Path, migrate: Migrate) -> None:
    app = "  app:\n    url: http://app:3000\n    headers:\n      Authorization: Bearer ${APP_TOKEN:-none}\n"
    own = RUNBOOK.replace("settings:\n", "settings:\n" + app, 1)
    (empty / "stages.yaml").write_text(own)
    r = migrate(
        "-o",
        "json",
        "init",
        "--deploy",
        "kubernetes",
        "--namespace",
        "billing",
        "--name",
        "billing",
        "--replicas",
        "3",
        "--metrics-port",
        "9100",
        "--gate-cron",
        "*/5 * * * *",
        "--secret-name",
        "billing-db",
        "--secret",
        "RUNBOOK_STATE_URL",
        "--env",
        "SOAK=10m",
        "--service-monitor",
        "--install-from",
        "runbook-pgboss==0.2.0",
    )
    assert r.code == 0, r.text
    data = yaml.safe_load(r.out)
    assert data["deploy"] == "deploy/kubernetes"
    assert data["secret"] == {
        "namespace": "billing",
        "name": "billing-db",
        "keys": ["DATABASE_URL", "APP_TOKEN", "RUNBOOK_STATE_URL"],
    }
    docs = written(empty)
    assert docs["stages.yaml"] == own  # the operator's runbook, not the shipped one
    assert (empty / "stages.yaml").read_text() == own
    dep = docs["deployment.yaml"]
    assert isinstance(dep, dict)
    pod = dep["spec"]["template"]["spec"]
    assert dep["metadata"] == {
        "name": "billing-watch",
        "namespace": "billing",
        "labels": dep["spec"]["template"]["metadata"]["labels"],
    }
    assert dep["spec"]["replicas"] == 3
    assert pod["containers"][0]["command"][-4:] == ["--metrics-port", "9100", "--metrics-address", "0.0.0.0"]
    assert pod["initContainers"][0]["command"][-1] == "runbook-pgboss==0.2.0"
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["SOAK"]["value"] == "10m"
    assert env["APP_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "billing-db",
        "key": "APP_TOKEN",
        "optional": True,
    }
    assert docs["cronjob.yaml"]["spec"]["schedule"] == "*/5 * * * *"  # type: ignore[index]
    assert "servicemonitor.yaml" in docs["kustomization.yaml"]["resources"]  # type: ignore[index]
    text = (empty / DEPLOY / "deployment.yaml").read_text()
    assert "The runbook also reads FLAG_BACKEND, MONITOR_VALUE" in text


def test_kubectl_kustomize_builds_valid_objects(empty: Path, migrate: Migrate) -> None:
    """What `kubectl apply -k` would send: the real kustomize (kubectl's) builds the folder; every object
    validates, the generated ConfigMap holds the runbook and both pods mount it by its hashed name."""
    import jsonschema

    # The machine's kubectl, else Debian's (kubernetes-client 1.20: its kustomize reads the file as well).
    (kubectl,) = debian.ensure("kubernetes-client", "kubectl")
    assert migrate("init", "--deploy", "kubernetes", "--namespace", "ops", "--service-monitor").code == 0
    done = subprocess.run(
        [kubectl, "kustomize", str(empty / DEPLOY)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    objects = {doc["kind"]: doc for doc in yaml.safe_load_all(done.stdout)}
    assert sorted(objects) == ["ConfigMap", "CronJob", "Deployment", "Service", "ServiceMonitor"]
    assert {doc["metadata"]["namespace"] for doc in objects.values()} == {"ops"}
    configmap = objects["ConfigMap"]
    assert configmap["metadata"]["name"].startswith(
        "runbook-runbook-"
    )  # the content hash: a new name per edit
    assert configmap["data"] == {"stages.yaml": (empty / "stages.yaml").read_text()}
    pods = [
        objects["Deployment"]["spec"]["template"]["spec"],
        objects["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"],
    ]
    for pod in pods:
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["runbook"]["configMap"]["name"] == configmap["metadata"]["name"]
    for kind, doc in objects.items():
        if kind == "ServiceMonitor":
            jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
            continue
        for version in K8S_VERSIONS:
            kubernetes.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (("--deploy", "nomad"), "unknown deploy target 'nomad'", "use --deploy kubernetes"),
        (
            ("--deploy", "kubernetes", "--metrics-port", "70000"),
            "--metrics-port 70000 is out of range",
            "1024",
        ),
        (
            ("--deploy", "kubernetes", "--metrics-port", "0"),
            "--metrics-port 0 is out of range",
            "default 9464",
        ),
        (("--deploy", "kubernetes", "--gate-cron", "every hour"), "is not a 5-field cron", "minute hour"),
        (("--deploy", "kubernetes", "--gate-cron", "60 * * * *"), "minute '60' is not a value", "*/15"),
        (("--deploy", "kubernetes", "--name", "Runbook"), "is not a valid Kubernetes name", "lowercase"),
        (("--deploy", "kubernetes", "--namespace", "ops_prod"), "is not a valid namespace", "RFC 1123"),
        (("--deploy", "kubernetes", "--secret-name", "-db"), "is not a valid Secret name", "subdomain"),
        (("--deploy", "kubernetes", "--env", "API_TOKEN=abc"), "looks like a secret", "--secret API_TOKEN"),
        (
            ("--namespace", "ops"),
            "--namespace is an option of the Kubernetes manifests",
            "--deploy kubernetes",
        ),
        (
            ("--secret", "APP_TOKEN"),
            "--secret is an option of the Kubernetes manifests",
            "--deploy kubernetes",
        ),
        (
            ("--deploy", "kubernetes", "--install-from", "dist/runbook_pgboss-0.1.0-py3-none-any.whl"),
            "cannot be installed in python:3.11-slim",
            "--image",
        ),
    ],
)
def test_bad_deploy_options_exit_2_and_write_nothing(
    empty: Path, migrate: Migrate, args: tuple[str, ...], message: str, hint: str
) -> None:
    r = migrate("init", "--dir", "out", *args)
    assert r.code == 2, r.text
    assert message in r.err and "hint:" in r.err and hint in r.err.split("hint:", 1)[1], r.err
    assert list(empty.iterdir()) == []  # not even the folder
