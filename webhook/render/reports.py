"""Audit findings as policy reports, the objects Policy Reporter and Kyverno's
tooling read. Pure: builds objects.

Two formats share one shape: `wgpolicyk8s.io/v1alpha2` PolicyReport and
ClusterPolicyReport, and their successor `openreports.io/v1alpha1` Report and
ClusterReport. One report per namespace that has findings (named
`snapshot-webhook`), and one cluster report for the cluster-scoped kinds
(contents and classes). Each result names the policy `snapshot-webhook`, the
rule id, `fail` for a deny-mode rule and `warn` for a warning, a severity,
the message, the field path (as a property) and the object's reference.

A result keeps the timestamp it had in the report it replaces, so that a
report whose findings did not change compares equal and is not rewritten,
whichever replica writes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from webhook.decide.audit import AuditFinding
from webhook.model.report_kinds import LABELS, NAME, ReportFormat

POLICY = "snapshot-webhook"
SOURCE = "snapshot-webhook"
CATEGORY = "Volume snapshots"
SEVERITY = {True: "high", False: "medium"}  # by whether the rule denies
RESULT = {True: "fail", False: "warn"}


def _resource(finding: AuditFinding) -> dict[str, str]:
    ref = {
        "apiVersion": finding.api_version,
        "kind": finding.kind,
        "name": finding.object_name,
    }
    if finding.namespace:
        ref["namespace"] = finding.namespace
    if finding.uid:
        ref["uid"] = finding.uid
    return ref


def result_key(result: Mapping[str, Any]) -> tuple[object, ...]:
    """What identifies a result across rewrites: everything but its timestamp."""
    resources = result.get("resources") or [{}]
    ref = resources[0] if isinstance(resources[0], dict) else {}
    properties = result.get("properties") or {}
    return (
        result.get("rule"),
        result.get("result"),
        ref.get("kind"),
        ref.get("namespace"),
        ref.get("name"),
        ref.get("uid"),
        properties.get("path") if isinstance(properties, dict) else None,
        result.get("message"),
    )


def result(finding: AuditFinding, seconds: int) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "policy": POLICY,
        "rule": finding.rule_id,
        "category": CATEGORY,
        "result": RESULT[finding.denies],
        "severity": SEVERITY[finding.denies],
        "scored": True,
        "message": finding.message,
        "properties": {"path": finding.path},
        "resources": [_resource(finding)],
        "timestamp": {"seconds": seconds, "nanos": 0},
    }


def report(
    fmt: ReportFormat,
    namespace: str,
    findings: Iterable[AuditFinding],
    now: int,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One namespace's report ("" for the cluster report). Results that were in
    `previous` keep their timestamps; new ones are stamped `now`."""
    stamps: dict[tuple[object, ...], Any] = {}
    for old in (previous or {}).get("results") or []:
        if isinstance(old, dict) and isinstance(old.get("timestamp"), dict):
            stamps[result_key(old)] = old["timestamp"]
    results = []
    for finding in findings:
        made = result(finding, now)
        made["timestamp"] = stamps.get(result_key(made), made["timestamp"])
        results.append(made)
    results.sort(key=lambda r: tuple(str(part) for part in result_key(r)))
    metadata: dict[str, Any] = {"name": NAME, "labels": dict(LABELS)}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": fmt.api_version,
        "kind": fmt.kind if namespace else fmt.cluster_kind,
        "metadata": metadata,
        "summary": summary(results),
        "results": results,
    }


def summary(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = {"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0}
    for made in results:
        counts[str(made["result"])] += 1
    return counts


def by_namespace(findings: Iterable[AuditFinding]) -> dict[str, list[AuditFinding]]:
    """Findings grouped by the report they go in: their namespace, "" for the cluster's."""
    grouped: dict[str, list[AuditFinding]] = {}
    for finding in findings:
        grouped.setdefault(finding.namespace, []).append(finding)
    return grouped


def reports(fmt: ReportFormat, findings: Iterable[AuditFinding], now: int) -> list[dict[str, Any]]:
    """Every report the findings make, cluster report first, then by namespace."""
    grouped = by_namespace(findings)
    return [report(fmt, ns, grouped[ns], now) for ns in sorted(grouped)]


def same_results(desired: Mapping[str, Any], stored: Mapping[str, Any]) -> bool:
    """True when a stored report already says what `desired` says (labels included)."""
    stored_labels = (stored.get("metadata") or {}).get("labels") or {}
    return (
        desired.get("results") == stored.get("results")
        and desired.get("summary") == stored.get("summary")
        and all(stored_labels.get(k) == v for k, v in LABELS.items())
    )
