"""Policy reports kept current in cluster mode (`--reports`).

Exactly one replica writes: the leader of the `snapshot-webhook-reports`
Lease. The leader re-audits the watched state when it has changed, once it has
been quiet for `debounce` seconds (or `max_delay` after the first change at
the latest), never on a timer over an unchanged cluster, and on becoming
leader. It then makes the stored reports say what the findings say:

- a report whose results are unchanged is not written;
- a changed report is replaced whole, in one PUT carrying the resourceVersion
  read, so two writers can never interleave (a Conflict is left for the next
  round, which reads again);
- a report whose namespace has no finding left is deleted, with a
  resourceVersion precondition.

The format is found by discovery: `auto` takes openreports.io when installed,
else wgpolicyk8s.io; with neither, nothing is written and one log line says so
(discovery is tried again each minute, so installing a CRD later is noticed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webhook.cluster.api import KubeAPI, status_message
from webhook.cluster.leader import LeaseElector
from webhook.decide.audit import AuditFinding, audit
from webhook.model.report_kinds import (
    FORMATS,
    LABEL_SELECTOR,
    NAME,
    ReportFormat,
    candidates,
)
from webhook.render.reports import by_namespace, report, same_results
from webhook.rules import Policy
from webhook.state.index import StateIndex

log = logging.getLogger("snapshot_webhook.reports")

REDISCOVERY_SECONDS = 60.0


class DiscoveryError(Exception):
    """The apiserver did not say whether a report group is installed."""


def discover(api: KubeAPI, wanted: str) -> ReportFormat | None:
    """The report format to write: `wanted` (auto, wgpolicy or openreports) if its
    group is served, None when it is not."""
    for fmt in candidates(wanted):
        status, group = api.get_json(f"/apis/{fmt.group}", timeout=(5.0, 10.0))
        if status == 404:
            continue
        if status != 200 or not isinstance(group, dict):
            raise DiscoveryError(f"GET /apis/{fmt.group}: HTTP {status} {status_message(group)}")
        versions = {v.get("version") for v in group.get("versions") or [] if isinstance(v, dict)}
        if fmt.version in versions:
            return fmt
    return None


class ReportWriter:
    """Makes the stored reports of one format say what the findings say."""

    def __init__(self, api: KubeAPI, fmt: ReportFormat) -> None:
        self.api = api
        self.fmt = fmt

    def stored(self) -> dict[str, dict[str, Any]]:
        """namespace ("" for the cluster report) -> the report this webhook wrote there."""
        found: dict[str, dict[str, Any]] = {}
        for path in (self.fmt.every_namespace(), self.fmt.path("")):
            status, listed = self.api.get_json(path, query=[("labelSelector", LABEL_SELECTOR)])
            if status != 200 or not isinstance(listed, dict):
                raise DiscoveryError(f"GET {path}: HTTP {status} {status_message(listed)}")
            for item in listed.get("items") or []:
                metadata = item.get("metadata") or {} if isinstance(item, dict) else {}
                if metadata.get("name") == NAME:
                    found[str(metadata.get("namespace") or "")] = item
        return found

    def publish(self, findings: list[AuditFinding], now: int) -> Counter[str]:
        """Write what differs; returns how many reports were created, replaced,
        deleted, left unchanged, or met a conflict (left for the next round)."""
        done: Counter[str] = Counter()
        existing = self.stored()
        grouped = by_namespace(findings)
        for namespace in sorted(set(grouped) | set(existing)):
            previous = existing.get(namespace)
            path = self.fmt.path(namespace, NAME)
            if namespace not in grouped:
                assert previous is not None
                version = previous["metadata"].get("resourceVersion")
                options = {
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "preconditions": {"resourceVersion": version},
                }
                status, answer = self.api.request_json("DELETE", path, options)
                done[self._outcome(status, answer, "deleted", path)] += 1
                continue
            desired = report(self.fmt, namespace, grouped[namespace], now, previous)
            if previous is not None and same_results(desired, previous):
                done["unchanged"] += 1
                continue
            if previous is not None:
                desired["metadata"]["resourceVersion"] = previous["metadata"].get("resourceVersion")
                status, answer = self.api.request_json("PUT", path, desired)
                done[self._outcome(status, answer, "replaced", path)] += 1
            else:
                collection = self.fmt.path(namespace)
                status, answer = self.api.request_json("POST", collection, desired)
                done[self._outcome(status, answer, "created", path)] += 1
        return done

    @staticmethod
    def _outcome(status: int, answer: object, success: str, path: str) -> str:
        if status < 300:
            return success
        if status in (404, 409):  # gone, taken or moved meanwhile: the next round reads again
            return "conflict"
        log.warning("report %s: HTTP %s %s", path, status, status_message(answer))
        return "failed"


@dataclass
class Reporting:
    """The leader's loop: elect, notice changes, re-audit, publish."""

    api: KubeAPI
    index: StateIndex
    policy: Policy
    elector: LeaseElector
    wanted: str  # auto, wgpolicy, openreports
    ready: Callable[[], bool]  # every kind listed: findings from a partial state mislead
    debounce: float = 2.0
    max_delay: float = 10.0
    tick: float = 0.5
    clock: Callable[[], float] = time.monotonic
    published: Counter[str] = field(default_factory=Counter)
    _writer: ReportWriter | None = None
    _discovered_at: float | None = None
    _said_none: bool = False

    def _writer_now(self) -> ReportWriter | None:
        now = self.clock()
        if self._writer is not None:
            return self._writer
        if self._discovered_at is not None and now - self._discovered_at < REDISCOVERY_SECONDS:
            return None
        self._discovered_at = now
        try:
            fmt = discover(self.api, self.wanted)
        except Exception as err:
            log.warning("reports: discovery failed (tried again in a minute): %s", err)
            return None
        if fmt is None:
            if not self._said_none:
                wanted = (
                    "openreports.io or wgpolicyk8s.io"
                    if self.wanted == "auto"
                    else (FORMATS[self.wanted].group)
                )
                log.warning(
                    "reports: no report CRD is installed (%s): findings are not published "
                    "as reports; install one to have them",
                    wanted,
                )
                self._said_none = True
            return None
        log.info("reports: writing %s %s", fmt.api_version, fmt.kind)
        self._writer = ReportWriter(self.api, fmt)
        return self._writer

    def publish_now(self) -> Counter[str] | None:
        """Audit the state and publish, if a format is installed. Blocking."""
        writer = self._writer_now()
        if writer is None:
            return None
        findings = audit(self.index, self.policy)
        done = writer.publish(findings, int(time.time()))
        self.published.update(done)
        return done

    async def run(self) -> None:
        """Until cancelled; the Lease is handed back on the way out."""
        pending_since: float | None = None  # first unpublished change
        seen = -1  # the index's change count at the last publish
        last_count = -1
        quiet_since = self.clock()
        next_step = 0.0
        retry_at = 0.0  # after a failed round, not before this
        leading = False
        try:
            while True:
                now = self.clock()
                if now >= next_step:
                    was = leading
                    leading = await asyncio.to_thread(self.elector.step)
                    next_step = now + max(0.5, self.elector.duration / 5)
                    if leading and not was:
                        seen = -1  # a new leader publishes what it sees at once
                count = self.index.changes
                if count != last_count:
                    last_count, quiet_since = count, now
                    if pending_since is None:
                        pending_since = now
                due = now >= retry_at and (
                    count != seen
                    and (
                        now - quiet_since >= self.debounce
                        or (pending_since is not None and now - pending_since >= self.max_delay)
                        or seen == -1
                    )
                )
                # leading as of now, by the clock: a step stuck on a slow apiserver
                # must not let a stale leader publish
                if self.elector.leading and due and self.ready():
                    try:
                        done = await asyncio.to_thread(self.publish_now)
                    except Exception as err:
                        log.warning("reports: publishing failed: %s", err)
                        done = None
                    if done is None or done["failed"]:
                        retry_at = now + self.max_delay  # refused or unreachable: not every tick
                    elif done["conflict"]:
                        retry_at = now + self.debounce  # another write moved first: read again
                    else:
                        seen, pending_since = count, None
                await asyncio.sleep(self.tick)
        finally:
            await asyncio.to_thread(self.elector.release)
