"""JSON requests to the Kubernetes API through the official client.

The client does configuration, authentication, TLS and proxies; this module
sends raw JSON and hands back (HTTP status, parsed body), so that callers see
the apiserver's answers as the protocol defines them: 404 NotFound, 409
AlreadyExists on a second create of a name, 409 Conflict on a stale
resourceVersion. Nothing here retries; callers decide what a status means.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class KubeConfigError(ValueError):
    """No usable Kubernetes client configuration."""


class APIStatusError(Exception):
    def __init__(self, status: int, verb: str, path: str, detail: str = "") -> None:
        super().__init__(f"{verb} {path}: HTTP {status} {detail}".strip())
        self.status = status
        self.verb = verb


def api_client(kubeconfig: str | None) -> k8s.ApiClient:
    """In-cluster configuration, or a kubeconfig file (default: ~/.kube/config).

    urllib3's own retries are off: every caller has its own timeout and backoff,
    and urllib3 would log a warning line per retry."""
    configuration = k8s.Configuration()
    configuration.retries = False
    if kubeconfig is None:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return k8s.ApiClient(configuration)
        except k8s_config.ConfigException:
            pass
    try:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    except (
        k8s_config.ConfigException,
        OSError,
        ValueError,
        TypeError,
        AttributeError,
        yaml.YAMLError,
    ) as err:
        where = kubeconfig or "the in-cluster service account or ~/.kube/config"
        raise KubeConfigError(
            f"cannot load a Kubernetes configuration from {where}: {err}"
        ) from None
    return k8s.ApiClient(configuration)


def own_namespace(
    kubeconfig: str | None,
    environ: dict[str, str] | None = None,
    service_account_file: Path = SERVICE_ACCOUNT_NAMESPACE,
) -> str:
    """The namespace the webhook keeps its own objects in when none is given:
    POD_NAMESPACE, else the pod's service-account namespace, else the
    kubeconfig context's namespace, else `default`."""
    env = os.environ if environ is None else environ
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    try:
        from_file = service_account_file.read_text().strip()
    except OSError:
        from_file = ""
    if from_file:
        return from_file
    try:
        _, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        namespace = (active or {}).get("context", {}).get("namespace")
    except (k8s_config.ConfigException, OSError, ValueError, TypeError, yaml.YAMLError):
        namespace = None
    return str(namespace) if namespace else "default"


class KubeAPI:
    """Raw JSON requests through the official client (its auth, TLS and proxy settings)."""

    def __init__(self, api: k8s.ApiClient) -> None:
        self.api = api

    def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        timeout: tuple[float, float],
        body: object = None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        method, url, headers, body, post = self.api.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return self.api.call_api(method, url, headers, body, post, _request_timeout=timeout)

    def request_json(
        self,
        method: str,
        path: str,
        body: object = None,
        query: Sequence[tuple[str, str]] = (),
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> tuple[int, Any]:
        """(status, parsed body) of one request; a body that is not JSON reads as None."""
        response = self._send(method, path, query, timeout, body)
        return response.status, json_or_none(response.read())

    def get_json(
        self,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> tuple[int, Any]:
        return self.request_json("GET", path, query=query, timeout=timeout)

    def stream(
        self, path: str, query: Sequence[tuple[str, str]], timeout: tuple[float, float]
    ) -> Any:
        """The raw urllib3 response of a watch, not yet read."""
        return self._send("GET", path, query, timeout).response


def json_or_none(data: bytes) -> Any:
    if not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def status_message(status: object) -> str:
    """The message of a Status object (or its reason), for logs and errors."""
    if isinstance(status, dict):
        return str(status.get("message") or status.get("reason") or "")
    return ""


def status_reason(status: object) -> str:
    return str(status.get("reason") or "") if isinstance(status, dict) else ""


def list_objects(api: KubeAPI, path: str, page: int = 500) -> list[dict[str, Any]]:
    """Every object of a collection, page by page (limit and continue); raises
    APIStatusError on any answer but 200."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        query = [("limit", str(page))] + ([("continue", token)] if token else [])
        status, body = api.get_json(path, query=query)
        if status != 200 or not isinstance(body, dict):
            raise APIStatusError(status, "GET", path, status_message(body))
        items += [item for item in body.get("items") or [] if isinstance(item, dict)]
        token = str((body.get("metadata") or {}).get("continue") or "")
        if not token:
            return items
