"""Self-managed certificates through the real client against the fake apiserver,
which answers AlreadyExists and Conflict as the real one does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakeapi import FakeAPIServer, fake_apiserver
from serving import ROOT

from webhook.cluster.api import KubeAPI, api_client
from webhook.tls import certs
from webhook.tls.sync import CertificateManager

NAMESPACE = "snapshot-webhook"
SECRET = ("", "secrets", NAMESPACE, "snapshot-webhook-tls")
VWC = "validatingwebhookconfigurations"
ADMISSION = "admissionregistration.k8s.io"

ENTRIES = 5  # three for CREATE and UPDATE, two for delete warnings


def shipped_configuration() -> dict[str, Any]:
    """The ValidatingWebhookConfiguration as the static-configuration overlay declares it."""
    path = ROOT / "deploy" / "overlays" / "static-configuration" / "webhook.yaml"
    return yaml.safe_load(path.read_text())  # type: ignore[no-any-return]


def bundles(fake: FakeAPIServer) -> list[str | None]:
    config = fake.stored_object(ADMISSION, VWC, "", "snapshot-webhook")
    assert config is not None
    return [hook["clientConfig"].get("caBundle") for hook in config["webhooks"]]


@pytest.fixture
def fake() -> Iterator[FakeAPIServer]:
    with fake_apiserver() as api:
        api.store(ADMISSION, VWC, shipped_configuration())
        yield api


def manager(fake: FakeAPIServer, tmp_path: Path, name: str = "kubeconfig") -> CertificateManager:
    return CertificateManager(
        KubeAPI(api_client(str(fake.kubeconfig(tmp_path / name)))),
        NAMESPACE,
        "snapshot-webhook-tls",
        certs.service_names("snapshot-webhook", NAMESPACE),
        ["snapshot-webhook"],
    )


@pytest.mark.parametrize("replicas", [2, 3])
def test_replicas_starting_together_make_one_secret_and_set_every_bundle(
    fake: FakeAPIServer, tmp_path: Path, replicas: int
) -> None:
    managers = [manager(fake, tmp_path, f"kubeconfig-{n}") for n in range(replicas)]
    barrier = threading.Barrier(replicas)
    pairs: list[Any] = [None] * replicas

    def start(n: int) -> None:
        barrier.wait(timeout=10)
        pairs[n] = managers[n].sync()

    threads = [threading.Thread(target=start, args=(n,)) for n in range(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    creates = [w for w in fake.writes if w[0] == "POST" and w[1].endswith("/secrets")]
    assert len(creates) == 1
    assert all(pair == pairs[0] for pair in pairs)
    stored = fake.stored_object(*SECRET)
    assert stored is not None and stored["type"] == "kubernetes.io/tls"
    assert bundles(fake) == [pairs[0].ca_bundle_b64] * ENTRIES


def test_a_right_bundle_is_never_rewritten_and_a_wiped_one_comes_back(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    one, two = manager(fake, tmp_path, "a"), manager(fake, tmp_path, "b")
    pair = one.sync()
    before = len(fake.writes)
    for _ in range(3):
        assert two.sync() == pair
        assert one.sync() == pair
    assert len(fake.writes) == before  # nothing rewritten by either replica
    fake.store(ADMISSION, VWC, shipped_configuration())  # a re-apply: no caBundle key
    assert bundles(fake) == [None] * ENTRIES
    two.sync()
    assert bundles(fake) == [pair.ca_bundle_b64] * ENTRIES
    assert len(fake.writes) == before + 1  # one write sets every entry


def test_a_conflicting_write_is_read_again_and_converges(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    """A replica whose view of the configuration went stale gets 409 Conflict and
    reads it again instead of overwriting the newer one."""
    one = manager(fake, tmp_path)
    pair = one.sync()
    config = shipped_configuration()
    config["webhooks"][0]["timeoutSeconds"] = 7  # someone else's edit
    fake.store(ADMISSION, VWC, config)
    real = one._request
    calls = {"n": 0}

    def stale_once(method: str, path: str, body: object = None) -> tuple[int, Any]:
        if method == "PUT" and path.endswith("/snapshot-webhook") and calls["n"] == 0:
            calls["n"] += 1
            assert isinstance(body, dict)
            body["metadata"]["resourceVersion"] = "1"  # as if read before the edit
        return real(method, path, body)

    one._request = stale_once  # type: ignore[method-assign]
    one.inject(pair.ca_bundle_b64)
    stored = fake.stored_object(ADMISSION, VWC, "", "snapshot-webhook")
    assert stored is not None
    assert stored["webhooks"][0]["timeoutSeconds"] == 7  # the other edit survived
    assert bundles(fake) == [pair.ca_bundle_b64] * ENTRIES
    assert calls["n"] == 1


def test_an_absent_configuration_is_waited_for(fake: FakeAPIServer, tmp_path: Path) -> None:
    one = manager(fake, tmp_path)
    one.configurations = ["not-installed-yet"]
    pair = one.sync()
    assert one.inject(pair.ca_bundle_b64) == 0
    config = shipped_configuration()
    config["metadata"]["name"] = "not-installed-yet"
    fake.store(ADMISSION, VWC, config)
    assert one.inject(pair.ca_bundle_b64) == 1
