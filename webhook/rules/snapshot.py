"""Rules for VolumeSnapshot and VolumeGroupSnapshot.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from webhook.model import objects
from webhook.model.kinds import GROUP, VOLUME, Family, Role
from webhook.model.records import ClaimRecord, SnapshotRecord
from webhook.model.selectors import InvalidSelectorError, matches
from webhook.rules.base import (
    CrossContext,
    Mode,
    Option,
    Problem,
    Rule,
    Stage,
    any_value,
    define,
    exactly_one,
    immutable,
    non_empty_string,
    pending_note,
    show,
)
from webhook.state.view import VolumeView

Snapshot = objects.VolumeSnapshot | objects.VolumeGroupSnapshot


def _member_claim_name(value: object) -> str | None:
    # The snapshot controller writes group members with an empty claim name.
    return None if isinstance(value, str) else "must be a string"


def source_one_of(family: Family, snap: Snapshot) -> Iterator[Problem]:
    source = snap.spec.source if snap.spec else None
    if isinstance(snap, objects.VolumeSnapshot):
        vsource = source if isinstance(source, objects.VolumeSnapshotSource) else None
        claim_check = _member_claim_name if snap.is_group_member else non_empty_string
        options: list[Option] = [
            (
                "persistentVolumeClaimName",
                vsource.persistent_volume_claim_name if vsource else None,
                claim_check,
            ),
            (
                "volumeSnapshotContentName",
                vsource.volume_snapshot_content_name if vsource else None,
                non_empty_string,
            ),
        ]
    else:
        gsource = source if isinstance(source, objects.VolumeGroupSnapshotSource) else None
        options = [
            ("selector", gsource.selector if gsource else None, any_value),
            (
                "volumeGroupSnapshotContentName",
                gsource.volume_group_snapshot_content_name if gsource else None,
                non_empty_string,
            ),
        ]
    yield from exactly_one("spec.source", source is not None, options)


def class_non_empty(family: Family, snap: Snapshot) -> Iterator[Problem]:
    name = _class_name(snap)
    if name == "":
        path = family.class_name_path
        yield Problem(
            path, f"{path} must not be the empty string (omit it to use the default class)"
        )


def _class_name(snap: Snapshot) -> str | None:
    if isinstance(snap, objects.VolumeSnapshot):
        return snap.spec.volume_snapshot_class_name if snap.spec else None
    return snap.spec.volume_group_snapshot_class_name if snap.spec else None


def source_immutable(family: Family, old: Snapshot, new: Snapshot) -> Iterator[Problem]:
    yield from immutable(
        "spec.source",
        old.spec.source if old.spec else None,
        new.spec.source if new.spec else None,
    )


# --- cross-object ---------------------------------------------------------------


def binding_one_to_one(ctx: CrossContext) -> Iterator[Problem]:
    snap = ctx.record
    assert isinstance(snap, SnapshotRecord)
    name = snap.content_name
    if not name:
        return
    family, path = ctx.family, ctx.family.content_name_path
    claimed = False
    for other in ctx.state.snapshots_naming(name):
        if other.deleting or other.id.same_object(snap.id):
            continue
        claimed = True
        where = (
            family.content_name_path if other.content_name == name else (family.bound_content_path)
        )
        yield Problem(
            path,
            f'{path} is "{name}", but {family.snapshot_kind} {other.id.display} already '
            f"names that content in {where}{pending_note(other)}",
        )
    content = ctx.state.content(name)
    if content is None:
        if not claimed:  # one-to-one wins over the missing-content warning
            yield Problem(
                path,
                f'{path} is "{name}", which does not exist yet: the snapshot stays unbound '
                "until it does",
                soft=True,
            )
        return
    if content.deleting:
        return
    if content.ref_key != (snap.id.namespace, snap.id.name):
        ref = "/".join(part or "" for part in (content.ref_namespace, content.ref_name))
        yield Problem(
            path,
            f'{path} is "{name}", but that content\'s {family.ref_path} points at '
            f'{show(ref)}, not "{snap.id.display}"',
        )


def class_exists(ctx: CrossContext) -> Iterator[Problem]:
    snap = ctx.record
    assert isinstance(snap, SnapshotRecord)
    if snap.class_name and ctx.state.snapshot_class(snap.class_name) is None:
        path = ctx.family.class_name_path
        yield Problem(
            path, f'{path} is "{snap.class_name}", but no {ctx.family.class_kind} has that name'
        )


@dataclass(frozen=True)
class DriverSource:
    """The CSI driver behind a claim, and where it was read."""

    driver: str
    origin: str
    exact: bool  # False when read from a StorageClass provisioner of an unbound claim


def claim_driver(volumes: VolumeView, namespace: str, claim_name: str) -> DriverSource | None:
    claim = volumes.claim(namespace, claim_name)
    if claim is None:
        return None
    if claim.volume_name:
        pv = volumes.volume(claim.volume_name)
        if pv is None or pv.csi_driver is None:
            return None
        origin = f'PersistentVolume "{pv.id.name}" spec.csi.driver'
        return DriverSource(pv.csi_driver, origin, exact=True)
    if claim.storage_class_name:
        sc = volumes.storage_class(claim.storage_class_name)
        if sc is None or sc.provisioner is None:
            return None
        origin = f'StorageClass "{sc.id.name}" provisioner (claim not bound yet)'
        return DriverSource(sc.provisioner, origin, exact=False)
    return None


def class_driver_match(ctx: CrossContext) -> Iterator[Problem]:
    snap = ctx.record
    assert isinstance(snap, SnapshotRecord)
    if not snap.class_name:
        return
    family, path = ctx.family, ctx.family.class_name_path
    cls = ctx.state.snapshot_class(snap.class_name)
    if snap.content_name:
        content = ctx.state.content(snap.content_name)
        if content is None:
            return
        if content.class_name and content.class_name != snap.class_name:
            yield Problem(
                path,
                f'{path} is "{snap.class_name}", but content "{content.id.name}" names class '
                f'"{content.class_name}" in {family.class_name_path}',
            )
        if cls is not None and cls.driver and content.driver and cls.driver != content.driver:
            yield Problem(
                path,
                f'class "{cls.id.name}" has driver "{cls.driver}", but content '
                f'"{content.id.name}" has spec.driver "{content.driver}"',
            )
        return
    if family is not VOLUME or not snap.pvc_name or cls is None or not cls.driver:
        return
    source = claim_driver(ctx.volumes, snap.id.namespace, snap.pvc_name)
    if source is None or source.driver == cls.driver:
        return
    yield Problem(
        path,
        f'class "{cls.id.name}" has driver "{cls.driver}", but claim "{snap.pvc_name}" '
        f'belongs to driver "{source.driver}" ({source.origin})',
        soft=not source.exact,
    )


def default_available(ctx: CrossContext) -> Iterator[Problem]:
    snap = ctx.record
    assert isinstance(snap, SnapshotRecord)
    if snap.class_name is not None or not snap.pvc_name or snap.is_group_member:
        return
    source = claim_driver(ctx.volumes, snap.id.namespace, snap.pvc_name)
    if source is None:
        return
    defaults = [c for c in ctx.state.default_classes(source.driver) if c.is_default]
    path, kind = ctx.family.class_name_path, ctx.family.class_kind
    if not defaults:
        yield Problem(
            path,
            f'{path} is absent and no {kind} is the default for driver "{source.driver}" '
            f"({source.origin}): the snapshot cannot be provisioned",
        )
    elif len(defaults) > 1:
        names = ", ".join(f'"{c.id.name}"' for c in defaults)
        yield Problem(
            path,
            f"{path} is absent and {len(defaults)} {kind}es are the default for driver "
            f'"{source.driver}" ({names}): the snapshot controller will fail to pick one',
        )


# --- group snapshots: the claims their selector takes -------------------------


def _selected(ctx: CrossContext) -> tuple[SnapshotRecord, list[ClaimRecord]] | None:
    """The group snapshot under review and the claims its selector takes; None when
    it has no selector, or one Kubernetes refuses (the CRD's to say)."""
    group = ctx.record
    if not isinstance(group, SnapshotRecord) or group.selector is None:
        return None
    try:
        taken = [
            claim
            for claim in ctx.volumes.claims_in(group.id.namespace)
            if matches(group.selector, claim.labels or {})
        ]
    except InvalidSelectorError:
        return None
    return group, sorted(taken, key=lambda c: c.id.name)


def _names(claims: list[ClaimRecord], most: int = 5) -> str:
    """Claims of one namespace, by name."""
    shown = ", ".join(f'"{c.id.name}"' for c in claims[:most])
    return shown + (f" and {len(claims) - most} more" if len(claims) > most else "")


SELECTOR_PATH = "spec.source.selector"


def selector_matches(ctx: CrossContext) -> Iterator[Problem]:
    found = _selected(ctx)
    if found is not None and not found[1]:
        group = found[0]
        yield Problem(
            SELECTOR_PATH,
            f"{SELECTOR_PATH} {show(group.selector)} matches no PersistentVolumeClaim in "
            f'namespace "{group.id.namespace}": the group snapshot would have no member',
            soft=True,
        )


def selector_bound(ctx: CrossContext) -> Iterator[Problem]:
    found = _selected(ctx)
    unbound = [c for c in found[1] if not c.volume_name] if found is not None else []
    if unbound:
        yield Problem(
            SELECTOR_PATH,
            f"{SELECTOR_PATH} matches PersistentVolumeClaims {_names(unbound)} that are not "
            "bound to a volume yet: they cannot be snapshotted until they are",
            soft=True,
        )


def selector_driver_match(ctx: CrossContext) -> Iterator[Problem]:
    found = _selected(ctx)
    if found is None:
        return
    group, claims = found
    by_driver: dict[str, list[ClaimRecord]] = {}
    for claim in claims:
        volume = ctx.volumes.volume(claim.volume_name) if claim.volume_name else None
        if volume is not None and volume.csi_driver:
            by_driver.setdefault(volume.csi_driver, []).append(claim)
    drivers = ", ".join(f'"{d}" ({_names(c, 3)})' for d, c in sorted(by_driver.items()))
    if len(by_driver) > 1:
        yield Problem(
            SELECTOR_PATH,
            f"{SELECTOR_PATH} matches bound claims of more than one CSI driver: {drivers}; "
            "a group snapshot is taken by one driver, so it would fail",
        )
        return
    cls = ctx.state.snapshot_class(group.class_name) if group.class_name else None
    if by_driver and cls is not None and cls.driver and cls.driver not in by_driver:
        yield Problem(
            SELECTOR_PATH,
            f"{SELECTOR_PATH} matches bound claims of driver {drivers}, but "
            f'{ctx.family.class_kind} "{cls.id.name}" is for driver "{cls.driver}": the group '
            "snapshot would fail",
        )


RULES: list[Rule[Any]] = [
    *define(
        "snapshot.source.one-of",
        Role.SNAPSHOT,
        Stage.OBJECT,
        source_one_of,
        "exactly one source is set, and it is a non-empty name (or a selector)",
    ),
    *define(
        "snapshot.class.non-empty",
        Role.SNAPSHOT,
        Stage.OBJECT,
        class_non_empty,
        "the class name, when set, is not the empty string",
    ),
    *define(
        "snapshot.source.immutable",
        Role.SNAPSHOT,
        Stage.TRANSITION,
        source_immutable,
        "spec.source never changes",
    ),
    *define(
        "snapshot.binding.one-to-one",
        Role.SNAPSHOT,
        Stage.CROSS,
        binding_one_to_one,
        "a pre-provisioned content is claimed by one snapshot, the one its ref names",
    ),
    *define(
        "snapshot.class.exists",
        Role.SNAPSHOT,
        Stage.CROSS,
        class_exists,
        "the named class exists",
        default=Mode.WARN,
        families=[VOLUME],
    ),
    *define(
        "snapshot.class.driver-match",
        Role.SNAPSHOT,
        Stage.CROSS,
        class_driver_match,
        "the class's driver is the driver of the content or claim being snapshotted",
    ),
    *define(
        "snapshot.selector.matches",
        Role.SNAPSHOT,
        Stage.CROSS,
        selector_matches,
        "the selector matches at least one claim in the namespace",
        default=Mode.WARN,
        families=[GROUP],
    ),
    *define(
        "snapshot.selector.bound",
        Role.SNAPSHOT,
        Stage.CROSS,
        selector_bound,
        "every claim the selector matches is bound to a volume",
        default=Mode.WARN,
        families=[GROUP],
    ),
    *define(
        "snapshot.selector.driver-match",
        Role.SNAPSHOT,
        Stage.CROSS,
        selector_driver_match,
        "the bound claims the selector matches belong to one CSI driver, the class's",
        families=[GROUP],
    ),
    *define(
        "snapshot.class.default-available",
        Role.SNAPSHOT,
        Stage.CROSS,
        default_available,
        "a claim snapshot without a class has exactly one default class for its driver",
        default=Mode.WARN,
        families=[VOLUME],
    ),
]
