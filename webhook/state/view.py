"""The narrow interface through which rules read the cluster's state.

Every question is one a rule asks, answered in constant time from an index.
Rules never scan; the index decides how to answer. Implementations return only
what is stored: excluding the object under review is the caller's job, because
only the caller knows which object that is.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from webhook.model.kinds import Family
from webhook.model.records import (
    ClaimRecord,
    ClassRecord,
    ContentRecord,
    SnapshotRecord,
    StorageClassRecord,
    VolumeRecord,
)


class FamilyView(Protocol):
    """Snapshots, contents and classes of one family (single-volume or group)."""

    def snapshot(self, namespace: str, name: str) -> SnapshotRecord | None: ...

    def content(self, name: str) -> ContentRecord | None: ...

    def snapshot_class(self, name: str) -> ClassRecord | None: ...

    def default_classes(self, driver: str) -> Sequence[ClassRecord]:
        """Classes annotated default for `driver`, deleting ones included."""
        ...

    def snapshots_naming(self, content_name: str) -> Sequence[SnapshotRecord]:
        """Snapshots whose spec source or status binding names the content."""
        ...

    def contents_referencing(self, namespace: str, name: str) -> Sequence[ContentRecord]:
        """Contents whose snapshot ref points at namespace/name."""
        ...

    def uses_driver(self, driver: str) -> bool:
        """True when some class or content names this CSI driver."""
        ...

    def contents_needing_class(self, class_name: str) -> Sequence[ContentRecord]:
        """Contents naming the class whose deletion deletes their storage snapshot
        (`deletionPolicy: Delete`): the CSI sidecar reads the class to do it."""
        ...

    def snapshots_awaiting_default(self) -> Sequence[SnapshotRecord]:
        """Live dynamic snapshots with no class and no content yet."""
        ...


class VolumeView(Protocol):
    """The core objects that tell which CSI driver a claim belongs to."""

    def claim(self, namespace: str, name: str) -> ClaimRecord | None: ...

    def claims_in(self, namespace: str) -> Sequence[ClaimRecord]:
        """Every claim in a namespace."""
        ...

    def claims_restoring(self, namespace: str, name: str) -> Sequence[ClaimRecord]:
        """Claims whose data source is the VolumeSnapshot namespace/name."""
        ...

    def volume(self, name: str) -> VolumeRecord | None: ...

    def storage_class(self, name: str) -> StorageClassRecord | None: ...

    def is_csi_driver(self, driver: str) -> bool:
        """True when a snapshot or group-snapshot class or content names `driver`."""
        ...


class StateView(VolumeView, Protocol):
    """Everything a rule may read: both snapshot families and the core objects."""

    def family(self, family: Family) -> FamilyView: ...
