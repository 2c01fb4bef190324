"""The Kubernetes API calls `serve` makes in each mode, as RBAC grants. Pure.

The install's roles are checked against this (every overlay grants exactly
what its mode uses), and the server's calls against the fake apiserver are
checked to stay inside it.
"""

from __future__ import annotations

from typing import NamedTuple

from webhook.model import report_kinds
from webhook.model.kinds import KINDS
from webhook.settings import Settings


class Grant(NamedTuple):
    group: str
    resource: str
    verb: str
    names: tuple[str, ...] = ()  # resourceNames; empty: any


CONFIGURATIONS = ("admissionregistration.k8s.io", "validatingwebhookconfigurations")


def cluster_grants(settings: Settings) -> set[Grant]:
    """What a ClusterRole must grant."""
    grants = {
        Grant(info.api_group, info.plural, verb)
        for info in KINDS
        for verb in ("get", "list", "watch")
    }
    # who may allow a volume-mode change is asked of the cluster's RBAC
    grants.add(Grant("authorization.k8s.io", "subjectaccessreviews", "create"))
    names = tuple(settings.webhook_configurations)
    if settings.register_webhook:
        grants.add(Grant(*CONFIGURATIONS, "create"))  # a create cannot be limited by name
        grants |= {Grant(*CONFIGURATIONS, verb, names) for verb in ("get", "update")}
        owner = (settings.webhook_owner,)
        grants.add(Grant("rbac.authorization.k8s.io", "clusterroles", "get", owner))
    elif settings.manage_certificates and names:
        grants |= {Grant(*CONFIGURATIONS, verb, names) for verb in ("get", "update")}
    # the reports leader lists and writes its reports (named snapshot-webhook)
    for fmt in report_kinds.candidates(settings.reports):
        for plural in (fmt.plural, fmt.cluster_plural):
            grants |= {Grant(fmt.group, plural, verb) for verb in ("list", "create")}
            named = (report_kinds.NAME,)
            grants |= {Grant(fmt.group, plural, verb, named) for verb in ("update", "delete")}
    return grants


def namespace_grants(settings: Settings) -> set[Grant]:
    """What a Role in the webhook's own namespace must grant."""
    grants: set[Grant] = set()
    if settings.claims:
        verbs = ("create", "get", "update", "delete", "list")
        grants |= {Grant("coordination.k8s.io", "leases", verb) for verb in verbs}
    if settings.reports != "off":  # the Lease that elects the reports' writer
        lease = (report_kinds.LEASE,)
        grants.add(Grant("coordination.k8s.io", "leases", "create"))
        grants |= {
            Grant("coordination.k8s.io", "leases", verb, lease) for verb in ("get", "update")
        }
    if settings.manage_certificates:
        secret = (settings.certificate_secret,)
        grants.add(Grant("", "secrets", "create"))
        grants |= {Grant("", "secrets", verb, secret) for verb in ("get", "update")}
    return grants
