"""Rules for a PersistentVolumeClaim restored from a VolumeSnapshot (CREATE only).

Each mistake here is otherwise found minutes later, from a Pending claim and a
provisioner event. Quantities are compared as Kubernetes quantities (`10Gi` is
not `10G`), with the official client's parser.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

from webhook.model.kinds import VOLUME, Role
from webhook.model.records import ClaimRecord, ContentRecord, SnapshotRecord, SnapshotSource
from webhook.rules.base import CrossContext, Mode, Problem, Rule, Stage, define, show

REQUEST_PATH = "spec.resources.requests.storage"


def _restore(ctx: CrossContext) -> tuple[ClaimRecord, SnapshotSource] | None:
    claim = ctx.record
    if isinstance(claim, ClaimRecord) and claim.restore_from is not None:
        return claim, claim.restore_from
    return None


def _snapshot(ctx: CrossContext) -> tuple[ClaimRecord, SnapshotSource, SnapshotRecord] | None:
    found = _restore(ctx)
    if found is None:
        return None
    claim, source = found
    snap = ctx.state.snapshot(source.namespace, source.name)
    return None if snap is None else (claim, source, snap)


def _content(ctx: CrossContext, snap: SnapshotRecord) -> ContentRecord | None:
    return ctx.state.content(snap.bound_content_name) if snap.bound_content_name else None


def _quantity(value: object) -> Decimal | None:
    try:
        return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, ArithmeticError):
        return None


def snapshot_exists(ctx: CrossContext) -> Iterator[Problem]:
    found = _restore(ctx)
    if found is not None:
        _, source = found
        if ctx.state.snapshot(source.namespace, source.name) is None:
            yield Problem(
                source.path,
                f"{source.path} names VolumeSnapshot {source.namespace}/{source.name}, which "
                "does not exist: the claim stays Pending until it does",
            )


def snapshot_ready(ctx: CrossContext) -> Iterator[Problem]:
    found = _snapshot(ctx)
    if found is not None and found[2].ready_to_use is not True:
        _, source, snap = found
        yield Problem(
            source.path,
            f"VolumeSnapshot {snap.id.display} is not ready to use (status.readyToUse is "
            f"{show(snap.ready_to_use)}): the claim stays Pending until it is",
        )


def size(ctx: CrossContext) -> Iterator[Problem]:
    found = _snapshot(ctx)
    if found is None:
        return
    claim, _, snap = found
    if claim.requested_storage is None or snap.restore_size is None:
        return
    requested, needed = _quantity(claim.requested_storage), _quantity(snap.restore_size)
    if requested is None:
        yield Problem(
            REQUEST_PATH,
            f"{REQUEST_PATH} {show(claim.requested_storage)} is not a quantity",
            soft=True,
        )
        return
    if needed is not None and requested < needed:
        yield Problem(
            REQUEST_PATH,
            f"{REQUEST_PATH} is {show(claim.requested_storage)} ({requested:.0f} bytes), smaller "
            f"than VolumeSnapshot {snap.id.display} status.restoreSize "
            f"{show(snap.restore_size)} ({needed:.0f} bytes)",
        )


def driver_match(ctx: CrossContext) -> Iterator[Problem]:
    found = _snapshot(ctx)
    if found is None:
        return
    claim, _, snap = found
    content = _content(ctx, snap)
    if content is None or not content.driver or not claim.storage_class_name:
        return
    storage_class = ctx.volumes.storage_class(claim.storage_class_name)
    if storage_class is None or not storage_class.provisioner:
        return
    if storage_class.provisioner == content.driver:
        return
    csi = ctx.volumes.is_csi_driver(storage_class.provisioner)
    message = (
        f'spec.storageClassName is "{storage_class.id.name}", provisioner '
        f'"{storage_class.provisioner}", but VolumeSnapshot {snap.id.display} was taken by '
        f'"{content.driver}"'
    )
    if not csi:  # a warning: short enough that the apiserver keeps all of it (< 256)
        message = (
            f'spec.storageClassName "{storage_class.id.name}" has provisioner '
            f'"{storage_class.provisioner}", no CSI driver any class or content names '
            f'(maybe a migrated in-tree name); the snapshot was taken by "{content.driver}"'
        )
    yield Problem("spec.storageClassName", message, soft=not csi)


def volume_mode(ctx: CrossContext) -> Iterator[Problem]:
    found = _snapshot(ctx)
    if found is None:
        return
    claim, _, snap = found
    content = _content(ctx, snap)
    if content is None or content.source_volume_mode is None or content.allow_volume_mode_change:
        return
    mode = claim.volume_mode or "Filesystem"
    if mode != content.source_volume_mode:
        yield Problem(
            "spec.volumeMode",
            f'spec.volumeMode is "{mode}"{"" if claim.volume_mode else " (the default)"}, but '
            f'content "{content.id.name}" has spec.sourceVolumeMode '
            f'"{content.source_volume_mode}" and does not carry the annotation '
            'snapshot.storage.kubernetes.io/allow-volume-mode-change: "true"',
        )


def cross_namespace(ctx: CrossContext) -> Iterator[Problem]:
    found = _restore(ctx)
    if found is not None and found[1].cross_namespace:
        claim, source = found
        yield Problem(
            "spec.dataSourceRef.namespace",
            f'spec.dataSourceRef.namespace is "{source.namespace}", not the claim\'s namespace '
            f'"{claim.id.namespace}": this needs the CrossNamespaceVolumeDataSource feature gate '
            f'and a ReferenceGrant in "{source.namespace}" that lets PersistentVolumeClaims from '
            f'"{claim.id.namespace}" use VolumeSnapshots',
        )


def _rule(base: str, check: Any, meaning: str, default: Mode = Mode.DENY) -> list[Rule[Any]]:
    return define(base, Role.PVC, Stage.CROSS, check, meaning, default=default, families=[VOLUME])


RULES: list[Rule[Any]] = [
    *_rule(
        "restore.snapshot.exists", snapshot_exists, "the snapshot restored from exists", Mode.WARN
    ),
    *_rule(
        "restore.snapshot.ready",
        snapshot_ready,
        "the snapshot restored from is ready to use",
        Mode.WARN,
    ),
    *_rule("restore.size", size, "the claim requests at least the snapshot's restore size"),
    *_rule(
        "restore.driver-match",
        driver_match,
        "the claim's StorageClass provisioner is the driver that took the snapshot "
        "(a warning when the provisioner is not a known CSI driver)",
    ),
    *_rule(
        "restore.volume-mode",
        volume_mode,
        "the claim's volume mode is the snapshot's source volume mode, unless the content "
        "allows a change",
    ),
    *_rule(
        "restore.cross-namespace",
        cross_namespace,
        "a snapshot in another namespace needs a feature gate and a ReferenceGrant",
        Mode.WARN,
    ),
]
