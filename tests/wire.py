"""AdmissionReview requests as a kube-apiserver puts them on the wire.

Beyond what the rules read, a real request carries `requestKind` and
`requestResource` (the version the client sent, when the webhook is registered
for another one and `matchPolicy: Equivalent` converted it), `userInfo`,
`options` (CreateOptions, UpdateOptions or DeleteOptions), `dryRun`, and an
object with `managedFields`, a `generation`, a `creationTimestamp` and, after
a client-side apply, the last-applied annotation. A DELETE has no `object`
and the stored one as `oldObject`; a status update names its `subResource`.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from webhook.model import kinds

Obj = dict[str, Any]

ADMIN = {
    "username": "kubernetes-admin",
    "groups": ["system:masters", "system:authenticated"],
    "extra": {"authentication.kubernetes.io/credential-id": ["X509SHA256=0f1e2d3c4b5a"]},
}
OPTIONS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def stored(obj: Obj, manager: str = "kubectl-client-side-apply") -> Obj:
    """`obj` as the apiserver holds it: server-set metadata and managedFields."""
    result = copy.deepcopy(obj)
    meta = result.setdefault("metadata", {})
    meta.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(obj, sort_keys=True))))
    meta.setdefault("creationTimestamp", "2026-11-21T11:24:50Z")
    meta.setdefault("generation", 1)
    fields = {f"f:{key}": {} for key in result if key not in ("apiVersion", "kind", "metadata")}
    meta["managedFields"] = [
        {
            "apiVersion": result["apiVersion"],
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}, **fields},
            "manager": manager,
            "operation": "Apply" if manager == "kubectl" else "Update",
            "time": "2026-11-21T11:24:50Z",
        }
    ]
    if manager == "kubectl-client-side-apply":
        applied = {k: v for k, v in obj.items() if k != "status"}
        meta.setdefault("annotations", {})[LAST_APPLIED] = json.dumps(applied) + "\n"
    return result


def wire_review(
    obj: Obj | None,
    operation: str = "CREATE",
    *,
    old: Obj | None = None,
    dry_run: bool = False,
    sent_version: str | None = None,
    review_version: str = "admission.k8s.io/v1",
    sub_resource: str | None = None,
    manager: str = "kubectl-client-side-apply",
) -> Obj:
    """The body a kube-apiserver POSTs for this request."""
    subject = obj if obj is not None else old
    assert subject is not None
    group, _, version = subject["apiVersion"].rpartition("/")
    info = kinds.by_group_kind(group, subject["kind"])
    assert info is not None
    meta = subject["metadata"]
    request: Obj = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": subject["kind"]},
        "resource": {"group": group, "version": version, "resource": info.plural},
        "requestKind": {
            "group": group,
            "version": sent_version or version,
            "kind": subject["kind"],
        },
        "requestResource": {
            "group": group,
            "version": sent_version or version,
            "resource": info.plural,
        },
        "name": meta["name"],
        "operation": operation,
        "userInfo": ADMIN,
        "object": stored(obj, manager) if obj is not None else None,
        "oldObject": stored(old, manager) if old is not None else None,
        "dryRun": dry_run,
        "options": {"kind": OPTIONS[operation], "apiVersion": "meta.k8s.io/v1"},
    }
    if operation == "DELETE":
        request["options"]["propagationPolicy"] = "Background"
    else:
        request["options"]["fieldManager"] = manager
    if info.namespaced:
        request["namespace"] = meta.get("namespace", "default")
    if sub_resource:
        request["subResource"] = sub_resource
        request["requestSubResource"] = sub_resource
    return {"kind": "AdmissionReview", "apiVersion": review_version, "request": request}
