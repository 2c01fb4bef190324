"""Compact records: only what the cross-object rules read about an object.

The state index holds these instead of whole objects, so that memory per
object stays small whatever the object carried (managedFields, last-applied
annotations). They are frozen msgspec structs outside the garbage collector's
tracking (they hold only strings, flags and each other, so no cycle can form):
smaller than slotted dataclasses, and ten times cheaper to make. The object
under review is turned into the same record, so that cross-object rules see it
and the stored objects in one shape.

Pure: no I/O.
"""

from __future__ import annotations

import sys
from typing import Any

import msgspec

from webhook.model import objects
from webhook.model.kinds import Family, KindInfo, Role


class Identity(msgspec.Struct, frozen=True, gc=False):
    namespace: str  # "" for cluster-scoped objects
    name: str
    uid: str | None

    def same_object(self, other: Identity) -> bool:
        """True when `other` is this object: same name, or same uid."""
        if self.namespace == other.namespace and self.name == other.name:
            return True
        return self.uid is not None and self.uid == other.uid

    @property
    def display(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


class ClassRecord(msgspec.Struct, frozen=True, gc=False):
    id: Identity
    deleting: bool
    driver: str | None
    default_value: str | None  # the raw is-default-class annotation
    pending: bool = False  # admitted here, not yet seen in the cluster

    @property
    def is_default(self) -> bool:
        """Exactly "true", as the snapshot controller reads it; deleting classes never count."""
        return self.default_value == "true" and not self.deleting


class SnapshotRecord(msgspec.Struct, frozen=True, gc=False):
    id: Identity
    deleting: bool
    pvc_name: str | None
    content_name: str | None
    bound_content_name: str | None
    class_name: str | None
    is_group_member: bool
    ready_to_use: bool | None = None
    restore_size: str | int | None = None
    pending: bool = False
    # Read only for a group snapshot under review; stored ones leave it unset.
    selector: dict[str, Any] | None = None

    @property
    def awaits_default_class(self) -> bool:
        """True for a live dynamic snapshot with no class, not yet bound: the snapshot
        controller gives it the default class of its driver when it provisions it."""
        return not (
            self.deleting
            or self.class_name
            or self.content_name
            or self.bound_content_name
            or self.is_group_member
        )

    def names_content(self) -> tuple[str, ...]:
        """Contents this snapshot claims; a deleting snapshot claims nothing."""
        if self.deleting:
            return ()
        names = {self.content_name, self.bound_content_name} - {None, ""}
        return tuple(sorted(n for n in names if n is not None))


class ContentRecord(msgspec.Struct, frozen=True, gc=False):
    id: Identity
    deleting: bool
    driver: str | None
    class_name: str | None
    ref_namespace: str | None
    ref_name: str | None
    ref_uid: str | None
    is_group_member: bool
    source_volume_mode: str | None = None
    allow_volume_mode_change: bool = False
    pending: bool = False
    deletion_policy: str | None = None

    @property
    def deletes_backing_snapshot(self) -> bool:
        """True when deleting this content deletes the storage snapshot too, which
        the CSI sidecar does with its class's parameters and secrets."""
        return self.deletion_policy == "Delete"

    @property
    def ref_key(self) -> tuple[str, str] | None:
        if not self.ref_namespace or not self.ref_name:
            return None
        return (self.ref_namespace, self.ref_name)


class SnapshotSource(msgspec.Struct, frozen=True, gc=False):
    """The VolumeSnapshot a claim is restored from, and where that was written."""

    namespace: str
    name: str
    path: str  # spec.dataSourceRef or spec.dataSource
    cross_namespace: bool


class ClaimRecord(msgspec.Struct, frozen=True, gc=False):
    id: Identity
    storage_class_name: str | None
    volume_name: str | None
    labels: dict[str, str] | None = None  # what group snapshots select by
    restore_from: SnapshotSource | None = None  # the snapshot it is restored from
    # Read only for a claim under review (restore rules); stored claims leave them unset.
    requested_storage: str | int | float | None = None
    volume_mode: str | None = None

    @property
    def waiting(self) -> bool:
        """True while no volume is bound to the claim (provisioning still to come)."""
        return not self.volume_name


class VolumeRecord(msgspec.Struct, frozen=True, gc=False):
    id: Identity
    csi_driver: str | None


class StorageClassRecord(msgspec.Struct, frozen=True, gc=False):
    id: Identity
    provisioner: str | None


Record = (
    ClassRecord | SnapshotRecord | ContentRecord | ClaimRecord | VolumeRecord | StorageClassRecord
)


def shared(value: str | None) -> str | None:
    """One copy of a string many records hold (namespaces, class and driver names)."""
    return None if value is None else sys.intern(value)


def identity(obj: objects.KubeObject) -> Identity:
    return Identity(sys.intern(obj.namespace), obj.name, obj.uid)


def _snapshot(obj: objects.KubeObject) -> SnapshotRecord:
    if isinstance(obj, objects.VolumeSnapshot):
        spec, status = obj.spec, obj.status
        source = spec.source if spec else None
        return SnapshotRecord(
            id=identity(obj),
            deleting=obj.deleting,
            pvc_name=source.persistent_volume_claim_name if source else None,
            content_name=source.volume_snapshot_content_name if source else None,
            bound_content_name=status.bound_volume_snapshot_content_name if status else None,
            class_name=shared(spec.volume_snapshot_class_name if spec else None),
            is_group_member=obj.is_group_member,
            ready_to_use=status.ready_to_use if status else None,
            restore_size=status.restore_size if status else None,
        )
    assert isinstance(obj, objects.VolumeGroupSnapshot)
    gspec, gstatus = obj.spec, obj.status
    gsource = gspec.source if gspec else None
    return SnapshotRecord(
        id=identity(obj),
        deleting=obj.deleting,
        pvc_name=None,
        content_name=gsource.volume_group_snapshot_content_name if gsource else None,
        bound_content_name=gstatus.bound_volume_group_snapshot_content_name if gstatus else None,
        class_name=shared(gspec.volume_group_snapshot_class_name if gspec else None),
        is_group_member=False,
        ready_to_use=gstatus.ready_to_use if gstatus else None,
    )


def _content(obj: objects.KubeObject) -> ContentRecord:
    ref: objects.ObjectReference | None
    if isinstance(obj, objects.VolumeSnapshotContent):
        spec = obj.spec
        ref = spec.volume_snapshot_ref if spec else None
        allow = obj.metadata.annotation(objects.ALLOW_VOLUME_MODE_CHANGE_ANNOTATION) == "true"
        return ContentRecord(
            id=identity(obj),
            deleting=obj.deleting,
            driver=shared(spec.driver if spec else None),
            class_name=shared(spec.volume_snapshot_class_name if spec else None),
            ref_namespace=shared(ref.namespace if ref else None),
            ref_name=ref.name if ref else None,
            ref_uid=ref.uid if ref else None,
            is_group_member=obj.is_group_member,
            source_volume_mode=shared(spec.source_volume_mode if spec else None),
            allow_volume_mode_change=allow,
            deletion_policy=shared(spec.deletion_policy if spec else None),
        )
    assert isinstance(obj, objects.VolumeGroupSnapshotContent)
    gspec = obj.spec
    ref = gspec.volume_group_snapshot_ref if gspec else None
    return ContentRecord(
        id=identity(obj),
        deleting=obj.deleting,
        driver=shared(gspec.driver if gspec else None),
        class_name=shared(gspec.volume_group_snapshot_class_name if gspec else None),
        ref_namespace=shared(ref.namespace if ref else None),
        ref_name=ref.name if ref else None,
        ref_uid=ref.uid if ref else None,
        is_group_member=False,
        deletion_policy=shared(gspec.deletion_policy if gspec else None),
    )


def _class(obj: objects.KubeObject, family: Family) -> ClassRecord:
    assert isinstance(obj, objects.VolumeSnapshotClass | objects.VolumeGroupSnapshotClass)
    return ClassRecord(
        id=identity(obj),
        deleting=obj.deleting,
        driver=obj.driver,
        default_value=obj.metadata.annotation(family.default_annotation),
    )


SNAPSHOT_API_GROUP = "snapshot.storage.k8s.io"


def snapshot_source(claim: objects.PersistentVolumeClaim) -> SnapshotSource | None:
    """The VolumeSnapshot a claim restores, from dataSourceRef (or else dataSource)."""
    spec = claim.spec
    if spec is None:
        return None
    ref, path = spec.data_source_ref, "spec.dataSourceRef"
    if ref is None:
        ref, path = spec.data_source, "spec.dataSource"
    if ref is None or ref.api_group != SNAPSHOT_API_GROUP or ref.kind != "VolumeSnapshot":
        return None
    namespace = (ref.namespace if path == "spec.dataSourceRef" else None) or claim.namespace
    return SnapshotSource(namespace, ref.name or "", path, namespace != claim.namespace)


def claim_under_review(claim: objects.PersistentVolumeClaim) -> ClaimRecord:
    """A claim's record with what the restore rules read."""
    spec = claim.spec
    requests = spec.resources.requests if spec and spec.resources else None
    return ClaimRecord(
        identity(claim),
        spec.storage_class_name if spec else None,
        spec.volume_name if spec else None,
        restore_from=snapshot_source(claim),
        requested_storage=(requests or {}).get("storage"),
        volume_mode=spec.volume_mode if spec else None,
    )


def to_record(info: KindInfo, obj: objects.KubeObject) -> Record:
    """The record of `obj`, which must be an instance of `info.model`."""
    if info.family is not None:
        if info.role is Role.SNAPSHOT:
            return _snapshot(obj)
        if info.role is Role.CONTENT:
            return _content(obj)
        return _class(obj, info.family)
    if isinstance(obj, objects.PersistentVolumeClaim):
        spec = obj.spec
        labels = obj.metadata.labels
        return ClaimRecord(
            identity(obj),
            spec.storage_class_name if spec else None,
            spec.volume_name if spec else None,
            {shared(k) or k: shared(v) or v for k, v in labels.items()} if labels else None,
            restore_from=snapshot_source(obj),
        )
    if isinstance(obj, objects.PersistentVolume):
        csi = obj.spec.csi if obj.spec else None
        return VolumeRecord(identity(obj), csi.driver if csi else None)
    assert isinstance(obj, objects.StorageClass)
    return StorageClassRecord(identity(obj), obj.provisioner)
