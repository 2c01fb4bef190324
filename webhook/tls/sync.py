"""Self-managed certificates: one Secret shared by every replica, and the CA
written into every webhook configuration the webhook is told about.

Each replica, at start and then every `interval` seconds:
1. reads the Secret; when `certplan.plan` says it needs a change (missing,
   expiring, a CA rotation step), creates it or replaces it with the
   resourceVersion it read. The apiserver makes exactly one writer win: a
   loser gets AlreadyExists or Conflict, reads the winner's Secret, and plans
   again (finding nothing to do). No timing is involved.
2. serves the Secret's pair (installed without a restart when it changed);
3. reads each ValidatingWebhookConfiguration and writes the bundle into every
   entry whose caBundle differs, with the resourceVersion it read. A bundle
   that is already right is never rewritten, so replicas do not fight; a
   bundle wiped by a re-apply or a hand edit is back within one interval.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.cluster.api import APIStatusError, KubeAPI, status_message, status_reason
from webhook.tls.plan import Lifetimes, ManagedPair, from_secret_data, plan

log = logging.getLogger("snapshot_webhook.certificates")

WEBHOOK_CONFIGURATIONS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
# a write that keeps losing to other replicas is given up after this many
# tries, until the next interval
MAX_ATTEMPTS = 8


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class CertificateManager:
    api: KubeAPI
    namespace: str
    secret_name: str
    names: Sequence[str]
    configurations: Sequence[str]
    lifetimes: Lifetimes = field(default_factory=Lifetimes)
    clock: Callable[[], datetime.datetime] = _now
    timeout: tuple[float, float] = (5.0, 10.0)
    _missing: set[str] = field(default_factory=set)  # configurations said to be absent
    current: ManagedPair | None = None  # the pair of the last successful round

    @property
    def secret_path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/secrets/{self.secret_name}"

    def _request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        return self.api.request_json(method, path, body, timeout=self.timeout)

    # --- the Secret -----------------------------------------------------------

    def ensure_secret(self) -> ManagedPair:
        """The pair every replica serves, created or renewed when it has to be."""
        for _ in range(MAX_ATTEMPTS):
            status, secret = self._request("GET", self.secret_path)
            if status == 404:
                current, version = None, None
            elif status == 200 and isinstance(secret, dict):
                current = from_secret_data(secret.get("data"))
                version = (secret.get("metadata") or {}).get("resourceVersion")
            else:
                raise APIStatusError(status, "get", self.secret_path, status_message(secret))
            planned = plan(current, self.names, self.clock(), self.lifetimes)
            if planned is None:
                assert current is not None  # plan always makes a pair when there is none
                return current
            pair, why = planned
            if self._write_secret(pair, version):
                log.info(
                    "certificate Secret %s/%s %s: %s",
                    self.namespace,
                    self.secret_name,
                    "created" if version is None else "updated",
                    why,
                )
                return pair
            # another replica wrote first: read its Secret and plan again
        raise APIStatusError(409, "update", self.secret_path, "still conflicting; will retry")

    def _write_secret(self, pair: ManagedPair, version: str | None) -> bool:
        """True when written; False when another writer won (AlreadyExists, Conflict)."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {
                "name": self.secret_name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "snapshot-webhook"},
            },
            "data": pair.secret_data(),
        }
        if version is None:
            status, answer = self._request(
                "POST", f"/api/v1/namespaces/{self.namespace}/secrets", body
            )
        else:
            body["metadata"]["resourceVersion"] = version
            status, answer = self._request("PUT", self.secret_path, body)
        if status in (200, 201):
            return True
        if status == 409:  # AlreadyExists or Conflict: someone else moved first
            return False
        raise APIStatusError(
            status,
            "create" if version is None else "update",
            self.secret_path,
            status_message(answer),
        )

    # --- the webhook configurations -----------------------------------------------

    def inject(self, bundle: str) -> int:
        """Write `bundle` into every entry of every configuration that lacks it;
        returns how many configurations were written."""
        written = 0
        for name in self.configurations:
            written += self._inject_one(name, bundle)
        return written

    def _inject_one(self, name: str, bundle: str) -> int:
        path = f"{WEBHOOK_CONFIGURATIONS}/{name}"
        for _ in range(MAX_ATTEMPTS):
            status, config = self._request("GET", path)
            if status == 404:
                if name not in self._missing:
                    log.warning(
                        "ValidatingWebhookConfiguration %s does not exist (yet); its caBundle "
                        "will be set when it appears",
                        name,
                    )
                    self._missing.add(name)
                return 0
            if status != 200 or not isinstance(config, dict):
                raise APIStatusError(status, "get", path, status_message(config))
            self._missing.discard(name)
            changed = [
                str(hook.get("name"))
                for hook in config.get("webhooks") or []
                if isinstance(hook, dict) and _set_bundle(hook, bundle)
            ]
            if not changed:
                return 0
            status, answer = self._request("PUT", path, config)
            if status == 200:
                log.info(
                    "caBundle written to ValidatingWebhookConfiguration %s: %s",
                    name,
                    ", ".join(changed),
                )
                return 1
            if status != 409:
                raise APIStatusError(status, "update", path, status_message(answer))
            log.debug(
                "%s changed while writing its caBundle (%s); reading it again",
                name,
                status_reason(answer),
            )
        raise APIStatusError(409, "update", path, "still conflicting; will retry")

    # --- running ------------------------------------------------------------------

    def sync(self) -> ManagedPair:
        """One round: the Secret, then the configurations. Blocking."""
        pair = self.ensure_secret()
        self.inject(pair.ca_bundle_b64)
        self.current = pair
        return pair

    def initial(self, deadline_seconds: float, sleep: Callable[[float], None]) -> ManagedPair:
        """The first round, retried until it succeeds or the deadline passes."""
        waited, delay = 0.0, 0.5
        while True:
            try:
                return self.sync()
            except Exception as err:  # unreachable, refused, reset: all retried until the deadline
                if waited >= deadline_seconds:
                    raise CertificateSyncError(
                        f"cannot keep the certificate Secret {self.namespace}/{self.secret_name}:"
                        f" {err}"
                    ) from None
                log.warning("certificate Secret not ready (%s); retrying in %.1fs", err, delay)
            sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)

    async def run(self, interval: float, serve: Callable[[ManagedPair], Awaitable[object]]) -> None:
        """Every `interval` seconds: sync, and hand the pair to `serve`."""
        while True:
            await asyncio.sleep(interval)
            try:
                pair = await asyncio.to_thread(self.sync)
            except Exception as err:  # the next round tries again; the current pair serves
                log.warning("certificate sync failed (%s); retrying in %.0fs", err, interval)
                continue
            await serve(pair)


class CertificateSyncError(RuntimeError):
    pass


def _set_bundle(hook: dict[str, Any], bundle: str) -> bool:
    client = hook.setdefault("clientConfig", {})
    if not isinstance(client, dict) or client.get("caBundle") == bundle:
        return False
    client["caBundle"] = bundle
    return True
