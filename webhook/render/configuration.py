"""The ValidatingWebhookConfiguration, rendered from code. Pure: builds objects.

The server registers exactly this (`serve --register-webhook`), and the static
variant for GitOps (deploy/overlays/static-configuration) is this written to a
file, so the two never differ.

Choices, entry by entry:
- failurePolicy Fail: when no replica answers, CREATE and UPDATE of snapshot
  objects fail rather than pass unchecked; an Ignore policy would silently
  turn every rule off exactly when the webhook is unhealthy.
- matchConditions: an UPDATE that changes none of the fields the rules judge
  (finalizers, labels, other annotations, managedFields) is never sent, so a
  webhook that is down never blocks cleanup. The judged fields come from
  `webhook.kinds.judged`, the table the webhook itself decides "unchanged" by.
  DELETE is never sent to these entries.
- DELETE goes to entries of its own, with failurePolicy Ignore whatever the
  other entries use: a webhook that is down or slow never blocks a delete (the
  apiserver waits at most DELETE_TIMEOUT_SECONDS, then deletes). The webhook
  never denies a delete; it warns of what the delete breaks. Every DELETE of
  those kinds is sent (no matchConditions), and only the kinds that have a
  deletion rule on are registered.
- sideEffects NoneOnDryRun: a non-dry-run admission that takes a unique slot
  claims it with a Lease; dry runs never claim.
- namespaceSelector: objects in a namespace labelled
  snapshot-webhook.io/ignore=true are not sent (the emergency opt-out).
- Every field the apiserver would default is set explicitly, so a stored
  configuration compares equal to a rendered one and nothing is rewritten.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from webhook.model.kinds import GROUP_SNAPSHOT_GROUP, KINDS, SNAPSHOT_GROUP, KindInfo, judged
from webhook.render.policies import unchanged
from webhook.rules import CATALOG, Policy
from webhook.rules.base import Mode, Stage

NAME = "snapshot-webhook"
OPT_OUT_LABEL = "snapshot-webhook.io/ignore"
TIMEOUT_SECONDS = 5
DELETE_TIMEOUT_SECONDS = 2
PATH = "/validate"
MANAGED_BY = {"app.kubernetes.io/managed-by": "snapshot-webhook"}


def annotation_unchanged(key: str) -> str:
    """The annotation is as it was: absent on both sides, or equal."""

    def present(root: str) -> str:
        return f"(has({root}.metadata.annotations) && '{key}' in {root}.metadata.annotations)"

    new, old = present("object"), present("oldObject")
    return (
        f"({new} == {old}) && (!{new} || "
        f"object.metadata.annotations['{key}'] == oldObject.metadata.annotations['{key}'])"
    )


def judged_change(infos: Iterable[KindInfo]) -> str:
    """CEL that is true for every request except an UPDATE leaving every judged
    field of these kinds as it was (the union: a superset is always safe)."""
    fields: dict[str, None] = {}
    annotations: dict[str, None] = {}
    for info in infos:
        what = judged(info)
        fields.update(dict.fromkeys(what.fields))
        annotations.update(dict.fromkeys(what.annotations))
    same = [unchanged(name) for name in fields] + [annotation_unchanged(k) for k in annotations]
    return "request.operation != 'UPDATE' || !(" + " && ".join(f"({s})" for s in same) + ")"


RESTORES_A_SNAPSHOT = (
    "(has(object.spec.dataSourceRef)"
    " && has(object.spec.dataSourceRef.apiGroup)"
    f" && object.spec.dataSourceRef.apiGroup == '{SNAPSHOT_GROUP}'"
    " && object.spec.dataSourceRef.kind == 'VolumeSnapshot')"
    " || (!has(object.spec.dataSourceRef)"
    " && has(object.spec.dataSource)"
    " && has(object.spec.dataSource.apiGroup)"
    f" && object.spec.dataSource.apiGroup == '{SNAPSHOT_GROUP}'"
    " && object.spec.dataSource.kind == 'VolumeSnapshot')"
)


GROUPS = (
    ("snapshots", SNAPSHOT_GROUP, ["v1"]),
    ("groupsnapshots", GROUP_SNAPSHOT_GROUP, ["v1", "v1beta2", "v1beta1"]),
)
# Kinds whose deletes some rule judges, whatever the policy (the default).
DELETE_WARNED = frozenset(r.kind for r in CATALOG if r.stage is Stage.DELETION)


def warned_kinds(policy: Policy) -> frozenset[str]:
    """Kinds whose deletes a rule judges under `policy` (a rule turned off judges none)."""
    return frozenset(
        r.kind for r in CATALOG if r.stage is Stage.DELETION and policy.mode(r) is not Mode.OFF
    )


def _kinds_of(group: str) -> list[KindInfo]:
    return [i for i in KINDS if i.reviewed and i.api_group == group]


def _entry(
    name: str,
    rule: dict[str, Any],
    condition: tuple[str, str] | None,
    service: dict[str, Any],
    failure_policy: str,
    ca_bundle: str | None,
) -> dict[str, Any]:
    client: dict[str, Any] = {"service": dict(service)}
    if ca_bundle:
        client["caBundle"] = ca_bundle
    if condition is None:  # a delete warning: never blocks, no side effects
        return {
            "name": name,
            "admissionReviewVersions": ["v1", "v1beta1"],
            "clientConfig": client,
            "failurePolicy": "Ignore",
            "matchPolicy": "Equivalent",
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": OPT_OUT_LABEL, "operator": "NotIn", "values": ["true"]}
                ]
            },
            "objectSelector": {},
            "rules": [rule],
            "sideEffects": "None",
            "timeoutSeconds": DELETE_TIMEOUT_SECONDS,
        }
    return {
        "name": name,
        "admissionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": client,
        "failurePolicy": failure_policy,
        "matchPolicy": "Equivalent",
        "namespaceSelector": {
            "matchExpressions": [{"key": OPT_OUT_LABEL, "operator": "NotIn", "values": ["true"]}]
        },
        "objectSelector": {},
        "rules": [rule],
        "sideEffects": "NoneOnDryRun",
        "timeoutSeconds": TIMEOUT_SECONDS,
        "matchConditions": [{"name": condition[0], "expression": condition[1]}],
    }


def webhooks(
    service: str,
    namespace: str,
    *,
    port: int = 443,
    failure_policy: str = "Fail",
    ca_bundle: str | None = None,
    warned_deletes: Collection[str] = DELETE_WARNED,
) -> list[dict[str, Any]]:
    """The entries: snapshot kinds, group-snapshot kinds, restoring claims, then
    the deletes of the kinds in `warned_deletes` (kind names), by group."""
    ref = {"name": service, "namespace": namespace, "path": PATH, "port": port}
    entries = []
    deletes = []
    for name, group, versions in GROUPS:
        covered = _kinds_of(group)
        warned = [i for i in covered if i.kind in warned_deletes]
        if warned:
            delete_rule = {
                "apiGroups": [group],
                "apiVersions": versions,
                "operations": ["DELETE"],
                "resources": [i.plural for i in warned],
                "scope": "*",
            }
            deletes.append(
                _entry(
                    f"{name}-deletes.warnings.snapshot-webhook.io",
                    delete_rule,
                    None,
                    ref,
                    "Ignore",
                    ca_bundle,
                )
            )
        rule = {
            "apiGroups": [group],
            "apiVersions": versions,
            "operations": ["CREATE", "UPDATE"],
            "resources": [i.plural for i in covered],
            "scope": "*",
        }
        condition = ("changes-a-judged-field", judged_change(covered))
        entries.append(
            _entry(
                f"{name}.validation.snapshot-webhook.io",
                rule,
                condition,
                ref,
                failure_policy,
                ca_bundle,
            )
        )
    return [
        *entries,
        # claims are judged once, when created, and only those restoring a snapshot
        _entry(
            "restores.validation.snapshot-webhook.io",
            {
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "operations": ["CREATE"],
                "resources": ["persistentvolumeclaims"],
                "scope": "Namespaced",
            },
            ("restores-a-volume-snapshot", RESTORES_A_SNAPSHOT),
            ref,
            failure_policy,
            ca_bundle,
        ),
        *deletes,
    ]


def configuration(
    service: str,
    namespace: str,
    *,
    name: str = NAME,
    failure_policy: str = "Fail",
    ca_bundle: str | None = None,
    owner: dict[str, Any] | None = None,
    warned_deletes: Collection[str] = DELETE_WARNED,
) -> dict[str, Any]:
    """The whole ValidatingWebhookConfiguration; `owner` is an ownerReference
    (the garbage collector deletes the configuration with its owner)."""
    metadata: dict[str, Any] = {"name": name}
    if owner is not None:  # registered by the server, not declared
        metadata["labels"] = dict(MANAGED_BY)
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": metadata,
        "webhooks": webhooks(
            service,
            namespace,
            failure_policy=failure_policy,
            ca_bundle=ca_bundle,
            warned_deletes=warned_deletes,
        ),
    }
