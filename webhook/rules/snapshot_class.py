"""Rules for VolumeSnapshotClass and VolumeGroupSnapshotClass.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from webhook.model import objects
from webhook.model.kinds import Family, Role
from webhook.model.records import ClassRecord
from webhook.rules.base import (
    CrossContext,
    Mode,
    Operation,
    Problem,
    Rule,
    Stage,
    define,
    immutable,
    pending_note,
    show,
)

SnapshotClass = objects.VolumeSnapshotClass | objects.VolumeGroupSnapshotClass


def default_annotation(family: Family, cls: SnapshotClass) -> Iterator[Problem]:
    value = cls.metadata.annotation(family.default_annotation)
    if value is not None and value not in ("true", "false"):
        path = family.default_annotation_path
        yield Problem(
            path,
            f'{path} is {show(value)}: only "true" marks a default, so the snapshot controller '
            "treats this class as not default",
        )


def driver_immutable(family: Family, old: SnapshotClass, new: SnapshotClass) -> Iterator[Problem]:
    yield from immutable("driver", old.driver, new.driver)


def parameters_immutable(
    family: Family, old: SnapshotClass, new: SnapshotClass
) -> Iterator[Problem]:
    yield from immutable("parameters", old.parameters, new.parameters)


def deletion_policy_immutable(
    family: Family, old: SnapshotClass, new: SnapshotClass
) -> Iterator[Problem]:
    yield from immutable("deletionPolicy", old.deletion_policy, new.deletion_policy)


def default_unique(ctx: CrossContext) -> Iterator[Problem]:
    cls = ctx.record
    assert isinstance(cls, ClassRecord)
    if not cls.is_default or not cls.driver:
        return
    old = ctx.old_record
    if (
        ctx.operation is Operation.UPDATE
        and isinstance(old, ClassRecord)
        and old.default_value == "true"
        and old.driver == cls.driver
    ):
        return  # already the default for this driver: this update does not make it one
    for other in ctx.state.default_classes(cls.driver):
        if other.is_default and not other.id.same_object(cls.id):
            path = ctx.family.default_annotation_path
            yield Problem(
                path,
                f'{path} is "true", but {ctx.family.class_kind} "{other.id.name}" is already '
                f'the default for driver "{cls.driver}"{pending_note(other)}',
            )


RULES: list[Rule[Any]] = [
    *define(
        "class.default.annotation",
        Role.CLASS,
        Stage.OBJECT,
        default_annotation,
        'the default-class annotation is "true" or "false"',
        default=Mode.WARN,
    ),
    *define(
        "class.driver.immutable",
        Role.CLASS,
        Stage.TRANSITION,
        driver_immutable,
        "driver never changes",
    ),
    *define(
        "class.parameters.immutable",
        Role.CLASS,
        Stage.TRANSITION,
        parameters_immutable,
        "parameters never change",
    ),
    *define(
        "class.deletion-policy.immutable",
        Role.CLASS,
        Stage.TRANSITION,
        deletion_policy_immutable,
        "deletionPolicy never changes",
    ),
    *define(
        "class.default.unique",
        Role.CLASS,
        Stage.CROSS,
        default_unique,
        "at most one live default class per driver",
    ),
]
