"""Rules for VolumeSnapshotContent and VolumeGroupSnapshotContent.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from webhook.model import objects
from webhook.model.kinds import GROUP, VOLUME, Family, Role
from webhook.model.objects import ALLOW_VOLUME_MODE_CHANGE_ANNOTATION
from webhook.model.records import ContentRecord, SnapshotRecord
from webhook.rules.base import (
    CrossContext,
    Mode,
    Operation,
    Option,
    Problem,
    Rule,
    Stage,
    define,
    exactly_one,
    immutable,
    non_empty_string,
    pending_note,
    show,
)

Content = objects.VolumeSnapshotContent | objects.VolumeGroupSnapshotContent


def _non_empty_list(value: object) -> str | None:
    return None if isinstance(value, list) and value else "must be a non-empty array"


def _group_handles(value: object) -> str | None:
    assert isinstance(value, objects.GroupSnapshotHandles)
    if not value.volume_group_snapshot_handle:
        return "must have a non-empty volumeGroupSnapshotHandle"
    if not value.volume_snapshot_handles:
        return "must have a non-empty volumeSnapshotHandles list"
    return None


def source_one_of(family: Family, content: Content) -> Iterator[Problem]:
    source = content.spec.source if content.spec else None
    if isinstance(source, objects.VolumeSnapshotContentSource):
        options: list[Option] = [
            ("volumeHandle", source.volume_handle, non_empty_string),
            ("snapshotHandle", source.snapshot_handle, non_empty_string),
        ]
    elif isinstance(source, objects.VolumeGroupSnapshotContentSource):
        options = [
            ("volumeHandles", source.volume_handles, _non_empty_list),
            ("groupSnapshotHandles", source.group_snapshot_handles, _group_handles),
        ]
    else:
        names = (
            ("volumeHandle", "snapshotHandle")
            if family is VOLUME
            else ("volumeHandles", "groupSnapshotHandles")
        )
        options = [(name, None, non_empty_string) for name in names]
    yield from exactly_one("spec.source", source is not None, options)


def _ref(content: Content) -> objects.ObjectReference | None:
    if content.spec is None:
        return None
    if isinstance(content.spec, objects.VolumeSnapshotContentSpec):
        return content.spec.volume_snapshot_ref
    return content.spec.volume_group_snapshot_ref


def ref_required(family: Family, content: Content) -> Iterator[Problem]:
    ref, path = _ref(content), family.ref_path
    if ref is None:
        yield Problem(path, f"{path} is missing: its name and namespace must both be set")
        return
    for field, value in (("name", ref.name), ("namespace", ref.namespace)):
        if not value:
            yield Problem(
                f"{path}.{field}", f"{path}.{field} must be a non-empty string, got {show(value)}"
            )


def source_immutable(family: Family, old: Content, new: Content) -> Iterator[Problem]:
    yield from immutable(
        "spec.source", old.spec.source if old.spec else None, new.spec.source if new.spec else None
    )


def ref_immutable(family: Family, old: Content, new: Content) -> Iterator[Problem]:
    old_ref, new_ref, path = _ref(old), _ref(new), family.ref_path
    for field in ("name", "namespace"):
        yield from immutable(
            f"{path}.{field}",
            getattr(old_ref, field, None),
            getattr(new_ref, field, None),
        )
    old_uid = old_ref.uid if old_ref else None
    new_uid = new_ref.uid if new_ref else None
    if old_uid is not None and new_uid != old_uid:  # set once ("" counts), then fixed
        yield Problem(
            f"{path}.uid",
            f"{path}.uid may be set once and never changed or removed: was {show(old_uid)}, "
            f"now {show(new_uid)}",
        )


def driver_immutable(family: Family, old: Content, new: Content) -> Iterator[Problem]:
    yield from immutable(
        "spec.driver", old.spec.driver if old.spec else None, new.spec.driver if new.spec else None
    )


def volume_mode_immutable(family: Family, old: Content, new: Content) -> Iterator[Problem]:
    assert isinstance(old, objects.VolumeSnapshotContent)
    assert isinstance(new, objects.VolumeSnapshotContent)
    yield from immutable(
        "spec.sourceVolumeMode",
        old.spec.source_volume_mode if old.spec else None,
        new.spec.source_volume_mode if new.spec else None,
    )


def class_immutable(family: Family, old: Content, new: Content) -> Iterator[Problem]:
    assert isinstance(old, objects.VolumeGroupSnapshotContent)
    assert isinstance(new, objects.VolumeGroupSnapshotContent)
    was = old.spec.volume_group_snapshot_class_name if old.spec else None
    now = new.spec.volume_group_snapshot_class_name if new.spec else None
    if was is not None and now != was:  # free to set once ("" counts as set)
        path = family.class_name_path
        yield Problem(path, f"{path} is immutable once set: was {show(was)}, now {show(now)}")


# --- cross-object ---------------------------------------------------------------


def _is_stale(content: ContentRecord, snapshot: SnapshotRecord | None) -> bool:
    """A ref uid that is not the snapshot's current uid: the snapshot was re-created
    (or, when no snapshot of that name exists, deleted). A snapshot whose uid is
    not known (a manifest written without one) proves nothing either way."""
    if not content.ref_uid:
        return False
    if snapshot is None:
        return True
    return snapshot.id.uid is not None and content.ref_uid != snapshot.id.uid


def binding_one_to_one(ctx: CrossContext) -> Iterator[Problem]:
    content = ctx.record
    assert isinstance(content, ContentRecord)
    if content.ref_key is None:
        return
    family, path = ctx.family, ctx.family.ref_path
    namespace, name = content.ref_key
    target = f"{family.snapshot_kind} {namespace}/{name}"
    snap = ctx.state.snapshot(namespace, name)
    if snap is not None and _is_stale(content, snap):
        return  # points at an earlier incarnation: content.ref.stale-uid reports it
    for other in ctx.state.contents_referencing(namespace, name):
        if other.deleting or other.id.same_object(content.id):
            continue
        if content.ref_uid and other.ref_uid and content.ref_uid != other.ref_uid:
            continue  # two refs to different incarnations never conflict
        if _is_stale(other, snap):
            continue
        yield Problem(
            path,
            f'{path} points at {target}, but {family.content_kind} "{other.id.name}" is '
            f"already bound to it{pending_note(other)}",
        )
    if snap is None or snap.deleting:
        return
    for field_path, claimed in (
        (family.content_name_path, snap.content_name),
        (family.bound_content_path, snap.bound_content_name),
    ):
        if claimed and claimed != content.id.name:
            yield Problem(
                path,
                f'{path} points at {target}, but that snapshot names content "{claimed}" in '
                f"{field_path}",
            )


def ref_stale_uid(ctx: CrossContext) -> Iterator[Problem]:
    content = ctx.record
    assert isinstance(content, ContentRecord)
    if content.ref_key is None or not content.ref_uid:
        return
    snap = ctx.state.snapshot(*content.ref_key)
    if snap is not None and _is_stale(content, snap):
        path = f"{ctx.family.ref_path}.uid"
        yield Problem(
            path,
            f'{path} is "{content.ref_uid}", but {ctx.family.snapshot_kind} '
            f"{snap.id.display} has uid {show(snap.id.uid)}: the controller will treat this "
            "content as bound to a snapshot that no longer exists",
        )


def class_driver_match(ctx: CrossContext) -> Iterator[Problem]:
    content = ctx.record
    assert isinstance(content, ContentRecord)
    if not content.driver:
        return
    family = ctx.family
    if content.class_name:
        cls = ctx.state.snapshot_class(content.class_name)
        if cls is not None and cls.driver and cls.driver != content.driver:
            yield Problem(
                family.class_name_path,
                f'{family.class_name_path} is "{cls.id.name}", whose driver is "{cls.driver}", '
                f'but spec.driver is "{content.driver}"',
            )
    if ctx.operation is not Operation.CREATE:
        return
    for snap in ctx.state.snapshots_naming(content.id.name):
        if snap.deleting or not snap.class_name:
            continue
        cls = ctx.state.snapshot_class(snap.class_name)
        if cls is not None and cls.driver and cls.driver != content.driver:
            yield Problem(
                "spec.driver",
                f'spec.driver is "{content.driver}", but {family.snapshot_kind} '
                f'{snap.id.display} names this content and class "{cls.id.name}", whose '
                f'driver is "{cls.driver}": binding would fail',
            )


# Setting this annotation lets a restore turn a Filesystem snapshot into a Block
# volume or back, which can expose a filesystem's raw blocks: KEP-3141 meant it for
# trusted backup software only. Who may set it is the cluster's RBAC: this verb on
# volumesnapshotcontents, granted by the ClusterRole below (deploy/).
VOLUME_MODE_CHANGE_RULE = "content.volume-mode-change.authorized"
VOLUME_MODE_CHANGE_VERB = "change-volume-mode"
VOLUME_MODE_CHANGE_ROLE = "snapshot-webhook:volume-mode-change"
VOLUME_MODE_CHANGE_PATH = f"metadata.annotations[{ALLOW_VOLUME_MODE_CHANGE_ANNOTATION}]"


def volume_mode_change_authorized(ctx: CrossContext) -> Iterator[Problem]:
    """Flags a CREATE that sets the annotation to "true", or an UPDATE that adds it
    or changes its value to "true". Whether the requesting user may is decided
    outside the rules (by the cluster's RBAC or an allow-list): this rule only
    says that the question must be asked. Removing the annotation is never asked."""
    content = ctx.record
    assert isinstance(content, ContentRecord)
    if not content.allow_volume_mode_change:
        return
    old = ctx.old_record
    if isinstance(old, ContentRecord) and old.allow_volume_mode_change:
        return  # already set: this update does not set it
    yield Problem(
        VOLUME_MODE_CHANGE_PATH,
        f'{VOLUME_MODE_CHANGE_PATH} is "true", which only a user granted the verb '
        f'"{VOLUME_MODE_CHANGE_VERB}" on volumesnapshotcontents.snapshot.storage.k8s.io '
        f"(ClusterRole {VOLUME_MODE_CHANGE_ROLE}) may set",
    )


RULES: list[Rule[Any]] = [
    *define(
        "content.source.one-of",
        Role.CONTENT,
        Stage.OBJECT,
        source_one_of,
        "exactly one source is set, and it is non-empty",
    ),
    *define(
        "content.ref.required",
        Role.CONTENT,
        Stage.OBJECT,
        ref_required,
        "the snapshot ref has a non-empty name and namespace",
    ),
    *define(
        "content.source.immutable",
        Role.CONTENT,
        Stage.TRANSITION,
        source_immutable,
        "spec.source never changes",
    ),
    *define(
        "content.ref.immutable",
        Role.CONTENT,
        Stage.TRANSITION,
        ref_immutable,
        "the ref's name and namespace never change; its uid is set once",
    ),
    *define(
        "content.driver.immutable",
        Role.CONTENT,
        Stage.TRANSITION,
        driver_immutable,
        "spec.driver never changes",
    ),
    *define(
        "content.volume-mode.immutable",
        Role.CONTENT,
        Stage.TRANSITION,
        volume_mode_immutable,
        "spec.sourceVolumeMode is never added, changed or removed",
        families=[VOLUME],
    ),
    *define(
        "content.class.immutable",
        Role.CONTENT,
        Stage.TRANSITION,
        class_immutable,
        "the class name never changes or disappears once set",
        families=[GROUP],
    ),
    *define(
        "content.binding.one-to-one",
        Role.CONTENT,
        Stage.CROSS,
        binding_one_to_one,
        "one live content is bound to a snapshot, and the snapshot names no other",
    ),
    *define(
        "content.ref.stale-uid",
        Role.CONTENT,
        Stage.CROSS,
        ref_stale_uid,
        "the ref's uid is the current uid of the snapshot it names",
        default=Mode.WARN,
        families=[VOLUME],
    ),
    *define(
        "content.class.driver-match",
        Role.CONTENT,
        Stage.CROSS,
        class_driver_match,
        "the content's driver is the driver of its class and of its snapshot's class",
    ),
    *define(
        VOLUME_MODE_CHANGE_RULE,
        Role.CONTENT,
        Stage.AUTHORIZATION,
        volume_mode_change_authorized,
        "only an authorized user sets the allow-volume-mode-change annotation",
        families=[VOLUME],
    ),
]
