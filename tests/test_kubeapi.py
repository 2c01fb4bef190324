"""The namespace the webhook keeps its objects in, and the apiserver version check."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fakeapi import fake_apiserver

from webhook.cluster.api import KubeAPI, api_client, own_namespace
from webhook.serving.server import check_server_version


def kubeconfig(tmp_path: Path, namespace: str | None) -> str:
    context: dict[str, str] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": context}],
            }
        )
    )
    return str(path)


def test_namespace_comes_from_the_pod_then_the_service_account_then_the_kubeconfig(
    tmp_path: Path,
) -> None:
    account = tmp_path / "namespace"
    account.write_text("from-account\n")
    config = kubeconfig(tmp_path, "from-context")
    missing = tmp_path / "absent"
    assert own_namespace(config, {"POD_NAMESPACE": "from-pod"}, account) == "from-pod"
    assert own_namespace(config, {}, account) == "from-account"
    assert own_namespace(config, {}, missing) == "from-context"
    assert own_namespace(kubeconfig(tmp_path, None), {}, missing) == "default"
    assert own_namespace(str(missing), {}, missing) == "default"


@pytest.mark.parametrize(
    ("version", "level", "needle"),
    [
        (("1", "28"), logging.ERROR, "needs v1.30 or newer"),
        (("1", "29+"), logging.ERROR, "needs v1.30 or newer"),
        (("1", "30"), logging.INFO, "Kubernetes v1.30"),
        (("1", "33"), logging.INFO, "Kubernetes v1.33"),
    ],
)
def test_an_older_apiserver_is_named_at_start(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    version: tuple[str, str],
    level: int,
    needle: str,
) -> None:
    with fake_apiserver() as fake:
        fake.server_version = version
        api = KubeAPI(api_client(str(fake.kubeconfig(tmp_path / "kubeconfig"))))
        with caplog.at_level(logging.INFO, logger="snapshot_webhook.server"):
            check_server_version(api)
    (record,) = [r for r in caplog.records if r.name == "snapshot_webhook.server"]
    assert record.levelno == level
    assert needle in record.getMessage()
