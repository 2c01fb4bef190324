"""One leader among the replicas, elected with a coordination.k8s.io Lease.

The kubernetes client ships a leader-election module; it is not used here, for
three reasons: its LeaseLock builds its own API client from the process-wide
default configuration (this webhook keeps one client, with its own
configuration, per process), its `run()` loops forever with no way to stop it
or to release the Lease on shutdown (a rollout would then wait a whole lease
duration for the next leader), and its sleeps cannot be interrupted. This is
the same protocol in one step function the caller drives:

- no Lease: create it (AlreadyExists: another replica was first);
- held by this replica: renew it, with the resourceVersion read;
- held by another and not expired (renewTime + leaseDurationSeconds, by this
  replica's clock): follow;
- expired or released: take it over, with the resourceVersion read, so that of
  two replicas taking over at once exactly one succeeds (the other gets a
  Conflict and follows).

A leader counts itself leading only until its last successful renewal plus
`renew_deadline` (two thirds of the lease duration), so it stops acting before
any other replica can take the Lease over. `release()` hands the Lease back on
shutdown, so that the next leader takes over at once.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

from webhook.cluster.api import KubeAPI, status_message

log = logging.getLogger("snapshot_webhook.leader")

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
MANAGED = {"app.kubernetes.io/managed-by": "snapshot-webhook"}
TIMEOUT = (3.0, 5.0)  # connect, read: well inside the renew deadline


def micro_time(at: float) -> str:
    moment = datetime.datetime.fromtimestamp(at, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


class LeaseElector:
    def __init__(
        self,
        api: KubeAPI,
        namespace: str,
        name: str,
        identity: str,
        duration: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = max(1, round(duration))
        self.renew_deadline = self.duration * 2 / 3
        self._clock = clock
        self._renewed: float | None = None  # when this replica last held the Lease
        self.holder: str | None = None  # who holds it, as last read

    @property
    def path(self) -> str:
        return LEASES.format(namespace=self.namespace) + f"/{self.name}"

    @property
    def leading(self) -> bool:
        return self._renewed is not None and self._clock() < self._renewed + self.renew_deadline

    def step(self) -> bool:
        """Acquire, renew or follow, once. True while this replica leads."""
        try:
            self._step()
        except Exception as err:  # the apiserver unreachable: lead no longer than allowed
            log.warning("lease %s/%s: %s", self.namespace, self.name, err)
        return self.leading

    def _spec(self, now: float, transitions: int, acquired: object) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration,
            "acquireTime": acquired if isinstance(acquired, str) else micro_time(now),
            "renewTime": micro_time(now),
            "leaseTransitions": transitions,
        }

    def _step(self) -> None:
        now = self._clock()
        status, lease = self.api.get_json(self.path, timeout=TIMEOUT)
        if status == 404:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "labels": dict(MANAGED)},
                "spec": self._spec(now, 0, None),
            }
            status, answer = self.api.request_json(
                "POST", LEASES.format(namespace=self.namespace), body, timeout=TIMEOUT
            )
            if status == 201:
                self._took(now, "created")
            elif status != 409:
                log.warning(
                    "lease %s: create: HTTP %s %s", self.name, status, status_message(answer)
                )
            return
        if status != 200 or not isinstance(lease, dict):
            log.warning("lease %s: read: HTTP %s %s", self.name, status, status_message(lease))
            return
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or None
        self.holder = holder
        renewed = parse_micro_time(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds")
        duration = duration if isinstance(duration, int) and duration > 0 else self.duration
        mine = holder == self.identity
        expired = holder is None or renewed is None or now >= renewed + duration
        if not mine and not expired:
            self._renewed = None
            return
        transitions = spec.get("leaseTransitions")
        transitions = transitions if isinstance(transitions, int) else 0
        updated = dict(lease)
        updated["spec"] = self._spec(
            now,
            transitions if mine else transitions + 1,
            spec.get("acquireTime") if mine else None,
        )
        status, answer = self.api.request_json("PUT", self.path, updated, timeout=TIMEOUT)
        if status == 200:
            self._took(now, "renewed" if mine else "taken over")
        elif status == 409:  # another replica wrote first: it leads
            self._renewed = None
        else:  # unanswered: lead on until the renew deadline, no longer
            said = status_message(answer)
            log.warning("lease %s: update: HTTP %s %s", self.name, status, said)

    def _took(self, now: float, how: str) -> None:
        if self._renewed is None:
            log.info("lease %s/%s %s: this replica leads", self.namespace, self.name, how)
        self._renewed = now
        self.holder = self.identity

    def release(self) -> None:
        """Hand the Lease back (if held), so that another replica leads at once."""
        if self._renewed is None:
            return
        self._renewed = None
        try:
            status, lease = self.api.get_json(self.path, timeout=(2.0, 2.0))
            spec = (lease or {}).get("spec") or {} if status == 200 else {}
            if spec.get("holderIdentity") != self.identity:
                return
            released = dict(lease)
            released["spec"] = {
                **spec,
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "renewTime": micro_time(self._clock()),
            }
            self.api.request_json("PUT", self.path, released, timeout=(2.0, 2.0))
        except Exception as err:  # shutting down: the Lease expires by itself
            log.warning("lease %s: release: %s", self.name, err)
