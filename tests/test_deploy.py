"""deploy/ renders with kustomize, and what it renders would work in a cluster."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from serving import ROOT

from webhook import certs
from webhook.app import ADMISSION_PATHS
from webhook.cli import build_parser, settings_from
from webhook.kinds import KINDS

KUBECTL = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")


def render(path: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render("deploy")


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def rules_of(doc: dict[str, Any], key: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for rule in doc[key]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                yield group, resource, rule


def test_base_renders_every_part(base: list[dict[str, Any]]) -> None:
    assert sorted(d["kind"] for d in base) == sorted(
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Service",
            "Deployment",
            "PodDisruptionBudget",
            "ValidatingWebhookConfiguration",
        ]
    )
    assert {
        d["metadata"].get("namespace")
        for d in base
        if d["kind"] in ("ServiceAccount", "Service", "Deployment", "PodDisruptionBudget")
    } == {"snapshot-webhook"}


def test_cluster_role_reads_exactly_what_the_rules_read(base: list[dict[str, Any]]) -> None:
    role = one(base, "ClusterRole")
    granted = {(g, r): set(rule["verbs"]) for g, r, rule in rules_of(role, "rules")}
    assert set(granted) == {(info.api_group, info.plural) for info in KINDS}
    assert all(verbs == {"get", "list", "watch"} for verbs in granted.values())


def test_webhook_covers_the_six_kinds_as_the_server_expects(base: list[dict[str, Any]]) -> None:
    config = one(base, "ValidatingWebhookConfiguration")
    service = one(base, "Service")
    covered = set()
    for hook in config["webhooks"]:
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
        assert hook["matchPolicy"] == "Equivalent"
        assert hook["failurePolicy"] == "Fail"
        assert 1 <= hook["timeoutSeconds"] <= 10
        ref = hook["clientConfig"]["service"]
        assert (ref["name"], ref["namespace"]) == (
            service["metadata"]["name"],
            service["metadata"]["namespace"],
        )
        assert ref["path"] in ADMISSION_PATHS
        assert ref["port"] == service["spec"]["ports"][0]["port"]
        for group, resource, rule in rules_of(hook, "rules"):
            claims = resource == "persistentvolumeclaims"
            assert rule["operations"] == (["CREATE"] if claims else ["CREATE", "UPDATE"])
            assert ("matchConditions" in hook) is claims
            covered.add((group, resource))
    assert covered == {(i.api_group, i.plural) for i in KINDS if i.reviewed}


def test_service_reaches_the_container_and_probes_hit_real_paths(
    base: list[dict[str, Any]],
) -> None:
    spec = container(base)
    (port,) = spec["ports"]
    target = one(base, "Service")["spec"]["ports"][0]["targetPort"]
    assert target in (port["name"], port["containerPort"])
    args = build_parser().parse_args(spec["args"])
    settings = settings_from(args)
    assert settings.port == port["containerPort"]
    assert settings.host == "0.0.0.0"
    assert settings.kube  # in a cluster the state follows the cluster, never embedded
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        http = spec[probe]["httpGet"]
        assert (http["path"], http["scheme"]) == (path, "HTTPS")
        assert http["port"] in (port["name"], port["containerPort"])
    mounts = {m["name"]: m["mountPath"] for m in spec["volumeMounts"]}
    assert str(settings.tls_cert_file).startswith(mounts["certs"])
    grace = one(base, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert settings.shutdown_delay_seconds + settings.shutdown_timeout_seconds < grace


def test_pod_is_locked_down_and_highly_available(base: list[dict[str, Any]]) -> None:
    deployment = one(base, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    spec = container(base)
    assert deployment["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"requests", "limits"} <= set(spec["resources"])
    assert pod["topologySpreadConstraints"]
    assert one(base, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_cert_manager_overlay_issues_the_service_names(base: list[dict[str, Any]]) -> None:
    docs = render("deploy/overlays/cert-manager")
    certificate = one(docs, "Certificate")
    assert certificate["spec"]["dnsNames"] == certs.service_names(
        "snapshot-webhook", "snapshot-webhook"
    )
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    secret = next(v["secret"]["secretName"] for v in volumes if "secret" in v)
    assert certificate["spec"]["secretName"] == secret
    annotations = one(docs, "ValidatingWebhookConfiguration")["metadata"]["annotations"]
    namespace = certificate["metadata"]["namespace"]
    name = certificate["metadata"]["name"]
    assert annotations["cert-manager.io/inject-ca-from"] == f"{namespace}/{name}"


def test_dockerfile_runs_the_console_script_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["snapshot-webhook"]' in text
    assert "USER 65532" in text
    assert "EXPOSE 8443" in text
    assert text.startswith("# ") and "FROM python:3.11-slim" in text


def claim(**spec: object) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "restored", "namespace": "shop"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "gp3",
            "resources": {"requests": {"storage": "100Gi"}},
            **spec,
        },
    }


SNAPSHOT = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "s"}
CLAIMS = [
    ("restore through dataSource", claim(dataSource=SNAPSHOT), True),
    ("restore through dataSourceRef", claim(dataSourceRef={**SNAPSHOT, "namespace": "x"}), True),
    (
        "both set, as the apiserver fills them",
        claim(dataSource=SNAPSHOT, dataSourceRef=SNAPSHOT),
        True,
    ),
    ("an empty claim", claim(), False),
    (
        "a clone of another claim",
        claim(dataSource={"kind": "PersistentVolumeClaim", "name": "postgres-data"}),
        False,
    ),
    (
        "a volume populator",
        claim(
            dataSourceRef={
                "apiGroup": "populator.example.com",
                "kind": "VolumeSnapshot",
                "name": "s",
            }
        ),
        False,
    ),
    (
        "a snapshot kind of another group",
        claim(dataSource={"apiGroup": "other.example.com", "kind": "VolumeSnapshot", "name": "s"}),
        False,
    ),
    (
        "dataSourceRef to a populator wins over a snapshot dataSource",
        claim(
            dataSource=SNAPSHOT,
            dataSourceRef={"apiGroup": "populator.example.com", "kind": "Sample", "name": "s"},
        ),
        False,
    ),
]


@pytest.mark.parametrize(("obj", "selected"), [c[1:] for c in CLAIMS], ids=[c[0] for c in CLAIMS])
def test_match_conditions_are_valid_cel_selecting_exactly_restores(
    base: list[dict[str, Any]], obj: dict[str, Any], selected: bool
) -> None:
    import celpy

    from webhook.objects import PersistentVolumeClaim
    from webhook.records import snapshot_source

    (hook,) = [
        h for h in one(base, "ValidatingWebhookConfiguration")["webhooks"] if "matchConditions" in h
    ]
    environment = celpy.Environment()
    for condition in hook["matchConditions"]:
        program = environment.program(environment.compile(condition["expression"]))
        result = program.evaluate({"object": celpy.json_to_cel(obj)})
        assert bool(result) is selected
    # The webhook itself agrees on what a restore is.
    assert (snapshot_source(PersistentVolumeClaim.model_validate(obj)) is not None) is selected
