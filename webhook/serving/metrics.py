"""Prometheus metrics, in a registry of the app's own (no process-wide globals)."""

from __future__ import annotations

import bisect
import datetime
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from webhook import __version__
from webhook.decide.admission import Verdict
from webhook.model.kinds import KINDS, KindInfo
from webhook.rules.base import Finding

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
        # per-admission counts are plain integers, read at scrape time
        self.admission_stats = AdmissionStats(LATENCY_BUCKETS)
        self.registry.register(self.admission_stats)
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
        key = (kind_label(kind), operation_label(operation), verdict_label(verdict))
        self.admission_stats.record(key, seconds, verdict.findings)


Key = tuple[str, str, str]  # kind, operation, verdict


def _counter(
    name: str, documentation: str, labels: list[str], counts: Mapping[Any, int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for key, count in list(counts.items()):
        family.add_metric(list(key), count)
    return family


class AdmissionStats:
    """The per-admission metrics (admissions, rule findings, durations) as plain
    counts, written by the event loop with no lock and no metric object per
    request, and turned into samples when Prometheus scrapes: the exposition is
    what Counter and Histogram objects print (`_total`, cumulative `_bucket`s,
    `_count`, `_sum`; no `_created`, as for every metric here)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = (*sorted(buckets), math.inf)
        self.admissions: dict[Key, int] = {}
        self.findings: dict[tuple[str, ...], int] = {}  # key, rule, effect
        # key -> the count in each bucket (not cumulative), then the sum
        self.durations: dict[Key, list[float]] = {}

    def record(self, key: Key, seconds: float, findings: Iterable[Finding]) -> None:
        self.admissions[key] = self.admissions.get(key, 0) + 1
        spread = self.durations.get(key)
        if spread is None:
            spread = self.durations[key] = [0.0] * (len(self.bounds) + 1)
        spread[bisect.bisect_left(self.bounds, seconds)] += 1
        spread[-1] += seconds
        for finding in findings:
            found = (*key, finding.rule_id, "deny" if finding.denies else "warn")
            self.findings[found] = self.findings.get(found, 0) + 1

    def collect(self) -> Iterator[Metric]:
        labels = ["kind", "operation", "verdict"]
        yield _counter(
            "snapshot_webhook_admissions",
            "Admission requests answered.",
            labels,
            self.admissions,
        )
        yield _counter(
            "snapshot_webhook_rule_findings",
            "Rule findings, by the verdict of the admission they were part of.",
            [*labels, "rule", "effect"],
            self.findings,
        )
        durations = HistogramMetricFamily(
            "snapshot_webhook_admission_duration_seconds",
            "Time from receiving a review's body to having its answer.",
            labels=labels,
        )
        for key, spread in list(self.durations.items()):
            cumulative, buckets = 0.0, []
            for bound, observed in zip(self.bounds, spread, strict=False):
                cumulative += observed
                buckets.append((floatToGoString(bound), cumulative))  # type: ignore[no-untyped-call]
            durations.add_metric(list(key), buckets, spread[-1])
        yield durations
