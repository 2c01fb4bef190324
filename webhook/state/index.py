"""In-memory indexes over the records of every kind the rules read.

Each cross-object question (the default class of a driver, the snapshots that
name a content, the contents that point at a snapshot) has a reverse index kept
up to date on every put and remove, so answering it costs a dictionary lookup
and a walk over the few records that match, never a scan of the state.

A lock guards every read and write: the index is fed by watch threads while the
event loop reads it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar

from webhook.model.kinds import FAMILIES, Family, KindInfo, Role
from webhook.model.objects import KubeObject
from webhook.model.records import (
    ClaimRecord,
    ClassRecord,
    ContentRecord,
    Record,
    SnapshotRecord,
    StorageClassRecord,
    VolumeRecord,
    to_record,
)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Hashable)
NamespacedKey = tuple[str, str]


class MultiMap(Generic[K, V]):
    """key -> values. Almost every key has one value (one snapshot per content),
    so a lone value is stored as itself and becomes a set only when a second
    arrives: a set per key would double the index's memory."""

    def __init__(self) -> None:
        self._data: dict[K, V | set[V]] = {}

    def add(self, key: K, value: V) -> None:
        current = self._data.get(key)
        if current is None:
            self._data[key] = value
        elif isinstance(current, set):
            current.add(value)
        elif current != value:
            self._data[key] = {current, value}

    def discard(self, key: K, value: V) -> None:
        current = self._data.get(key)
        if isinstance(current, set):
            current.discard(value)
            if len(current) == 1:
                self._data[key] = current.pop()
        elif current == value:
            del self._data[key]

    def get(self, key: K) -> tuple[V, ...]:
        current = self._data.get(key)
        if current is None:
            return ()
        return tuple(current) if isinstance(current, set) else (current,)


