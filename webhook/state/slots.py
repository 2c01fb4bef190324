"""Unique slots: what at most one object may hold at a time. Pure: no I/O.

- the default class of a driver (`class.default.unique`);
- a pre-provisioned content, claimed by the snapshot whose source names it
  (`snapshot.binding.one-to-one`);
- a snapshot, bound by the content whose ref points at it
  (`content.binding.one-to-one`);
and the same three for the group family. The rules enforce each slot against
the watched state; a slot also has a stable name, so that replicas can claim it
through the apiserver before the watch shows who took it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from webhook.model.kinds import Family
from webhook.model.records import ClassRecord, ContentRecord, Record, SnapshotRecord
from webhook.state.view import FamilyView


@dataclass(frozen=True)
class Slot:
    family: Family
    rule_id: str
    path: str  # the field of the claimant that takes the slot
    kind: str  # default-class | content-claim | snapshot-binding
    key: tuple[str, ...]
    what: str  # for messages: 'the default VolumeSnapshotClass of driver "x"'

    @property
    def lease_name(self) -> str:
        """A valid, stable object name; 40 hex digits of SHA-256 make collisions moot."""
        digest = hashlib.sha256("\0".join((self.rule_id, *self.key)).encode()).hexdigest()
        return f"snapshot-webhook-{self.kind}-{digest[:40]}"


def taken_by(family: Family, record: Record) -> Iterator[Slot]:
    """The slots `record` takes (whoever else may hold them)."""
    if isinstance(record, ClassRecord):
        if record.is_default and record.driver:
            yield Slot(
                family,
                family.rule_id("class.default.unique"),
                family.default_annotation_path,
                "default-class",
                (record.driver,),
                f'the default {family.class_kind} of driver "{record.driver}"',
            )
    elif isinstance(record, SnapshotRecord):
        if record.content_name and not record.deleting:
            yield Slot(
                family,
                family.rule_id("snapshot.binding.one-to-one"),
                family.content_name_path,
                "content-claim",
                (record.content_name,),
                f'{family.content_kind} "{record.content_name}"',
            )
    elif isinstance(record, ContentRecord) and record.ref_key is not None and not record.deleting:
        namespace, name = record.ref_key
        # Refs to two incarnations of a snapshot (different uids) never conflict,
        # so the uid is part of the slot.
        yield Slot(
            family,
            family.rule_id("content.binding.one-to-one"),
            family.ref_path,
            "snapshot-binding",
            (namespace, name, record.ref_uid or ""),
            f"{family.snapshot_kind} {namespace}/{name}",
        )


def holds(view: FamilyView, slot: Slot, record: Record) -> bool:
    """True when the watched state shows `record`'s object holding `slot`."""
    if slot.kind == "default-class":
        return any(
            c.is_default and c.id.same_object(record.id) for c in view.default_classes(slot.key[0])
        )
    if slot.kind == "content-claim":
        return any(s.id.same_object(record.id) for s in view.snapshots_naming(slot.key[0]))
    namespace, name, _ = slot.key
    return any(c.id.same_object(record.id) for c in view.contents_referencing(namespace, name))
