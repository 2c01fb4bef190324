"""The server registers its own ValidatingWebhookConfiguration, and keeps it so.

Installing blocks nothing: the install ships no webhook configuration, so until
a replica is ready nothing is sent to a webhook that cannot answer (an image
that cannot be pulled, pods pending). Once a replica serves, with its state
listed and a CA the configuration will trust, and has been ready long enough
for its Service to route to it (`SETTLE_SECONDS`), it creates the configuration
it is given (`webhook.render.configuration` renders it) and keeps it equal to that every
`interval` seconds. Replicas never fight: a configuration that already says
what they would write is left alone, a create that loses is AlreadyExists and
an update that loses is Conflict, and the loser reads again.

Uninstalling leaves nothing behind: the configuration has an ownerReference to
the install's ClusterRole, so the garbage collector deletes it with the
install. A replica that finds the ClusterRole gone registers nothing (the
install is being removed), and a configuration a straggler wrote anyway has an
owner that does not exist, which the garbage collector deletes too.

A configuration of the same name that an older install declared is taken over
in place (its entries replaced, the ownerReference added), never duplicated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.cluster.api import APIStatusError, KubeAPI, status_message

log = logging.getLogger("snapshot_webhook.registration")

CONFIGURATIONS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
CLUSTER_ROLES = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
MAX_ATTEMPTS = 8


def covers(stored: object, wanted: object) -> bool:
    """True when `stored` says everything `wanted` says (fields the apiserver
    adds in later versions do not count as a difference)."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(
            key in stored and covers(stored[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(wanted)
            and all(covers(s, w) for s, w in zip(stored, wanted, strict=True))
        )
    return stored == wanted


# (caBundle, ownerReference) -> the whole ValidatingWebhookConfiguration
Render = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass
class Registrar:
    api: KubeAPI
    name: str  # the ValidatingWebhookConfiguration
    owner: str  # the ClusterRole whose deletion removes the configuration
    render: Render
    timeout: tuple[float, float] = (5.0, 10.0)
    _said: set[str] = field(default_factory=set)

    def _request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        return self.api.request_json(method, path, body, timeout=self.timeout)

    def _once(self, key: str, message: str, *args: object) -> None:
        if key not in self._said:
            self._said.add(key)
            log.warning(message, *args)

    def owner_reference(self) -> dict[str, Any] | None:
        path = f"{CLUSTER_ROLES}/{self.owner}"
        status, role = self._request("GET", path)
        if status == 404:
            return None
        if status != 200 or not isinstance(role, dict):
            raise APIStatusError(status, "get", path, status_message(role))
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "name": self.owner,
            "uid": (role.get("metadata") or {}).get("uid"),
        }

    def ensure(self, bundle: str) -> str:
        """Create or update the configuration; says what it did: created,
        updated, unchanged, or no-owner (nothing registered)."""
        owner = self.owner_reference()
        if owner is None:
            self._once(
                "owner",
                "not registering ValidatingWebhookConfiguration %s: its owner, ClusterRole %s, "
                "does not exist (the install is being removed, or --webhook-owner is wrong)",
                self.name,
                self.owner,
            )
            return "no-owner"
        self._said.discard("owner")
        wanted = self.render(bundle, owner)
        path = f"{CONFIGURATIONS}/{self.name}"
        for _ in range(MAX_ATTEMPTS):
            status, current = self._request("GET", path)
            if status == 404:
                status, answer = self._request("POST", CONFIGURATIONS, wanted)
                if status == 201:
                    log.info("ValidatingWebhookConfiguration %s registered", self.name)
                    return "created"
                if status != 409:  # AlreadyExists: another replica created it; read it
                    raise APIStatusError(status, "create", path, status_message(answer))
                continue
            if status != 200 or not isinstance(current, dict):
                raise APIStatusError(status, "get", path, status_message(current))
            replaced = _take_over(current, wanted, owner)
            if replaced is None:
                return "unchanged"
            status, answer = self._request("PUT", path, replaced)
            if status == 200:
                log.info("ValidatingWebhookConfiguration %s brought up to date", self.name)
                return "updated"
            if status != 409:  # Conflict: it changed since it was read; read it again
                raise APIStatusError(status, "update", path, status_message(answer))
        raise APIStatusError(409, "update", path, "still conflicting; will retry")


def _take_over(
    current: dict[str, Any], wanted: dict[str, Any], owner: dict[str, Any]
) -> dict[str, Any] | None:
    """`current` with the entries, owner and label the registration wants; None
    when it already has them. Everything else of its metadata is kept."""
    metadata = current.setdefault("metadata", {})
    owners = [o for o in metadata.get("ownerReferences") or [] if isinstance(o, dict)]
    labels = metadata.get("labels") or {}
    wanted_labels = wanted["metadata"].get("labels") or {}
    if (
        covers(current.get("webhooks"), wanted["webhooks"])
        and owner in owners
        and covers(labels, wanted_labels)
    ):
        return None
    others = [o for o in owners if (o.get("kind"), o.get("name")) != ("ClusterRole", owner["name"])]
    metadata["ownerReferences"] = [owner, *others]
    metadata["labels"] = {**labels, **wanted_labels}
    current["webhooks"] = wanted["webhooks"]
    return current


# How long a replica is ready before it first registers: the kubelet's
# readiness probe (every 2 s) and the EndpointSlice controller must see it
# ready too, or the apiserver would call a Service with no ready endpoint.
SETTLE_SECONDS = 5.0


async def maintain(
    registrar: Registrar,
    bundle: Callable[[], str],
    problems: Callable[[], Sequence[str]],
    interval: float,
    settle: float = SETTLE_SECONDS,
) -> None:
    """Register once this replica has been ready for `settle` seconds, then keep
    the configuration so every `interval` seconds. Never while draining or not
    ready: a replica that cannot answer does not invite the apiserver to call it."""
    loop = asyncio.get_running_loop()
    ready_since: float | None = None
    tried = False  # after the first try, every `interval` seconds
    while True:
        await asyncio.sleep(interval if tried else 0.5)
        if problems():  # not ready (or draining)
            ready_since = None
            continue
        if ready_since is None:
            ready_since = loop.time()
        if not tried and loop.time() - ready_since < settle:
            continue
        try:
            await asyncio.to_thread(registrar.ensure, bundle())
        except Exception as err:  # the next round tries again
            log.warning(
                "registering ValidatingWebhookConfiguration %s failed (%s); retrying in %.0fs",
                registrar.name,
                err,
                interval,
            )
        tried = True
