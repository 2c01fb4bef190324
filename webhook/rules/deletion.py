"""Warnings before a harmful delete.

A delete is never denied: a down or wrong webhook must never keep anyone from
cleaning up. These rules only say what the delete will break that exists now,
so that `kubectl delete` (and `--dry-run=server`) shows it first. Each sees the
object as stored (the request's oldObject) and the state.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from webhook.model.kinds import VOLUME, Role
from webhook.model.records import ClassRecord, ContentRecord, SnapshotRecord
from webhook.rules.base import CrossContext, Mode, Problem, Rule, Stage, define, listed
from webhook.rules.snapshot import claim_driver

NAME_PATH = "metadata.name"


def class_in_use(ctx: CrossContext) -> Iterator[Problem]:
    cls = ctx.record
    assert isinstance(cls, ClassRecord)
    family = ctx.family
    contents = ctx.state.contents_needing_class(cls.id.name)
    if not contents:
        return
    yield Problem(
        NAME_PATH,
        f"{len(contents)} {family.content_kind}(s) with deletionPolicy Delete name "
        f'"{cls.id.name}" in {family.class_name_path}: {listed(contents, 3)}; the CSI '
        "sidecar needs the class to create and check them",
        key=[c.id.name for c in contents],
    )


def last_default(ctx: CrossContext) -> Iterator[Problem]:
    cls = ctx.record
    assert isinstance(cls, ClassRecord)
    family, driver = ctx.family, cls.driver
    if cls.default_value != "true" or not driver:
        return
    if any(
        c.is_default and not c.id.same_object(cls.id) for c in ctx.state.default_classes(driver)
    ):
        return
    waiting: list[SnapshotRecord] = []
    why: dict[str, str] = {}  # by snapshot: how it is known to need this driver's default
    for snap in ctx.state.snapshots_awaiting_default():
        why[snap.id.display] = "driver not known"
        if family is VOLUME and snap.pvc_name:
            source = claim_driver(ctx.volumes, snap.id.namespace, snap.pvc_name)
            if source is not None and source.driver != driver:
                continue  # its own driver's default serves it
            if source is not None:
                why[snap.id.display] = "its claim's driver"
        waiting.append(snap)
    if not waiting:
        return
    shown = listed(waiting, 3, note=lambda s: why[s.id.display])
    yield Problem(
        family.default_annotation_path,
        f'{family.class_kind} "{cls.id.name}" is the only default class of driver "{driver}", '
        f"and {len(waiting)} {family.snapshot_kind}(s) without {family.class_name_path} wait "
        f"for one: {shown}; they stay unprovisioned until another class is made default",
        key=[s.id.display for s in waiting],
    )


def restore_pending(ctx: CrossContext) -> Iterator[Problem]:
    snap = ctx.record
    assert isinstance(snap, SnapshotRecord)
    claims = [c for c in ctx.volumes.claims_restoring(snap.id.namespace, snap.id.name) if c.waiting]
    if not claims:
        return
    yield Problem(
        NAME_PATH,
        f"{len(claims)} unbound PersistentVolumeClaim(s) restore from "
        f'"{snap.id.display}": {listed(claims, 3)}; the provisioner does not restore from a '
        "snapshot being deleted, which is kept while they wait",
        key=[c.id.display for c in claims],
    )


def bound_content(ctx: CrossContext) -> Iterator[Problem]:
    content = ctx.record
    assert isinstance(content, ContentRecord)
    family = ctx.family
    bound = [
        s
        for s in ctx.state.snapshots_naming(content.id.name)
        if not s.deleting and (not content.ref_uid or not s.id.uid or s.id.uid == content.ref_uid)
    ]
    if not bound:
        return
    yield Problem(
        NAME_PATH,
        f"{family.snapshot_kind} {listed(bound, 3)}, not being deleted, is bound to "
        f'{family.content_kind} "{content.id.name}": the content cannot finish deleting before '
        "the snapshot is deleted; delete the snapshot instead",
        key=[s.id.display for s in bound],
    )


RULES: list[Rule[Any]] = [
    *define(
        "class.delete.in-use",
        Role.CLASS,
        Stage.DELETION,
        class_in_use,
        "warns when deleting a class that contents with deletionPolicy Delete still name",
        default=Mode.WARN,
    ),
    *define(
        "class.delete.last-default",
        Role.CLASS,
        Stage.DELETION,
        last_default,
        "warns when deleting a driver's only default class while snapshots wait for it",
        default=Mode.WARN,
    ),
    *define(
        "snapshot.delete.restore-pending",
        Role.SNAPSHOT,
        Stage.DELETION,
        restore_pending,
        "warns when deleting a snapshot that a claim not yet bound restores from",
        default=Mode.WARN,
        families=[VOLUME],
    ),
    *define(
        "content.delete.bound",
        Role.CONTENT,
        Stage.DELETION,
        bound_content,
        "warns when deleting a content before the live snapshot bound to it",
        default=Mode.WARN,
    ),
]
