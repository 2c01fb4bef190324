"""Which kinds the webhook knows, and how the two snapshot families name things.

VolumeSnapshot and VolumeGroupSnapshot (and their contents and classes) obey
the same invariants under different field names. A `Family` carries those
names so that one rule function serves both, and so that every message names
the field exactly as the user wrote it.

Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from webhook.model import objects

SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
GROUP_SNAPSHOT_GROUP = "groupsnapshot.storage.k8s.io"


class Role(enum.Enum):
    SNAPSHOT = "snapshot"
    CONTENT = "content"
    CLASS = "class"
    PVC = "pvc"
    PV = "pv"
    STORAGE_CLASS = "storage-class"


@dataclass(frozen=True)
class Family:
    """Names of one snapshot family (single-volume or group)."""

    prefix: str  # prepended to rule ids: "" or "group-"
    api_group: str
    snapshot_kind: str
    content_kind: str
    class_kind: str
    content_name_field: str  # in snapshot spec.source
    bound_content_field: str  # in snapshot status
    class_name_field: str  # in snapshot spec and content spec
    ref_field: str  # in content spec
    default_annotation: str

    def rule_id(self, base: str) -> str:
        return self.prefix + base

    @property
    def content_name_path(self) -> str:
        return f"spec.source.{self.content_name_field}"

    @property
    def bound_content_path(self) -> str:
        return f"status.{self.bound_content_field}"

    @property
    def class_name_path(self) -> str:
        return f"spec.{self.class_name_field}"

    @property
    def ref_path(self) -> str:
        return f"spec.{self.ref_field}"

    @property
    def default_annotation_path(self) -> str:
        return f"metadata.annotations[{self.default_annotation}]"


VOLUME = Family(
    prefix="",
    api_group=SNAPSHOT_GROUP,
    snapshot_kind="VolumeSnapshot",
    content_kind="VolumeSnapshotContent",
    class_kind="VolumeSnapshotClass",
    content_name_field="volumeSnapshotContentName",
    bound_content_field="boundVolumeSnapshotContentName",
    class_name_field="volumeSnapshotClassName",
    ref_field="volumeSnapshotRef",
    default_annotation="snapshot.storage.kubernetes.io/is-default-class",
)

GROUP = Family(
    prefix="group-",
    api_group=GROUP_SNAPSHOT_GROUP,
    snapshot_kind="VolumeGroupSnapshot",
    content_kind="VolumeGroupSnapshotContent",
    class_kind="VolumeGroupSnapshotClass",
    content_name_field="volumeGroupSnapshotContentName",
    bound_content_field="boundVolumeGroupSnapshotContentName",
    class_name_field="volumeGroupSnapshotClassName",
    ref_field="volumeGroupSnapshotRef",
    default_annotation="groupsnapshot.storage.kubernetes.io/is-default-class",
)

FAMILIES = (VOLUME, GROUP)


@dataclass(frozen=True)
class KindInfo:
    api_group: str
    kind: str
    plural: str
    namespaced: bool
    role: Role
    family: Family | None
    model: type[objects.KubeObject]
    versions: tuple[str, ...]  # every version the published CRDs serve or have served
    served: tuple[str, ...] = ()  # the versions today's CRDs serve (default: all of them)

    @property
    def served_versions(self) -> tuple[str, ...]:
        return self.served or self.versions

    @property
    def reviewed(self) -> bool:
        """True for the kinds this webhook admits: the six snapshot kinds, and claims."""
        return self.family is not None or self.role is Role.PVC

    @property
    def rules_family(self) -> Family | None:
        """The family whose rules judge this kind (claims restore single-volume snapshots)."""
        return VOLUME if self.role is Role.PVC else self.family


_SNAPSHOT_VERSIONS = ("v1", "v1beta1")
_GROUP_VERSIONS = ("v1", "v1beta2", "v1beta1", "v1alpha1")

KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        SNAPSHOT_GROUP,
        "VolumeSnapshot",
        "volumesnapshots",
        True,
        Role.SNAPSHOT,
        VOLUME,
        objects.VolumeSnapshot,
        _SNAPSHOT_VERSIONS,
        ("v1",),  # v1beta1 is no longer served by the CRDs
    ),
    KindInfo(
        SNAPSHOT_GROUP,
        "VolumeSnapshotContent",
        "volumesnapshotcontents",
        False,
        Role.CONTENT,
        VOLUME,
        objects.VolumeSnapshotContent,
        _SNAPSHOT_VERSIONS,
        ("v1",),  # v1beta1 is no longer served by the CRDs
    ),
    KindInfo(
        SNAPSHOT_GROUP,
        "VolumeSnapshotClass",
        "volumesnapshotclasses",
        False,
        Role.CLASS,
        VOLUME,
        objects.VolumeSnapshotClass,
        _SNAPSHOT_VERSIONS,
        ("v1",),  # v1beta1 is no longer served by the CRDs
    ),
    KindInfo(
        GROUP_SNAPSHOT_GROUP,
        "VolumeGroupSnapshot",
        "volumegroupsnapshots",
        True,
        Role.SNAPSHOT,
        GROUP,
        objects.VolumeGroupSnapshot,
        _GROUP_VERSIONS,
        ("v1", "v1beta2", "v1beta1"),  # v1alpha1 is no longer served
    ),
    KindInfo(
        GROUP_SNAPSHOT_GROUP,
        "VolumeGroupSnapshotContent",
        "volumegroupsnapshotcontents",
        False,
        Role.CONTENT,
        GROUP,
        objects.VolumeGroupSnapshotContent,
        _GROUP_VERSIONS,
        ("v1", "v1beta2", "v1beta1"),  # v1alpha1 is no longer served
    ),
    KindInfo(
        GROUP_SNAPSHOT_GROUP,
        "VolumeGroupSnapshotClass",
        "volumegroupsnapshotclasses",
        False,
        Role.CLASS,
        GROUP,
        objects.VolumeGroupSnapshotClass,
        _GROUP_VERSIONS,
        ("v1", "v1beta2", "v1beta1"),  # v1alpha1 is no longer served
    ),
    KindInfo(
        "",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        True,
        Role.PVC,
        None,
        objects.PersistentVolumeClaim,
        ("v1",),
    ),
    KindInfo(
        "",
        "PersistentVolume",
        "persistentvolumes",
        False,
        Role.PV,
        None,
        objects.PersistentVolume,
        ("v1",),
    ),
    KindInfo(
        "storage.k8s.io",
        "StorageClass",
        "storageclasses",
        False,
        Role.STORAGE_CLASS,
        None,
        objects.StorageClass,
        ("v1", "v1beta1"),
    ),
)

_BY_GROUP_KIND = {(info.api_group, info.kind): info for info in KINDS}


def by_group_kind(api_group: str, kind: str) -> KindInfo | None:
    return _BY_GROUP_KIND.get((api_group, kind))


def by_api_version(api_version: str, kind: str) -> KindInfo | None:
    """Look a kind up from a manifest's `apiVersion` ("group/version" or "v1")."""
    group = api_version.rpartition("/")[0]
    return by_group_kind(group, kind)


def for_role(family: Family, role: Role) -> KindInfo:
    kind = {
        Role.SNAPSHOT: family.snapshot_kind,
        Role.CONTENT: family.content_kind,
        Role.CLASS: family.class_kind,
    }[role]
    info = by_group_kind(family.api_group, kind)
    if info is None:  # pragma: no cover - the table above is complete
        raise KeyError(kind)
    return info


@dataclass(frozen=True)
class Judged:
    """What rules judge of an object on UPDATE: top-level fields and annotations.
    Anything else (finalizers, labels, other annotations, status) never blocks
    an update; the webhook configuration's matchConditions are rendered from
    this too, so that the apiserver does not even send such an update."""

    fields: tuple[str, ...]
    annotations: tuple[str, ...] = ()


def judged(info: KindInfo) -> Judged:
    if info.role is Role.CLASS:
        assert info.family is not None
        return Judged(("driver", "parameters", "deletionPolicy"), (info.family.default_annotation,))
    if info.role is Role.CONTENT:
        return Judged(("spec",), (objects.ALLOW_VOLUME_MODE_CHANGE_ANNOTATION,))
    return Judged(("spec",))
