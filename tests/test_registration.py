"""`serve --register-webhook` against the fake apiserver: installing blocks
nothing, ready replicas register one trusted configuration, an upgrade takes
the declared one over, deleting the install's ClusterRole removes it, and
every mode calls only what its RBAC grants."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakeapi import FakeAPIServer, fake_apiserver
from figures import record_figure
from serving import ROOT, Server, running_server, wait_for
from test_certsync import ADMISSION, VWC
from test_deploy import container, render

from webhook.cli.main import build_parser, settings_from
from webhook.cluster.permissions import Grant, cluster_grants, namespace_grants
from webhook.cluster.registration import SETTLE_SECONDS
from webhook.render.configuration import configuration

RBAC = "rbac.authorization.k8s.io"
WATCH = ("--watch-read-timeout-seconds", "2", "--discovery-interval-seconds", "0.5")
SYNC = ("--certificate-sync-seconds", "0.5")
CLUSTER_ROLE = {
    "apiVersion": f"{RBAC}/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "snapshot-webhook"},
}

ENTRIES = 5  # three for CREATE and UPDATE, two for delete warnings


def registered(fake: FakeAPIServer) -> dict[str, Any] | None:
    return fake.stored_object(ADMISSION, VWC, "", "snapshot-webhook")


def secret_ca(fake: FakeAPIServer) -> bytes | None:
    """The managed CA, from the Secret the replicas share."""
    secrets = fake.stored_objects("", "secrets")
    return base64.b64decode(secrets[0]["data"]["ca.crt"]) if secrets else None


def trusted_bundle(fake: FakeAPIServer) -> bytes | None:
    config = registered(fake)
    value = config["webhooks"][0]["clientConfig"].get("caBundle") if config else None
    return base64.b64decode(value) if value else None


@pytest.fixture
def fake() -> Iterator[FakeAPIServer]:
    with fake_apiserver() as api:
        api.store(RBAC, "clusterroles", CLUSTER_ROLE)
        yield api


def replica(stack: ExitStack, fake: FakeAPIServer, tmp_path: Path, n: int, *args: str) -> Server:
    workdir = tmp_path / f"replica-{n}"
    workdir.mkdir()
    return stack.enter_context(
        running_server(
            workdir,
            "--kubeconfig",
            str(fake.kubeconfig(workdir / "kubeconfig")),
            *WATCH,
            *SYNC,
            "--manage-certificates",
            "--register-webhook",
            "--namespace",
            "snapshot-webhook",
            "--tls-san",
            "127.0.0.1",
            *args,
            ca_file=workdir / "ca.crt",
            fetch_ca=lambda: secret_ca(fake),
        )
    )


def test_nothing_is_registered_until_a_replica_is_ready(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    fake.lists_open.clear()  # the replica cannot list: it is not ready
    with ExitStack() as stack:
        server = replica(stack, fake, tmp_path, 0)
        with server.client() as http:
            wait_for(lambda: http.get("/readyz").status_code == 503, 10, "not ready")
            time.sleep(2.0)  # four sync rounds: nothing may invite the apiserver to call
            assert http.get("/readyz").status_code == 503
        assert registered(fake) is None
        opened = time.monotonic()
        fake.lists_open.set()
        wait_for(lambda: registered(fake) is not None, 30, "registered once ready")
        took = time.monotonic() - opened
    # not before the replica has been ready long enough for its Service to route to it
    assert SETTLE_SECONDS <= took < 30
    record_figure("registration after the first replica is ready", f"{took:.1f} s")


def test_replicas_register_one_trusted_configuration_and_then_leave_it(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        for n in range(2):
            replica(stack, fake, tmp_path, n)
        wait_for(lambda: registered(fake) is not None, 30, "registered")
        (secret,) = fake.stored_objects("", "secrets")
        bundle = secret["data"]["ca.crt"]
        owner = fake.stored_object(RBAC, "clusterroles", "", "snapshot-webhook")
        assert owner is not None
        wait_for(
            lambda: (
                [h["clientConfig"].get("caBundle") for h in registered(fake)["webhooks"]]
                == [bundle] * ENTRIES
            ),
            30,
            "every entry trusted",
        )
        config = registered(fake)
        assert len(fake.stored_objects(ADMISSION, VWC)) == 1
        assert config["metadata"]["ownerReferences"] == [
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "ClusterRole",
                "name": "snapshot-webhook",
                "uid": owner["metadata"]["uid"],
            }
        ]
        assert (
            config["webhooks"]
            == configuration("snapshot-webhook", "snapshot-webhook", ca_bundle=bundle)["webhooks"]
        )
        writes = [w for w in fake.writes if VWC in w[1]]
        time.sleep(2.0)  # four sync rounds of two replicas: nothing to rewrite
        assert [w for w in fake.writes if VWC in w[1]] == writes


def test_an_upgrade_takes_the_declared_configuration_over(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    old = yaml.safe_load(
        (ROOT / "tests" / "fixtures" / "webhook-configuration-0.1.0.yaml").read_text()
    )
    for hook in old["webhooks"]:
        hook["clientConfig"]["caBundle"] = base64.b64encode(b"an old CA").decode()
    uid = fake.store(ADMISSION, VWC, old)["metadata"]["uid"]
    with ExitStack() as stack:
        replica(stack, fake, tmp_path, 0)
        wait_for(lambda: "ownerReferences" in registered(fake)["metadata"], 30, "taken over")
        config = registered(fake)
    assert len(fake.stored_objects(ADMISSION, VWC)) == 1
    assert config["metadata"]["uid"] == uid  # the same object, not a second one
    assert all(
        "matchConditions" in hook
        for hook in config["webhooks"]
        if hook["rules"][0]["operations"] != ["DELETE"]
    )
    (secret,) = fake.stored_objects("", "secrets")
    assert {h["clientConfig"]["caBundle"] for h in config["webhooks"]} == {secret["data"]["ca.crt"]}


def test_deleting_the_install_removes_the_configuration_for_good(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        server = replica(stack, fake, tmp_path, 0)
        wait_for(lambda: registered(fake) is not None, 30, "registered")
        fake.delete_stored(RBAC, "clusterroles", "", "snapshot-webhook")  # kubectl delete -f
        assert registered(fake) is None  # the garbage collector took it
        time.sleep(2.0)  # four sync rounds: a replica still running registers nothing
        assert registered(fake) is None
        server.wait_for_log(lambda r: "does not exist" in str(r["message"]))


# --- every call inside the mode's RBAC -----------------------------------------------

MODES = {
    "deploy": "managed certificates, registered",
    "deploy/overlays/provided-certificate": "a provided certificate, registered",
    "deploy/overlays/static-configuration": "managed certificates, declared configuration",
}


def calls_allowed(calls: set[Grant], allowed: set[Grant]) -> set[Grant]:
    """The calls no grant covers (a grant with no names covers every name)."""
    return {
        call
        for call in calls
        if Grant(call.group, call.resource, call.verb) not in allowed
        and Grant(call.group, call.resource, call.verb, call.names) not in allowed
    }


@pytest.mark.parametrize("path", list(MODES), ids=list(MODES.values()))
def test_every_call_in_each_mode_is_granted(fake: FakeAPIServer, tmp_path: Path, path: str) -> None:
    import json

    from builders import review, snapshot_class
    from serving import JSON_HEADERS

    args = container(render(path))["args"]
    settings = settings_from(build_parser().parse_args(args))
    extra: list[str] = []
    if settings.ca_bundle_file is not None:  # a provided pair, with the CA beside it
        from webhook.tls import certs

        paths = certs.ensure(tmp_path / "provided", ["127.0.0.1", "localhost"])
        extra = [
            "--tls-cert-file",
            str(paths.cert),
            "--tls-private-key-file",
            str(paths.key),
            "--ca-bundle-file",
            str(paths.ca_cert),
        ]
    if not settings.register_webhook:
        fake.store(ADMISSION, VWC, yaml.safe_load((ROOT / path / "webhook.yaml").read_text()))
    flags = [
        a
        for a in args
        if a.split("=")[0] in ("--kube", "--manage-certificates", "--register-webhook")
    ]
    workdir = tmp_path / "replica"
    workdir.mkdir()
    with running_server(
        workdir,
        "--kubeconfig",
        str(fake.kubeconfig(workdir / "kubeconfig")),
        *WATCH,
        *SYNC,
        *flags,
        "--namespace",
        "snapshot-webhook",
        "--tls-san",
        "127.0.0.1",
        *extra,
        ca_file=workdir / "ca.crt",
        fetch_ca=lambda: trusted_bundle(fake),
    ) as server:
        wait_for(lambda: trusted_bundle(fake) is not None, 30, "trusted")
        with server.client() as http:  # an admission that claims a slot
            body = review(snapshot_class("gold", driver="x.csi.example.com", default="true"))
            assert http.post("/validate", content=json.dumps(body), headers=JSON_HEADERS).json()[
                "response"
            ]["allowed"]
        time.sleep(1.5)  # sync rounds, claim settling
    made = {Grant(c.group, c.resource, c.verb, (c.name,) if c.name else ()) for c in fake.calls}
    granted = cluster_grants(settings) | namespace_grants(settings)
    assert calls_allowed(made, granted) == set()
    # and the calls of the mode are made: what the roles grant is used
    used = {(c.group, c.resource, c.verb) for c in fake.calls}
    wanted = {("", "secrets", "get")} if settings.manage_certificates else set()
    if settings.register_webhook:
        wanted |= {(RBAC, "clusterroles", "get"), (ADMISSION, VWC, "create")}
    else:
        wanted |= {(ADMISSION, VWC, "update")}
    assert wanted <= used


def test_a_ca_bundle_that_did_not_sign_the_served_certificate_registers_nothing(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    """A configuration trusting the wrong CA would fail every call: better none."""
    from webhook.tls import certs

    served = certs.ensure(tmp_path / "served", ["127.0.0.1", "localhost"])
    other = certs.ensure(tmp_path / "other", ["127.0.0.1"])
    assert certs.issued_by_one_of(served.ca_cert.read_bytes(), served.cert.read_bytes())
    assert not certs.issued_by_one_of(other.ca_cert.read_bytes(), served.cert.read_bytes())
    assert not certs.issued_by_one_of(b"not a certificate", served.cert.read_bytes())
    workdir = tmp_path / "replica"
    workdir.mkdir()
    with running_server(
        workdir,
        "--kubeconfig",
        str(fake.kubeconfig(workdir / "kubeconfig")),
        *WATCH,
        *SYNC,
        "--register-webhook",
        "--namespace",
        "snapshot-webhook",
        "--tls-cert-file",
        str(served.cert),
        "--tls-private-key-file",
        str(served.key),
        "--ca-bundle-file",
        str(other.ca_cert),
        ca_file=served.ca_cert,
    ) as server:
        server.wait_for_log(
            lambda r: "holds no CA that signed the serving certificate" in str(r["message"]), 30
        )
        assert registered(fake) is None