class FamilyIndex:
    """Snapshots, contents and classes of one family, with their reverse indexes."""

    def __init__(self, family: Family, lock: threading.RLock) -> None:
        self.family = family
        self._lock = lock
        self.snapshots: dict[NamespacedKey, SnapshotRecord] = {}
        self.contents: dict[str, ContentRecord] = {}
        self.classes: dict[str, ClassRecord] = {}
        self._naming: MultiMap[str, NamespacedKey] = MultiMap()  # content -> snapshots
        self._referencing: MultiMap[NamespacedKey, str] = MultiMap()  # snapshot -> contents
        self._defaults: MultiMap[str, str] = MultiMap()  # driver -> default classes
        self._needing: MultiMap[str, str] = MultiMap()  # class -> contents deleted with it
        self._awaiting: set[NamespacedKey] = set()  # snapshots awaiting a default class
        self._drivers: Counter[str] = Counter()  # drivers named by classes and contents

    # --- FamilyView -------------------------------------------------------

    def snapshot(self, namespace: str, name: str) -> SnapshotRecord | None:
        with self._lock:
            return self.snapshots.get((namespace, name))

    def content(self, name: str) -> ContentRecord | None:
        with self._lock:
            return self.contents.get(name)

    def snapshot_class(self, name: str) -> ClassRecord | None:
        with self._lock:
            return self.classes.get(name)

    def default_classes(self, driver: str) -> tuple[ClassRecord, ...]:
        with self._lock:
            return tuple(self.classes[n] for n in sorted(self._defaults.get(driver)))

    def snapshots_naming(self, content_name: str) -> tuple[SnapshotRecord, ...]:
        with self._lock:
            keys = sorted(self._naming.get(content_name))
            return tuple(self.snapshots[k] for k in keys)

    def contents_referencing(self, namespace: str, name: str) -> tuple[ContentRecord, ...]:
        with self._lock:
            names = sorted(self._referencing.get((namespace, name)))
            return tuple(self.contents[n] for n in names)

    def uses_driver(self, driver: str) -> bool:
        with self._lock:
            return self._drivers[driver] > 0

    def contents_needing_class(self, class_name: str) -> tuple[ContentRecord, ...]:
        with self._lock:
            return tuple(self.contents[n] for n in sorted(self._needing.get(class_name)))

    def snapshots_awaiting_default(self) -> tuple[SnapshotRecord, ...]:
        with self._lock:
            return tuple(self.snapshots[k] for k in sorted(self._awaiting))

    # --- writes -----------------------------------------------------------

    def put_snapshot(self, record: SnapshotRecord) -> None:
        key = (record.id.namespace, record.id.name)
        with self._lock:
            self.remove_snapshot(*key)
            self.snapshots[key] = record
            for content in record.names_content():
                self._naming.add(content, key)
            if record.awaits_default_class:
                self._awaiting.add(key)

    def remove_snapshot(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        with self._lock:
            old = self.snapshots.pop(key, None)
            if old is not None:
                for content in old.names_content():
                    self._naming.discard(content, key)
                self._awaiting.discard(key)

    def put_content(self, record: ContentRecord) -> None:
        with self._lock:
            self.remove_content(record.id.name)
            self.contents[record.id.name] = record
            self._count_driver(record.driver, 1)
            if record.ref_key is not None:
                self._referencing.add(record.ref_key, record.id.name)
            if record.class_name and record.deletes_backing_snapshot:
                self._needing.add(record.class_name, record.id.name)

    def remove_content(self, name: str) -> None:
        with self._lock:
            old = self.contents.pop(name, None)
            if old is not None:
                self._count_driver(old.driver, -1)
                if old.ref_key is not None:
                    self._referencing.discard(old.ref_key, name)
                if old.class_name and old.deletes_backing_snapshot:
                    self._needing.discard(old.class_name, name)

    def put_class(self, record: ClassRecord) -> None:
        with self._lock:
            self.remove_class(record.id.name)
            self.classes[record.id.name] = record
            self._count_driver(record.driver, 1)
            if record.default_value == "true" and record.driver is not None:
                self._defaults.add(record.driver, record.id.name)

    def remove_class(self, name: str) -> None:
        with self._lock:
            old = self.classes.pop(name, None)
            if old is not None and old.driver is not None:
                self._count_driver(old.driver, -1)
                self._defaults.discard(old.driver, name)

    def _count_driver(self, driver: str | None, delta: int) -> None:
        if driver:
            self._drivers[driver] += delta
            if self._drivers[driver] <= 0:
                del self._drivers[driver]


class StateIndex:
    """Every record the rules may ask about; implements FamilyView and VolumeView."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.families = {family.prefix: FamilyIndex(family, self._lock) for family in FAMILIES}
        self.claims: dict[NamespacedKey, ClaimRecord] = {}
        self._claims_in: dict[str, dict[str, ClaimRecord]] = {}  # namespace -> name -> claim
        self._restoring: MultiMap[NamespacedKey, NamespacedKey] = MultiMap()  # snapshot -> claims
        self.volumes: dict[str, VolumeRecord] = {}
        self.storage_classes: dict[str, StorageClassRecord] = {}
        self.changes = 0  # puts and removes so far: what changed-since questions compare

    def family(self, family: Family) -> FamilyIndex:
        return self.families[family.prefix]

    # --- VolumeView -------------------------------------------------------

    def claim(self, namespace: str, name: str) -> ClaimRecord | None:
        with self._lock:
            return self.claims.get((namespace, name))

    def claims_in(self, namespace: str) -> list[ClaimRecord]:
        with self._lock:
            return list(self._claims_in.get(namespace, {}).values())

    def claims_restoring(self, namespace: str, name: str) -> tuple[ClaimRecord, ...]:
        with self._lock:
            return tuple(self.claims[k] for k in sorted(self._restoring.get((namespace, name))))

    def volume(self, name: str) -> VolumeRecord | None:
        with self._lock:
            return self.volumes.get(name)

    def storage_class(self, name: str) -> StorageClassRecord | None:
        with self._lock:
            return self.storage_classes.get(name)

    def is_csi_driver(self, driver: str) -> bool:
        return any(family.uses_driver(driver) for family in self.families.values())

    # --- writes -----------------------------------------------------------

    def put_object(self, info: KindInfo, obj: KubeObject) -> None:
        self.put(info, to_record(info, obj))

    def put(self, info: KindInfo, record: Record) -> None:
        with self._lock:
            self.changes += 1
            if info.family is not None:
                index = self.family(info.family)
                if isinstance(record, SnapshotRecord):
                    index.put_snapshot(record)
                elif isinstance(record, ContentRecord):
                    index.put_content(record)
                elif isinstance(record, ClassRecord):
                    index.put_class(record)
            elif isinstance(record, ClaimRecord):
                key = (record.id.namespace, record.id.name)
                self._remove_claim(*key)
                self.claims[key] = record
                self._claims_in.setdefault(record.id.namespace, {})[record.id.name] = record
                if record.restore_from is not None:
                    source = record.restore_from
                    self._restoring.add((source.namespace, source.name), key)
            elif isinstance(record, VolumeRecord):
                self.volumes[record.id.name] = record
            elif isinstance(record, StorageClassRecord):
                self.storage_classes[record.id.name] = record

    def remove(self, info: KindInfo, namespace: str, name: str) -> None:
        with self._lock:
            self.changes += 1
            if info.family is not None:
                index = self.family(info.family)
                if info.role is Role.SNAPSHOT:
                    index.remove_snapshot(namespace, name)
                elif info.role is Role.CONTENT:
                    index.remove_content(name)
                else:
                    index.remove_class(name)
            elif info.role is Role.PVC:
                self._remove_claim(namespace, name)
            elif info.role is Role.PV:
                self.volumes.pop(name, None)
            else:
                self.storage_classes.pop(name, None)

    def _remove_claim(self, namespace: str, name: str) -> None:
        old = self.claims.pop((namespace, name), None)
        if old is None:
            return
        in_namespace = self._claims_in.get(namespace, {})
        in_namespace.pop(name, None)
        if not in_namespace:
            self._claims_in.pop(namespace, None)
        if old.restore_from is not None:
            source = old.restore_from
            self._restoring.discard((source.namespace, source.name), (namespace, name))

    def _table(self, info: KindInfo) -> dict[Any, Record]:
        if info.family is not None:
            index = self.family(info.family)
            tables: dict[Role, dict[Any, Any]] = {
                Role.SNAPSHOT: index.snapshots,
                Role.CONTENT: index.contents,
                Role.CLASS: index.classes,
            }
        else:
            tables = {
                Role.PVC: self.claims,
                Role.PV: self.volumes,
                Role.STORAGE_CLASS: self.storage_classes,
            }
        return tables[info.role]

    def records(self, info: KindInfo) -> list[Record]:
        """A copy of every record of one kind (for audits, never for admissions)."""
        with self._lock:
            return list(self._table(info).values())

    def replace(self, info: KindInfo, records: Iterable[Record]) -> None:
        """Swap every record of one kind for `records`, atomically for readers."""
        with self._lock:
            for record in list(self._table(info).values()):
                self.remove(info, record.id.namespace, record.id.name)
            for record in records:
                self.put(info, record)

    def counts(self) -> Counter[str]:
        """Objects held, by kind."""
        with self._lock:
            counts: Counter[str] = Counter()
            for index in self.families.values():
                fam = index.family
                counts[fam.snapshot_kind] = len(index.snapshots)
                counts[fam.content_kind] = len(index.contents)
                counts[fam.class_kind] = len(index.classes)
            counts["PersistentVolumeClaim"] = len(self.claims)
            counts["PersistentVolume"] = len(self.volumes)
            counts["StorageClass"] = len(self.storage_classes)
            return counts
