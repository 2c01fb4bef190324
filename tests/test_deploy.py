"""deploy/ renders with kustomize, and what it renders would work in a cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from serving import ROOT

from webhook.cli.main import build_parser, settings_from
from webhook.model.kinds import KINDS, VOLUME, Role
from webhook.serving.app import ADMISSION_PATHS
from webhook.tls import certs

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
            *["ClusterRole"] * 4,  # reading, registration, reports, volume-mode change
            *["ClusterRoleBinding"] * 3,
            *["Role", "RoleBinding"] * 3,  # claims, reports' Lease, certificates
            "Service",
            "Deployment",
            "PodDisruptionBudget",
            "NetworkPolicy",
            # no ValidatingWebhookConfiguration: a ready replica registers it
            *["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] * 6,
        ]
    )
    policies = [d for d in base if d["kind"].startswith("ValidatingAdmissionPolicy")]
    assert all("namespace" not in d["metadata"] for d in policies)  # cluster-scoped
    assert {
        d["metadata"].get("namespace")
        for d in base
        if d["kind"]
        in ("ServiceAccount", "Service", "Deployment", "PodDisruptionBudget", "Role", "RoleBinding")
    } == {"snapshot-webhook"}


def grants(role: dict[str, Any]) -> set[tuple[str, str, str, tuple[str, ...]]]:
    """(group, resource, verb, resourceNames) for every permission a role grants."""
    return {
        (group, resource, verb, tuple(rule.get("resourceNames", ())))
        for group, resource, rule in rules_of(role, "rules")
        for verb in rule["verbs"]
    }


OVERLAYS = [
    "deploy",
    "deploy/overlays/cert-manager",
    "deploy/overlays/provided-certificate",
    "deploy/overlays/static-configuration",
    "deploy/overlays/critical",
]


def bound_grants(docs: list[dict[str, Any]], kind: str) -> set[tuple[str, str, str, tuple]]:
    """What the roles of `kind` bound to the webhook's ServiceAccount grant."""
    account = one(docs, "ServiceAccount")["metadata"]
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}
    found: set[tuple[str, str, str, tuple]] = set()
    for binding in (d for d in docs if d["kind"] == f"{kind}Binding"):
        (subject,) = binding["subjects"]
        assert (subject["name"], subject["namespace"]) == (account["name"], account["namespace"])
        assert binding["roleRef"]["kind"] == kind
        found |= grants(roles[binding["roleRef"]["name"]])
    return found


@pytest.mark.parametrize("path", OVERLAYS)
def test_every_overlay_grants_exactly_what_its_mode_uses(path: str) -> None:
    from webhook.cluster.permissions import cluster_grants, namespace_grants

    docs = render(path)
    settings = settings_from(build_parser().parse_args(container(docs)["args"]))
    assert bound_grants(docs, "ClusterRole") == cluster_grants(settings)
    assert bound_grants(docs, "Role") == namespace_grants(settings)
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    # for binding to backup tools: the one special verb, nothing else
    assert grants(roles["snapshot-webhook:volume-mode-change"]) == {
        ("snapshot.storage.k8s.io", "volumesnapshotcontents", "change-volume-mode", ())
    }
    if settings.register_webhook:  # the owner is a ClusterRole of the install
        assert settings.webhook_owner in roles
    secrets = {g for g in namespace_grants(settings) if g[1] == "secrets"}
    assert bool(secrets) is settings.manage_certificates


def test_the_overlays_that_write_no_secret_and_no_configuration_say_so() -> None:
    """cert-manager and a provided certificate: no Secret is written; the static
    configuration: the configuration is only given its caBundle, never made."""
    for path in ("deploy/overlays/cert-manager", "deploy/overlays/provided-certificate"):
        docs = render(path)
        assert not {g for g in bound_grants(docs, "Role") if g[1] == "secrets"}, path
        settings = settings_from(build_parser().parse_args(container(docs)["args"]))
        mounts = {m["name"]: m["mountPath"] for m in container(docs)["volumeMounts"]}
        assert str(settings.ca_bundle_file) == mounts["certs"] + "/ca.crt"
    static = render("deploy/overlays/static-configuration")
    verbs = {g[2] for g in bound_grants(static, "ClusterRole") if g[1].startswith("validating")}
    assert verbs == {"get", "update"}


def static_configuration() -> dict[str, Any]:
    return one(render("deploy/overlays/static-configuration"), "ValidatingWebhookConfiguration")


@pytest.fixture(scope="module")
def declared() -> dict[str, Any]:
    return static_configuration()


