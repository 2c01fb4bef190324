"""The policy-report kinds the audit's findings are published as, and the names
this webhook gives what it writes. Pure: facts about the API.

`wgpolicyk8s.io/v1alpha2` PolicyReport and ClusterPolicyReport, and their
successor `openreports.io/v1alpha1` Report and ClusterReport, share one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NAME = "snapshot-webhook"  # every report this webhook writes
LABELS = {"app.kubernetes.io/managed-by": "snapshot-webhook"}
LABEL_SELECTOR = "app.kubernetes.io/managed-by=snapshot-webhook"
LEASE = "snapshot-webhook-reports"  # the Lease whose holder writes the reports


@dataclass(frozen=True)
class ReportFormat:
    name: str  # as --reports and `audit -o` spell it
    group: str
    version: str
    kind: str  # namespaced
    plural: str
    cluster_kind: str
    cluster_plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def path(self, namespace: str, name: str | None = None) -> str:
        """The API path of a namespace's report ("" for the cluster report), or of
        that collection when `name` is None."""
        base = f"/apis/{self.group}/{self.version}"
        if namespace:
            collection = f"{base}/namespaces/{namespace}/{self.plural}"
        else:
            collection = f"{base}/{self.cluster_plural}"
        return collection if name is None else f"{collection}/{name}"

    def every_namespace(self) -> str:
        """The path listing the namespaced reports of every namespace."""
        return f"/apis/{self.group}/{self.version}/{self.plural}"


WGPOLICY = ReportFormat(
    "wgpolicy",
    "wgpolicyk8s.io",
    "v1alpha2",
    "PolicyReport",
    "policyreports",
    "ClusterPolicyReport",
    "clusterpolicyreports",
)
OPENREPORTS = ReportFormat(
    "openreports",
    "openreports.io",
    "v1alpha1",
    "Report",
    "reports",
    "ClusterReport",
    "clusterreports",
)
FORMATS: Mapping[str, ReportFormat] = {f.name: f for f in (WGPOLICY, OPENREPORTS)}


def candidates(wanted: str) -> list[ReportFormat]:
    """The formats `--reports` may write, in order of preference (none for off)."""
    if wanted == "off":
        return []
    return [OPENREPORTS, WGPOLICY] if wanted == "auto" else [FORMATS[wanted]]
