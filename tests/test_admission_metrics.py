"""The per-admission metrics, kept as plain counts and read at scrape time, print
exactly what prometheus_client's Counter and Histogram objects would print for
the same admissions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from webhook.decide.admission import allowed, denied
from webhook.rules.base import Finding
from webhook.serving.metrics import LATENCY_BUCKETS, Metrics

NAMES = (
    "snapshot_webhook_admissions",
    "snapshot_webhook_rule_findings",
    "snapshot_webhook_admission_duration_seconds",
)


def ours(text: bytes) -> list[str]:
    found = []
    for line in text.decode().splitlines():
        name = line.removeprefix("# HELP ").removeprefix("# TYPE ")
        if name.startswith(NAMES):
            found.append(line)
    return found


def test_the_exposition_is_what_counter_and_histogram_objects_print() -> None:
    metrics = Metrics()
    reference = CollectorRegistry()
    labels = ["kind", "operation", "verdict"]
    admissions = Counter(
        "snapshot_webhook_admissions", "Admission requests answered.", labels, registry=reference
    )
    findings = Counter(
        "snapshot_webhook_rule_findings",
        "Rule findings, by the verdict of the admission they were part of.",
        [*labels, "rule", "effect"],
        registry=reference,
    )
    durations = Histogram(
        "snapshot_webhook_admission_duration_seconds",
        "Time from receiving a review's body to having its answer.",
        labels,
        registry=reference,
        buckets=LATENCY_BUCKETS,
    )
    warn = Finding("class.default.annotation", "metadata", "a warning", denies=False)
    deny = Finding("class.default.unique", "metadata", "a denial", denies=True)
    events = [
        ("VolumeSnapshotClass", "CREATE", allowed(), 0.0001),  # exactly on a boundary
        ("VolumeSnapshotClass", "CREATE", allowed([warn]), 0.0003),
        ("VolumeSnapshotClass", "UPDATE", denied([deny, warn]), 0.02),
        ("VolumeSnapshot", "CREATE", allowed(), 99.0),  # past the last bound: +Inf only
        ("VolumeSnapshot", "CREATE", allowed(), 0.0),
    ]
    for kind, operation, verdict, seconds in events:
        metrics.record(kind, operation, verdict, seconds)
        key = (kind, operation, "denied" if not verdict.allowed else "allowed")
        admissions.labels(*key).inc()
        durations.labels(*key).observe(seconds)
        for finding in verdict.findings:
            effect = "deny" if finding.denies else "warn"
            findings.labels(*key, finding.rule_id, effect).inc()
    assert sorted(ours(generate_latest(metrics.registry))) == sorted(
        ours(generate_latest(reference))
    )
    assert any('le="+Inf"' in line for line in ours(generate_latest(metrics.registry)))