def test_the_declared_configuration_is_the_registered_one(declared: dict[str, Any]) -> None:
    from webhook.render.configuration import configuration

    assert declared == configuration("snapshot-webhook", "snapshot-webhook")
    result = cli_run("webhook-configuration")
    shipped = ROOT / "deploy" / "overlays" / "static-configuration" / "webhook.yaml"
    assert result == shipped.read_text(), "stale: run scripts/render-install"


def cli_run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "webhook", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    return result.stdout


def test_the_shipped_configuration_has_no_ca_bundle_to_wipe(declared: dict[str, Any]) -> None:
    """A re-apply must leave the caBundle the webhook wrote."""
    assert all("caBundle" not in hook["clientConfig"] for hook in declared["webhooks"])
    assert "ValidatingWebhookConfiguration" not in (ROOT / "deploy" / "install.yaml").read_text()


def test_a_labelled_namespace_opts_out_of_every_entry(declared: dict[str, Any]) -> None:
    for hook in declared["webhooks"]:
        assert hook["namespaceSelector"] == {
            "matchExpressions": [
                {"key": "snapshot-webhook.io/ignore", "operator": "NotIn", "values": ["true"]}
            ]
        }


def test_webhook_covers_the_six_kinds_as_the_server_expects(
    base: list[dict[str, Any]], declared: dict[str, Any]
) -> None:
    service = one(base, "Service")
    covered = set()
    deletes = set()
    for hook in declared["webhooks"]:
        assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
        assert hook["matchPolicy"] == "Equivalent"
        ref = hook["clientConfig"]["service"]
        assert (ref["name"], ref["namespace"]) == (
            service["metadata"]["name"],
            service["metadata"]["namespace"],
        )
        assert ref["path"] in ADMISSION_PATHS
        assert ref["port"] == service["spec"]["ports"][0]["port"]
        if hook["rules"][0]["operations"] == ["DELETE"]:
            # delete warnings: never block a delete, and every delete is sent
            assert hook["failurePolicy"] == "Ignore"
            assert hook["sideEffects"] == "None"
            assert 1 <= hook["timeoutSeconds"] <= 3
            assert "matchConditions" not in hook
            deletes |= {(g, r) for g, r, _ in rules_of(hook, "rules")}
            continue
        assert hook["sideEffects"] == "NoneOnDryRun"
        assert hook["failurePolicy"] == "Fail"
        assert 1 <= hook["timeoutSeconds"] <= 10
        assert len(hook["matchConditions"]) == 1  # every entry: cleanup is never sent
        for group, resource, rule in rules_of(hook, "rules"):
            claims = resource == "persistentvolumeclaims"
            assert rule["operations"] == (["CREATE"] if claims else ["CREATE", "UPDATE"])
            covered.add((group, resource))
    assert covered == {(i.api_group, i.plural) for i in KINDS if i.reviewed}
    # the kinds with a deletion rule: the classes, the contents, VolumeSnapshot
    assert deletes == {
        (i.api_group, i.plural)
        for i in KINDS
        if i.family is not None and (i.role is not Role.SNAPSHOT or i.family is VOLUME)
    }


