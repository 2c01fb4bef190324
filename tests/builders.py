"""Objects and AdmissionReviews shaped like what a kube-apiserver sends.

Metadata carries what the apiserver adds (uid, resourceVersion, generation,
creationTimestamp, managedFields), so tests exercise the same shapes as a
cluster does.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from webhook.decide.admission import Verdict, read_review
from webhook.decide.judge import decide
from webhook.model import kinds
from webhook.model.reading import parse_object
from webhook.rules import Policy
from webhook.state.index import StateIndex

EBS = "ebs.csi.aws.com"
GCE_PD = "pd.csi.storage.gke.io"
Obj = dict[str, Any]


def _uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def meta(
    name: str,
    namespace: str | None = None,
    *,
    uid: str | None = None,
    annotations: dict[str, str] | None = None,
    deleting: bool = False,
    owner_kind: str | None = None,
) -> Obj:
    metadata: Obj = {
        "name": name,
        "uid": uid or _uid(f"{namespace}/{name}"),
        "resourceVersion": "4711",
        "generation": 1,
        "creationTimestamp": "2026-11-21T11:24:35Z",
        "annotations": dict(annotations or {}),
        "managedFields": [
            {
                "apiVersion": "v1",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "time": "2026-11-21T11:24:35Z",
            }
        ],
    }
    if namespace is not None:
        metadata["namespace"] = namespace
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-21T12:00:00Z"
        metadata["finalizers"] = ["snapshot.storage.kubernetes.io/volumesnapshot-bound-protection"]
    if owner_kind is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "groupsnapshot.storage.k8s.io/v1",
                "kind": owner_kind,
                "name": "postgres-group-snap-1",
                "uid": "33350f59-7364-4365-b90f-a49ea7a781c1",
            }
        ]
    return metadata


def _prune(value: Obj) -> Obj:
    return {k: v for k, v in value.items() if v is not None}


def volume_snapshot(
    name: str,
    namespace: str = "shop",
    *,
    pvc: str | None = None,
    content: str | None = None,
    cls: str | None = None,
    bound: str | None = None,
    **meta_args: Any,
) -> Obj:
    obj: Obj = {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": meta(name, namespace, **meta_args),
        "spec": _prune(
            {
                "source": _prune(
                    {"persistentVolumeClaimName": pvc, "volumeSnapshotContentName": content}
                ),
                "volumeSnapshotClassName": cls,
            }
        ),
    }
    if bound is not None:
        obj["status"] = {"boundVolumeSnapshotContentName": bound, "readyToUse": False}
    return obj


def snapshot_content(
    name: str,
    *,
    driver: str = EBS,
    volume_handle: str | None = None,
    snapshot_handle: str | None = "snap-0a1b2c3d4e5f67890",
    ref: tuple[str, str] | None = ("shop", "orders-restore-snap"),
    ref_uid: str | None = None,
    cls: str | None = None,
    mode: str | None = "Filesystem",
    **meta_args: Any,
) -> Obj:
    spec: Obj = {
        "deletionPolicy": "Retain",
        "driver": driver,
        "source": _prune({"volumeHandle": volume_handle, "snapshotHandle": snapshot_handle}),
        "sourceVolumeMode": mode,
        "volumeSnapshotClassName": cls,
    }
    if ref is not None:
        spec["volumeSnapshotRef"] = _prune({"name": ref[1], "namespace": ref[0], "uid": ref_uid})
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotContent",
        "metadata": meta(name, **meta_args),
        "spec": _prune(spec),
    }


def snapshot_class(
    name: str,
    *,
    driver: str = EBS,
    default: str | None = None,
    parameters: dict[str, str] | None = None,
    deletion_policy: str = "Delete",
    group: bool = False,
    **meta_args: Any,
) -> Obj:
    family = kinds.GROUP if group else kinds.VOLUME
    annotations = {} if default is None else {family.default_annotation: default}
    obj: Obj = {
        "apiVersion": f"{family.api_group}/v1",
        "kind": family.class_kind,
        "metadata": meta(name, annotations=annotations, **meta_args),
        "driver": driver,
        "deletionPolicy": deletion_policy,
    }
    if parameters is not None:
        obj["parameters"] = parameters
    return obj


def storage_class(name: str, *, provisioner: str = EBS, **meta_args: Any) -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": meta(name, **meta_args),
        "provisioner": provisioner,
    }


def group_snapshot(
    name: str,
    namespace: str = "shop",
    *,
    selector: Obj | None = None,
    content: str | None = None,
    cls: str | None = None,
    bound: str | None = None,
    **meta_args: Any,
) -> Obj:
    obj: Obj = {
        "apiVersion": "groupsnapshot.storage.k8s.io/v1",
        "kind": "VolumeGroupSnapshot",
        "metadata": meta(name, namespace, **meta_args),
        "spec": _prune(
            {
                "source": _prune({"selector": selector, "volumeGroupSnapshotContentName": content}),
                "volumeGroupSnapshotClassName": cls,
            }
        ),
    }
    if bound is not None:
        obj["status"] = {"boundVolumeGroupSnapshotContentName": bound, "readyToUse": False}
    return obj


def group_content(
    name: str,
    *,
    driver: str = EBS,
    volume_handles: list[str] | None = None,
    group_handles: Obj | None = None,
    ref: tuple[str, str] | None = ("shop", "orders-group-restore"),
    ref_uid: str | None = None,
    cls: str | None = None,
    **meta_args: Any,
) -> Obj:
    if volume_handles is None and group_handles is None:
        group_handles = {
            "volumeGroupSnapshotHandle": "group-snap-0abc",
            "volumeSnapshotHandles": ["snap-0aa11bb22cc33dd44", "snap-0ee55ff66aa77bb88"],
        }
    spec: Obj = {
        "deletionPolicy": "Retain",
        "driver": driver,
        "source": _prune({"volumeHandles": volume_handles, "groupSnapshotHandles": group_handles}),
        "volumeGroupSnapshotClassName": cls,
    }
    if ref is not None:
        spec["volumeGroupSnapshotRef"] = _prune(
            {"name": ref[1], "namespace": ref[0], "uid": ref_uid}
        )
    return {
        "apiVersion": "groupsnapshot.storage.k8s.io/v1",
        "kind": "VolumeGroupSnapshotContent",
        "metadata": meta(name, **meta_args),
        "spec": _prune(spec),
    }


def claim(
    name: str,
    namespace: str = "shop",
    *,
    snapshot: str | None = None,
    via: str = "dataSource",
    snapshot_namespace: str | None = None,
    storage: str | int = "100Gi",
    storage_class: str | None = "gp3",
    volume_mode: str | None = None,
    **meta_args: Any,
) -> Obj:
    """A PersistentVolumeClaim, restored from `snapshot` when one is named."""
    spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage}},
        "storageClassName": storage_class,
        "volumeMode": volume_mode,
    }
    if snapshot is not None:
        source = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": snapshot}
        if snapshot_namespace is not None:
            source["namespace"] = snapshot_namespace
        spec[via] = source
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta(name, namespace, **meta_args),
        "spec": _prune(spec),
    }


def changed(obj: Obj, **updates: Any) -> Obj:
    """A deep copy with dotted paths set (`"spec.driver": "x"`); None removes the key."""
    result = copy.deepcopy(obj)
    for dotted, value in updates.items():
        *parents, leaf = dotted.replace("__", ".").split(".")
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return result


def review(
    obj: Obj | None,
    *,
    operation: str = "CREATE",
    old: Obj | None = None,
    dry_run: bool = False,
    sub_resource: str | None = None,
    api_version: str = "admission.k8s.io/v1",
    uid: str = "705ab4f5-6393-11e8-b7cc-42010a800002",
) -> Obj:
    """An AdmissionReview request for `obj` (or `old` on DELETE)."""
    subject = obj if obj is not None else old
    assert subject is not None
    info = kinds.by_api_version(subject["apiVersion"], subject["kind"])
    assert info is not None
    version = subject["apiVersion"].rpartition("/")[2]
    gvk = {"group": info.api_group, "version": version, "kind": info.kind}
    gvr = {"group": info.api_group, "version": version, "resource": info.plural}
    request: Obj = {
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": subject["metadata"]["name"],
        "operation": operation,
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {"kind": f"{operation.title()}Options", "apiVersion": "meta.k8s.io/v1"},
    }
    if sub_resource is not None:
        request["subResource"] = sub_resource
    if "namespace" in subject["metadata"]:
        request["namespace"] = subject["metadata"]["namespace"]
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}


# --- judging ------------------------------------------------------------------


def judge(state: StateIndex, body: Obj, policy: Policy | None = None) -> Verdict:
    """The verdict for an AdmissionReview body, as the webhook decides it."""
    parsed = read_review(body)
    assert parsed.request is not None, parsed.error
    return decide(parsed.request, state, policy or Policy())


def denied_ids(verdict: Verdict) -> set[str]:
    return {f.rule_id for f in verdict.findings if f.denies}


def warned_ids(verdict: Verdict) -> set[str]:
    return {f.rule_id for f in verdict.findings if not f.denies}


def add(state: StateIndex, *objs: Obj) -> None:
    """Put objects into the state, as if the cluster already had them."""
    for obj in objs:
        info = kinds.by_api_version(obj["apiVersion"], obj["kind"])
        assert info is not None
        state.put_object(info, parse_object(info, obj, "object"))


def table(
    rows: Sequence[tuple[Any, ...]], names: tuple[str, ...] = ("body", "denied", "warned")
) -> tuple[tuple[str, ...], list[Any]]:
    """parametrize() arguments for rows of (case id, *values)."""
    return names, [pytest.param(*row[1:], id=row[0]) for row in rows]


def assert_outcome(verdict: Verdict, denied: set[str], warned: set[str] | None = None) -> None:
    """Exactly these rules denied (and warned, when given), with the matching verdict."""
    assert denied_ids(verdict) == denied, verdict.message
    if warned is not None:
        assert warned_ids(verdict) == warned, verdict.warnings
    assert verdict.allowed is (not denied)
    assert verdict.code == (403 if denied else 200)


# --- mutating JSON documents -----------------------------------------------------


def json_paths(value: Any, prefix: tuple[Any, ...] = (), items: int = 3) -> list[tuple[Any, ...]]:
    """Every path in a JSON document (the first `items` entries of each list)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += json_paths(child, (*prefix, key), items)
    elif isinstance(value, list):
        for index, child in enumerate(value[:items]):
            found += json_paths(child, (*prefix, index), items)
    return found


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of `document` with the value at `path` replaced."""
    if not path:
        return value
    result = copy.deepcopy(document)
    node = result
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return result
