"""Typed views of the objects the webhook reads.

Only the fields a rule reads are declared; everything else in an object
(managedFields, labels, the last-applied annotation...) is skipped by the
decoder without being built. Decoding is strict: a string field holding a
number is an unreadable object, never silently coerced. Absent and null both
read as None, which is exactly the comparison the transition rules need.

The views are msgspec structs, decoded straight from the request's bytes.
Their pydantic twins (`webhook.model.twins`) give the JSON Schema documents and the
words of the error message when an object does not read.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import msgspec

GROUP_MEMBER_HANDLE_ANNOTATION = "groupsnapshot.storage.k8s.io/volumeGroupSnapshotHandle"
ALLOW_VOLUME_MODE_CHANGE_ANNOTATION = "snapshot.storage.kubernetes.io/allow-volume-mode-change"


class Model(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A typed view: fields in snake_case here, camelCase on the wire.

    Every subclass says `frozen=True` again, as msgspec advises, so that type
    checkers see it; one that puts a required field after an optional one says
    `kw_only=True` again too (msgspec does not inherit that)."""


class OwnerReference(Model, frozen=True):
    kind: str | None = None


class ObjectMeta(Model, frozen=True):
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    deletion_timestamp: str | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None

    def annotation(self, key: str) -> str | None:
        return None if self.annotations is None else self.annotations.get(key)


class KubeObject(Model, frozen=True):
    api_version: str | None = None
    kind: str | None = None
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or ""

    @property
    def uid(self) -> str | None:
        return self.metadata.uid or None

    @property
    def deleting(self) -> bool:
        return self.metadata.deletion_timestamp is not None


class ObjectReference(Model, frozen=True):
    """The `volumeSnapshotRef` / `volumeGroupSnapshotRef` of a content."""

    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


# --- snapshot.storage.k8s.io ---------------------------------------------


class VolumeSnapshotSource(Model, frozen=True):
    persistent_volume_claim_name: str | None = None
    volume_snapshot_content_name: str | None = None


class VolumeSnapshotSpec(Model, frozen=True):
    source: VolumeSnapshotSource | None = None
    volume_snapshot_class_name: str | None = None


class VolumeSnapshotStatus(Model, frozen=True):
    bound_volume_snapshot_content_name: str | None = None
    ready_to_use: bool | None = None
    restore_size: str | int | None = None


class VolumeSnapshot(KubeObject, frozen=True):
    spec: VolumeSnapshotSpec | None = None
    status: VolumeSnapshotStatus | None = None

    @property
    def is_group_member(self) -> bool:
        refs = self.metadata.owner_references or []
        return any(ref.kind == "VolumeGroupSnapshot" for ref in refs)


class VolumeSnapshotContentSource(Model, frozen=True):
    volume_handle: str | None = None
    snapshot_handle: str | None = None


class VolumeSnapshotContentSpec(Model, frozen=True):
    deletion_policy: str | None = None
    driver: str | None = None
    source: VolumeSnapshotContentSource | None = None
    source_volume_mode: str | None = None
    volume_snapshot_class_name: str | None = None
    volume_snapshot_ref: ObjectReference | None = None


class VolumeSnapshotContent(KubeObject, frozen=True):
    spec: VolumeSnapshotContentSpec | None = None

    @property
    def is_group_member(self) -> bool:
        return self.metadata.annotation(GROUP_MEMBER_HANDLE_ANNOTATION) is not None


class VolumeSnapshotClass(KubeObject, frozen=True):
    driver: str | None = None
    parameters: dict[str, str] | None = None
    deletion_policy: str | None = None


# --- groupsnapshot.storage.k8s.io (every served version has these fields) ---


class VolumeGroupSnapshotSource(Model, frozen=True):
    selector: dict[str, Any] | None = None
    volume_group_snapshot_content_name: str | None = None


class VolumeGroupSnapshotSpec(Model, frozen=True):
    source: VolumeGroupSnapshotSource | None = None
    volume_group_snapshot_class_name: str | None = None


class VolumeGroupSnapshotStatus(Model, frozen=True):
    bound_volume_group_snapshot_content_name: str | None = None
    ready_to_use: bool | None = None


class VolumeGroupSnapshot(KubeObject, frozen=True):
    spec: VolumeGroupSnapshotSpec | None = None
    status: VolumeGroupSnapshotStatus | None = None


class GroupSnapshotHandles(Model, frozen=True):
    volume_group_snapshot_handle: str | None = None
    volume_snapshot_handles: list[str] | None = None


class VolumeGroupSnapshotContentSource(Model, frozen=True):
    volume_handles: list[str] | None = None
    group_snapshot_handles: GroupSnapshotHandles | None = None


class VolumeGroupSnapshotContentSpec(Model, frozen=True):
    deletion_policy: str | None = None
    driver: str | None = None
    source: VolumeGroupSnapshotContentSource | None = None
    volume_group_snapshot_class_name: str | None = None
    volume_group_snapshot_ref: ObjectReference | None = None


class VolumeGroupSnapshotContent(KubeObject, frozen=True):
    spec: VolumeGroupSnapshotContentSpec | None = None


class VolumeGroupSnapshotClass(KubeObject, frozen=True):
    driver: str | None = None
    parameters: dict[str, str] | None = None
    deletion_policy: str | None = None


# --- core objects read as state only ----------------------------------------


class TypedObjectReference(Model, frozen=True):
    """`spec.dataSource` (no namespace) or `spec.dataSourceRef` of a claim."""

    api_group: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None


class VolumeResourceRequirements(Model, frozen=True):
    requests: dict[str, str | int | float] | None = None


class PersistentVolumeClaimSpec(Model, frozen=True):
    storage_class_name: str | None = None
    volume_name: str | None = None
    volume_mode: str | None = None
    data_source: TypedObjectReference | None = None
    data_source_ref: TypedObjectReference | None = None
    resources: VolumeResourceRequirements | None = None


class ClaimMeta(ObjectMeta, frozen=True):
    """A claim's metadata: its labels too, which group snapshots select by."""

    labels: dict[str, str] | None = None


class PersistentVolumeClaim(KubeObject, frozen=True):
    metadata: ClaimMeta = msgspec.field(default_factory=ClaimMeta)
    spec: PersistentVolumeClaimSpec | None = None


class CSIPersistentVolumeSource(Model, frozen=True):
    driver: str | None = None


class PersistentVolumeSpec(Model, frozen=True):
    csi: CSIPersistentVolumeSource | None = None


class PersistentVolume(KubeObject, frozen=True):
    spec: PersistentVolumeSpec | None = None


class StorageClass(KubeObject, frozen=True):
    provisioner: str | None = None