def test_service_reaches_the_container_and_probes_hit_the_probe_port(
    base: list[dict[str, Any]],
) -> None:
    spec = container(base)
    ports = {p["name"]: p["containerPort"] for p in spec["ports"]}
    target = one(base, "Service")["spec"]["ports"][0]["targetPort"]
    assert target == "https"
    args = build_parser().parse_args(spec["args"])
    settings = settings_from(args)
    assert settings.port == ports["https"]
    assert settings.probe_port == ports["probes"]
    assert settings.host == "0.0.0.0"
    assert settings.kube  # in a cluster the state follows the cluster, never embedded
    assert settings.manage_certificates
    assert settings.service == one(base, "Service")["metadata"]["name"]
    (env,) = spec["env"]
    assert env == {
        "name": "POD_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    }
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        http = spec[probe]["httpGet"]
        # plain HTTP on the probe port: mutual TLS on the admission port never breaks it
        assert (http["path"], http["scheme"], http["port"]) == (path, "HTTP", "probes")
    policy = one(base, "NetworkPolicy")["spec"]
    assert policy["podSelector"] == one(base, "Deployment")["spec"]["selector"]
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == set(ports.values())
    grace = one(base, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert settings.drain_delay + settings.shutdown_timeout_seconds + 2.0 < grace


def test_pod_is_locked_down_and_highly_available(base: list[dict[str, Any]]) -> None:
    deployment = one(base, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    spec = container(base)
    assert deployment["spec"]["replicas"] == 3
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert spec["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"requests", "limits"} <= set(spec["resources"])
    assert pod["topologySpreadConstraints"]
    # a drain proceeds one pod at a time whatever the replica count
    assert one(base, "PodDisruptionBudget")["spec"] == {
        "maxUnavailable": 1,
        "unhealthyPodEvictionPolicy": "AlwaysAllow",  # a not-ready replica never holds a drain
        "selector": deployment["spec"]["selector"],
    }


# Fields the apiserver fills in when a manifest leaves them out (the API
# reference's defaults), by kind. A manifest that sets each one explicitly is
# stored as written, so a second `kubectl apply` reports `unchanged`.
APISERVER_DEFAULTS = {
    "ValidatingAdmissionPolicy": [
        ("spec", "failurePolicy"),
        ("spec", "matchConstraints", "matchPolicy"),
        ("spec", "matchConstraints", "namespaceSelector"),
        ("spec", "matchConstraints", "objectSelector"),
        ("spec", "matchConstraints", "resourceRules", "*", "scope"),
    ],
    "ValidatingWebhookConfiguration": [
        ("webhooks", "*", "failurePolicy"),
        ("webhooks", "*", "matchPolicy"),
        ("webhooks", "*", "namespaceSelector"),
        ("webhooks", "*", "objectSelector"),
        ("webhooks", "*", "timeoutSeconds"),
        ("webhooks", "*", "rules", "*", "scope"),
    ],
    "PodDisruptionBudget": [("spec", "unhealthyPodEvictionPolicy")],
    "Service": [("spec", "type"), ("spec", "ports", "*", "protocol")],
}


def values_at(doc: Any, path: tuple[str, ...]) -> list[Any]:
    """Every value at `path` ("*" steps into each list item); a missing step is MISSING."""
    if not path:
        return [doc]
    step, rest = path[0], path[1:]
    if step == "*":
        return [v for item in doc for v in values_at(item, rest)]
    if not isinstance(doc, dict) or step not in doc:
        return ["MISSING"]
    return values_at(doc[step], rest)


@pytest.mark.parametrize("path", OVERLAYS)
def test_every_field_the_apiserver_defaults_is_set(path: str) -> None:
    docs = render(path)
    seen = set()
    for doc in docs:
        for field in APISERVER_DEFAULTS.get(doc["kind"], []):
            values = values_at(doc, field)
            assert values and "MISSING" not in values, (doc["kind"], doc["metadata"]["name"], field)
            seen.add(doc["kind"])
    assert {"ValidatingAdmissionPolicy", "PodDisruptionBudget", "Service"} <= seen


def test_install_yaml_is_the_rendered_install(base: list[dict[str, Any]]) -> None:
    shipped = [d for d in yaml.safe_load_all((ROOT / "deploy" / "install.yaml").read_text()) if d]
    assert shipped == base, "deploy/install.yaml is stale: run scripts/render-install"


def test_the_image_is_set_in_one_place_for_the_install_and_every_overlay(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(ROOT / "deploy", copy)
    kustomization = copy / "base" / "kustomization.yaml"
    text = kustomization.read_text()
    assert "newName: snapshot-webhook\n" in text
    kustomization.write_text(
        text.replace("newName: snapshot-webhook\n", "newName: registry.example.com/sw\n")
    )
    for path in (
        "",
        "overlays/cert-manager",
        "overlays/provided-certificate",
        "overlays/critical",
        "overlays/static-configuration",
    ):
        docs = render(str(copy / path))
        assert container(docs)["image"] == "registry.example.com/sw:0.1.0", path


def test_the_critical_overlay_sets_the_priority_and_the_quota_that_admits_it() -> None:
    docs = render("deploy/overlays/critical")
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    quota = one(docs, "ResourceQuota")
    assert quota["metadata"]["namespace"] == one(docs, "Deployment")["metadata"]["namespace"]
    (scope,) = quota["spec"]["scopeSelector"]["matchExpressions"]
    assert scope["values"] == ["system-cluster-critical"]


def test_the_provided_certificate_overlay_serves_the_mounted_secret() -> None:
    docs = render("deploy/overlays/provided-certificate")
    spec = container(docs)
    settings = settings_from(build_parser().parse_args(spec["args"]))
    assert not settings.manage_certificates
    mounts = {m["name"]: m["mountPath"] for m in spec["volumeMounts"]}
    assert str(settings.tls_cert_file).startswith(mounts["certs"])
    assert str(settings.tls_private_key_file).startswith(mounts["certs"])


def test_cert_manager_overlay_issues_from_a_ca_not_a_self_signed_leaf() -> None:
    docs = render("deploy/overlays/cert-manager")
    by_name = {d["metadata"]["name"]: d for d in docs if d["kind"] in ("Certificate", "Issuer")}
    certificate = by_name["snapshot-webhook"]
    assert certificate["spec"]["dnsNames"] == certs.service_names(
        "snapshot-webhook", "snapshot-webhook"
    )
    # serving certificate <- CA Issuer <- root CA Certificate <- self-signed Issuer
    ca_issuer = by_name[certificate["spec"]["issuerRef"]["name"]]
    root = next(
        d
        for d in by_name.values()
        if d["kind"] == "Certificate"
        and d["spec"].get("secretName") == ca_issuer["spec"]["ca"]["secretName"]
    )
    assert root["spec"]["isCA"] is True
    assert "selfSigned" in by_name[root["spec"]["issuerRef"]["name"]]["spec"]
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    secret = next(v["secret"]["secretName"] for v in volumes if "secret" in v)
    assert certificate["spec"]["secretName"] == secret
    # a Certificate issued by a CA Issuer has ca.crt in its Secret: the CA registered
    settings = settings_from(build_parser().parse_args(container(docs)["args"]))
    assert settings.register_webhook and settings.ca_bundle_file is not None
    assert settings.ca_bundle_file.name == "ca.crt"
    assert "ValidatingWebhookConfiguration" not in {d["kind"] for d in docs}


def test_dockerfile_runs_the_console_script_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["snapshot-webhook"]' in text
    assert "USER 65532" in text
    assert "EXPOSE 8443 8081" in text
    assert text.startswith("# ") and "FROM python:3.11-slim" in text
    assert "--require-hashes" in text and "-r /tmp/requirements.lock" in text
    assert "org.opencontainers.image.version" in text
    copied = {
        word for line in text.splitlines() if line.startswith("COPY ") for word in line.split()
    }
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for name in ("pyproject.toml", "README.md", "LICENSE", "requirements.lock"):
        assert name in copied or f"/tmp/{name}" in copied
        assert f"!{name}" in ignored  # the build context holds what the Dockerfile copies


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    import re
    import tomllib

    lock = (ROOT / "requirements.lock").read_text()
    pinned = {
        m.group(1).lower().replace("_", "-")
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==\S+ \\$", lock, re.MULTILINE)
    }
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in declared:
        name = re.split(r"[\[<>=~ ]", requirement, maxsplit=1)[0].lower()
        assert name in pinned, f"{name} is not in requirements.lock: run scripts/lock"
    entries = lock.split("==")[1:]
    assert entries and all("--hash=sha256:" in entry for entry in entries)


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
    declared: dict[str, Any], obj: dict[str, Any], selected: bool
) -> None:
    import celpy

    from webhook.model.objects import PersistentVolumeClaim
    from webhook.model.reading import read
    from webhook.model.records import snapshot_source

    (hook,) = [
        h for h in declared["webhooks"] if h["rules"][0]["resources"] == ["persistentvolumeclaims"]
    ]
    environment = celpy.Environment()
    for condition in hook["matchConditions"]:
        program = environment.program(environment.compile(condition["expression"]))
        result = program.evaluate({"object": celpy.json_to_cel(obj)})
        assert bool(result) is selected
    # The webhook itself agrees on what a restore is.
    assert (snapshot_source(read(PersistentVolumeClaim, obj, "object")) is not None) is selected


def readme_patches(what: str) -> list[str]:
    """The README's `kubectl patch validatingwebhookconfiguration` lines that set `what`."""
    readme = (ROOT / "README.md").read_text()
    lines = [
        line
        for line in readme.splitlines()
        if line.startswith("kubectl patch validatingwebhookconfiguration") and what in line
    ]
    assert lines, f"the README has no patch of {what}"
    return lines


@pytest.mark.parametrize(
    ("what", "check"),
    [
        ("caBundle", lambda hook: bool(hook["clientConfig"].get("caBundle"))),
        ("failurePolicy", lambda hook: hook["failurePolicy"] == "Ignore"),
    ],
)
def test_readme_patches_cover_every_webhook_entry(
    declared: dict[str, Any], tmp_path: Path, what: str, check: Any
) -> None:
    """Run the README's commands as a shell would, against the rendered
    configuration with `kubectl patch --local`: no entry is left out."""
    config = tmp_path / "webhook.json"
    config.write_text(json.dumps(declared))
    (tmp_path / "ca-bundle.txt").write_text(certs.ca_bundle(certs.ensure(tmp_path, ["x"])))
    for line in readme_patches(what):
        script = (
            f'kubectl() {{ shift 3; "{KUBECTL}" patch --local -f "{config}" -o json "$@"; }}\n'
            + line
        )
        result = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        patched = json.loads(result.stdout)
        assert len(patched["webhooks"]) == len(declared["webhooks"]) == 5
        assert all(check(hook) for hook in patched["webhooks"])
