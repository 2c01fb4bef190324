"""Claims on unique slots, made through the apiserver with Leases.

Replicas each follow the cluster through their own watch, so two requests for
one slot reaching two replicas within the watch's latency could both pass the
rules. Before admitting a non-dry-run request that takes a slot the watched
state shows as free, a replica creates the slot's Lease in its namespace. A
create of a fixed name is atomic in the apiserver: exactly one replica gets it,
the others get AlreadyExists and read who holds it.

- Held by the same object (kind, namespace, name): allowed (the apiserver
  retried the call, or the client sent it again).
- Held by another object: denied while the claim lives. An expired claim, or
  one whose holder the watch already shows without the slot (a CREATE claim
  whose object is stored and does not take it), is taken over with an update
  that carries the Lease's resourceVersion; a Conflict means another replica
  moved first, and the claim is read and decided again.
- A claim ends when the watch shows its holder holding the slot (the rules
  then enforce it), or when it expires; any replica deletes expired claims,
  with a resourceVersion precondition, so Leases never accumulate.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webhook.cluster.api import APIStatusError, KubeAPI, status_message
from webhook.state.slots import Slot

log = logging.getLogger("snapshot_webhook.claims")

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
MANAGED = "app.kubernetes.io/managed-by"
ANNOTATION = "snapshot-webhook.io/"
MAX_ATTEMPTS = 4
# Seconds the watch must show a holder holding its slot before its claim is
# released: another replica's watch may lag a little behind this one's.
RELEASE_GRACE = 5.0


@dataclass(frozen=True)
class Holder:
    kind: str
    namespace: str
    name: str
    uid: str
    operation: str  # CREATE or UPDATE: only a CREATE's uid marks the stored object as new

    def same_object(self, other: Holder) -> bool:
        return (self.kind, self.namespace, self.name) == (other.kind, other.namespace, other.name)

    @property
    def display(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    def annotations(self) -> dict[str, str]:
        return {
            f"{ANNOTATION}holder-kind": self.kind,
            f"{ANNOTATION}holder-namespace": self.namespace,
            f"{ANNOTATION}holder-name": self.name,
            f"{ANNOTATION}holder-uid": self.uid,
            f"{ANNOTATION}holder-operation": self.operation,
        }

    @classmethod
    def from_annotations(cls, annotations: dict[str, Any]) -> Holder:
        def get(key: str) -> str:
            return str(annotations.get(f"{ANNOTATION}holder-{key}") or "")

        return cls(get("kind"), get("namespace"), get("name"), get("uid"), get("operation"))


@dataclass(frozen=True)
class Outcome:
    """`claimed`; or held by `holder` until `until`; or `error` (the apiserver
    could not be asked)."""

    claimed: bool
    holder: Holder | None = None
    until: datetime.datetime | None = None
    lease: str = ""
    error: str = ""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _micro_time(at: datetime.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: object) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    text = value.replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass
class LeaseClaims:
    api: KubeAPI
    namespace: str
    duration: float  # seconds a claim lives unless the watch settles it first
    timeout: float = 2.0
    clock: Callable[[], datetime.datetime] = _now
    # the watch shows this holder stored, without the slot (it gave the slot up)
    gave_up: Callable[[Slot, Holder], bool] = lambda slot, holder: False
    counts: dict[str, int] = field(default_factory=dict)
    live: int = 0  # claims seen at the last sweep
    _mine: dict[str, tuple[Slot, Holder]] = field(default_factory=dict)
    _holding_since: dict[str, datetime.datetime] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def collection(self) -> str:
        return LEASES.format(namespace=self.namespace)

    def _request(
        self,
        method: str,
        path: str,
        body: object = None,
        query: list[tuple[str, str]] | None = None,
    ) -> tuple[int, Any]:
        return self.api.request_json(
            method, path, body, query=query or [], timeout=(self.timeout, self.timeout)
        )

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def _lease(self, slot: Slot, holder: Holder, version: str | None = None) -> dict[str, Any]:
        now = _micro_time(self.clock())
        metadata: dict[str, Any] = {
            "name": slot.lease_name,
            "namespace": self.namespace,
            "labels": {MANAGED: "snapshot-webhook", f"{ANNOTATION}slot": slot.kind},
            "annotations": {
                f"{ANNOTATION}rule": slot.rule_id,
                f"{ANNOTATION}slot": slot.what,
                **holder.annotations(),
            },
        }
        if version is not None:
            metadata["resourceVersion"] = version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": holder.display,
                "leaseDurationSeconds": max(1, round(self.duration)),
                "acquireTime": now,
                "renewTime": now,
            },
        }

    def _expires(self, lease: dict[str, Any]) -> datetime.datetime | None:
        spec = lease.get("spec") or {}
        renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
        seconds = spec.get("leaseDurationSeconds")
        if renewed is None or not isinstance(seconds, int):
            return None  # unreadable: treated as expired
        return renewed + datetime.timedelta(seconds=seconds)

    def claim(self, slot: Slot, holder: Holder) -> Outcome:
        """Claim `slot` for `holder`. Blocking; never raises."""
        try:
            outcome = self._claim(slot, holder)
        except (APIStatusError, OSError, ValueError) as err:
            outcome = Outcome(False, error=str(err))
        except Exception as err:  # urllib3 and client errors: the apiserver is unreachable
            outcome = Outcome(False, error=f"{type(err).__name__}: {err}")
        if outcome.claimed:
            with self._lock:
                self._mine[slot.lease_name] = (slot, holder)
        self._count("claimed" if outcome.claimed else "failed" if outcome.error else "held")
        return outcome

    def _claim(self, slot: Slot, holder: Holder) -> Outcome:
        path = f"{self.collection}/{slot.lease_name}"
        for _ in range(MAX_ATTEMPTS):
            status, answer = self._request("POST", self.collection, self._lease(slot, holder))
            if status == 201:
                return Outcome(True, lease=slot.lease_name)
            if status != 409:
                raise APIStatusError(status, "create", path, status_message(answer))
            status, lease = self._request("GET", path)
            if status == 404:
                continue  # released between our create and our read: create again
            if status != 200 or not isinstance(lease, dict):
                raise APIStatusError(status, "get", path, status_message(lease))
            metadata = lease.get("metadata") or {}
            current = Holder.from_annotations(metadata.get("annotations") or {})
            if current.same_object(holder):
                return Outcome(True, lease=slot.lease_name)
            expires = self._expires(lease)
            if expires is not None and expires > self.clock() and not self.gave_up(slot, current):
                return Outcome(False, holder=current, until=expires, lease=slot.lease_name)
            body = self._lease(slot, holder, str(metadata.get("resourceVersion") or ""))
            status, answer = self._request("PUT", path, body)
            if status == 200:
                log.info(
                    "claim on %s taken over from %s (%s)",
                    slot.what,
                    current.display,
                    "expired" if expires is None or expires <= self.clock() else "gave it up",
                )
                self._count("taken_over")
                return Outcome(True, lease=slot.lease_name)
            if status not in (404, 409):
                raise APIStatusError(status, "update", path, status_message(answer))
            # someone else moved first: read it again and decide again
        raise APIStatusError(409, "claim", path, "kept conflicting with other replicas")

    # --- ending claims --------------------------------------------------------------

    def settled(self, holds: Callable[[Slot, Holder], bool], grace: float) -> int:
        """Release this replica's claims whose holder the watch has shown holding the
        slot for `grace` seconds (other replicas' watches may lag a little behind
        this one's); returns how many were released."""
        now = self.clock()
        with self._lock:
            mine = list(self._mine.items())
        released = 0
        for name, (slot, holder) in mine:
            if not holds(slot, holder):
                self._holding_since.pop(name, None)
                continue
            since = self._holding_since.setdefault(name, now)
            if (now - since).total_seconds() < grace:
                continue
            self._delete(name, None)
            released += 1
            with self._lock:
                self._mine.pop(name, None)
            self._holding_since.pop(name, None)
        return released

    def sweep(self) -> int:
        """Delete expired claims, whoever made them; returns how many claims live."""
        status, listed = self._request(
            "GET", self.collection, query=[("labelSelector", f"{MANAGED}=snapshot-webhook")]
        )
        if status != 200 or not isinstance(listed, dict):
            raise APIStatusError(status, "list", self.collection, status_message(listed))
        now, live = self.clock(), 0
        for lease in listed.get("items") or []:
            metadata = lease.get("metadata") or {}
            if (metadata.get("labels") or {}).get(MANAGED) != "snapshot-webhook":
                continue  # never another component's Lease, whatever the list returned
            expires = self._expires(lease)
            if expires is not None and expires > now:
                live += 1
                continue
            self._delete(str(metadata.get("name")), str(metadata.get("resourceVersion") or ""))
            with self._lock:
                self._mine.pop(str(metadata.get("name")), None)
        self.live = live
        return live

    def _delete(self, name: str, version: str | None) -> None:
        body = {"preconditions": {"resourceVersion": version}} if version else None
        status, answer = self._request("DELETE", f"{self.collection}/{name}", body)
        if status not in (200, 202, 404, 409):  # 409: renewed or taken over meanwhile
            log.warning("cannot delete claim %s: HTTP %s %s", name, status, status_message(answer))
