"""Prometheus metrics, in a registry of the app's own (no process-wide globals)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from webhook import __version__
from webhook.decide.admission import Verdict
from webhook.model.kinds import KINDS, KindInfo

# Label values come only from these fixed sets, never from a request as sent:
# a caller could otherwise grow /metrics without bound with made-up kinds.
KIND_LABELS = frozenset(info.kind for info in KINDS if info.reviewed)
OPERATION_LABELS = frozenset(("CREATE", "UPDATE", "DELETE", "CONNECT"))


def kind_label(kind: str) -> str:
    return kind if kind in KIND_LABELS else "other"


def operation_label(operation: str) -> str:
    return operation if operation in OPERATION_LABELS else "other"


# Admission decisions take tens of microseconds; the apiserver's timeout is seconds.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


def verdict_label(verdict: Verdict) -> str:
    if verdict.allowed:
        return "allowed"
    return "denied" if verdict.code == 403 else "errored"


class _ReadAtScrape(Collector):
    """A gauge or counter family read at scrape time from a callback."""

    def __init__(
        self,
        name: str,
        doc: str,
        label: str,
        read: Callable[[], Mapping[str, float]],
        family: type[GaugeMetricFamily | CounterMetricFamily] = GaugeMetricFamily,
    ):
        self._name, self._doc, self._label, self._read = name, doc, label, read
        self._family = family

    def collect(self) -> Iterator[Metric]:
        family = self._family(self._name, self._doc, labels=[self._label])
        for key, value in sorted(self._read().items()):
            family.add_metric([key], value)
        yield family


class Metrics:
    def __init__(self) -> None:
        # no `_created` series: they double the output and nobody alerts on them
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        # the standard process_* and python_* series every webhook exposes
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        Info(
            "snapshot_webhook_build",
            "The running version (value 1; the version is a label).",
            registry=self.registry,
        ).info({"version": __version__})
        # a plain count on the event loop, read at scrape time: no lock per request
        self.in_flight = 0
        Gauge(
            "snapshot_webhook_requests_in_flight",
            "Admission requests being read or judged now.",
            registry=self.registry,
        ).set_function(lambda: self.in_flight)
        self.admissions = Counter(
            "snapshot_webhook_admissions",
            "Admission requests answered.",
            ["kind", "operation", "verdict"],
            registry=self.registry,
        )
        self.findings = Counter(
            "snapshot_webhook_rule_findings",
            "Rule findings, by the verdict of the admission they were part of.",
            ["kind", "operation", "verdict", "rule", "effect"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "snapshot_webhook_admission_duration_seconds",
            "Time from receiving a review's body to having its answer.",
            ["kind", "operation", "verdict"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.bad_requests = Counter(
            "snapshot_webhook_bad_requests",
            "Requests refused before any review was read.",
            ["status"],
            registry=self.registry,
        )
        self.watch_restarts = Counter(
            "snapshot_webhook_watch_restarts",
            "Watches restarted after a failure.",
            ["kind"],
            registry=self.registry,
        )
        self.relists = Counter(
            "snapshot_webhook_relists",
            "Full lists of a kind (start, 410 Gone, RBAC or CRD change).",
            ["kind"],
            registry=self.registry,
        )
        self.live_gets = Counter(
            "snapshot_webhook_live_gets",
            "Live GETs for objects the watch had not delivered yet.",
            ["kind", "result"],
            registry=self.registry,
        )
        self.audit_findings = Gauge(
            "snapshot_webhook_audit_violations",
            "Objects the rules forbid that the cluster already has, at the last audit.",
            ["rule"],
            registry=self.registry,
        )
        self.reservations = Gauge(
            "snapshot_webhook_reservations",
            "Admitted writes held until the watch shows them.",
            registry=self.registry,
        )
        self.live_claims = Gauge(
            "snapshot_webhook_live_claims",
            "Unexpired claims (Leases) on unique slots at the last sweep.",
            registry=self.registry,
        )
        self.authorizations = Counter(
            "snapshot_webhook_authorization_reviews",
            "Who may allow a volume-mode change, asked (SubjectAccessReview, or its cache), by "
            "result: allowed, denied, failed (the apiserver could not be asked).",
            ["result"],
            registry=self.registry,
        )
        for result in ("allowed", "denied", "failed"):
            self.authorizations.labels(result)
        self._admission_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._finding_children: dict[tuple[str, ...], Any] = {}
        self.cert_not_after = Gauge(
            "snapshot_webhook_certificate_not_after_timestamp_seconds",
            "When the serving certificate expires (Unix time).",
            registry=self.registry,
        )

    def watch_state(self, counts: Callable[[], Mapping[str, float]]) -> None:
        self.registry.register(
            _ReadAtScrape(
                "snapshot_webhook_state_objects", "Objects in the state index.", "kind", counts
            )
        )

    def watch_certificate(self, expiry: Callable[[], datetime.datetime | None]) -> None:
        self.cert_not_after.set_function(lambda: ts.timestamp() if (ts := expiry()) else 0.0)

    def watch_events(
        self,
        last_event: Callable[[], Mapping[str, float]],
        fresh: Callable[[], Mapping[str, float]],
    ) -> None:
        self.registry.register(
            _ReadAtScrape(
                "snapshot_webhook_watch_last_event_timestamp_seconds",
                "When the watch of a kind last delivered an event or bookmark (Unix time).",
                "kind",
                last_event,
            )
        )
        self.registry.register(
            _ReadAtScrape(
                "snapshot_webhook_watch_fresh_timestamp_seconds",
                "When the watch of a kind was last known to be current: listed, an event or "
                "bookmark, or a watch opened or ended cleanly by the apiserver (Unix time). A "
                "healthy idle watch renews it at least every 2 x --watch-timeout-seconds.",
                "kind",
                fresh,
            )
        )

    def watch_claims(
        self, counts: Callable[[], Mapping[str, float]], live: Callable[[], float]
    ) -> None:
        self.registry.register(
            _ReadAtScrape(
                "snapshot_webhook_claims",
                "Claims on unique slots through the apiserver, by result: claimed, taken_over, "
                "held (by another object: denied), failed (the apiserver could not be asked).",
                "result",
                counts,
                CounterMetricFamily,
            )
        )
        self.live_claims.set_function(live)

    def count_watch(self, what: str, info: KindInfo) -> None:
        (self.relists if what == "relist" else self.watch_restarts).labels(info.kind).inc()

    def count_authorization(self, result: str) -> None:
        self.authorizations.labels(result).inc()

    def count_live_get(self, info: KindInfo, result: str) -> None:
        self.live_gets.labels(info.kind, result).inc()

    def record_audit(self, counts: Mapping[str, int], rule_ids: Iterable[str]) -> None:
        for rule_id in rule_ids:
            self.audit_findings.labels(rule_id).set(counts.get(rule_id, 0))

    def bad_request(self, status: str) -> None:
        self.bad_requests.labels(status).inc()

    def record(self, kind: str, operation: str, verdict: Verdict, seconds: float) -> None:
        # Children are looked up once per label set: .labels() validates and
        # locks on every call, which shows on the admission path.
        key = (kind_label(kind), operation_label(operation), verdict_label(verdict))
        children = self._admission_children.get(key)
        if children is None:
            children = self._admission_children[key] = (
                self.admissions.labels(*key),
                self.latency.labels(*key),
            )
        admissions, latency = children
        admissions.inc()
        latency.observe(seconds)
        for finding in verdict.findings:
            effect = "deny" if finding.denies else "warn"
            found = (*key, finding.rule_id, effect)
            child = self._finding_children.get(found)
            if child is None:
                child = self._finding_children[found] = self.findings.labels(*found)
            child.inc()
