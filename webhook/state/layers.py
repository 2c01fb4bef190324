"""State seen through layers: an upper layer's record shadows the lower one's.

The watched cluster is the bottom layer. Above it sit requests admitted here
but not yet seen by the watch (reservations, so that two concurrent requests
cannot both take one unique slot), and, for a single admission, objects read
with a live GET because the watch had not delivered them yet.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

import msgspec

from webhook.model.kinds import Family, KindInfo
from webhook.model.objects import KubeObject
from webhook.model.records import (
    ClaimRecord,
    ClassRecord,
    ContentRecord,
    SnapshotRecord,
    StorageClassRecord,
    VolumeRecord,
    to_record,
)
from webhook.state.index import StateIndex
from webhook.state.view import FamilyView, StateView

R = TypeVar("R", SnapshotRecord, ContentRecord, ClassRecord)


def _over(upper: R | None, lower: R | None) -> R | None:
    """The upper record, unless the lower layer shows another incarnation of that
    name (a different uid): then the upper one is a create the apiserver must
    have refused (the name was taken), and what is stored wins."""
    if upper is None:
        return lower
    if lower is not None and upper.id.uid and lower.id.uid and upper.id.uid != lower.id.uid:
        return lower
    return upper


class LayeredFamily:
    def __init__(self, lower: FamilyView, upper: FamilyView) -> None:
        self.lower, self.upper = lower, upper

    def snapshot(self, namespace: str, name: str) -> SnapshotRecord | None:
        return _over(self.upper.snapshot(namespace, name), self.lower.snapshot(namespace, name))

    def content(self, name: str) -> ContentRecord | None:
        return _over(self.upper.content(name), self.lower.content(name))

    def snapshot_class(self, name: str) -> ClassRecord | None:
        return _over(self.upper.snapshot_class(name), self.lower.snapshot_class(name))

    # Each object once: a record of either layer counts only when it is the one the
    # layered view picks for its object.

    def default_classes(self, driver: str) -> tuple[ClassRecord, ...]:
        both = (*self.upper.default_classes(driver), *self.lower.default_classes(driver))
        return tuple(r for r in both if self.snapshot_class(r.id.name) is r)

    def snapshots_naming(self, content_name: str) -> tuple[SnapshotRecord, ...]:
        both = (
            *self.upper.snapshots_naming(content_name),
            *self.lower.snapshots_naming(content_name),
        )
        return tuple(r for r in both if self.snapshot(r.id.namespace, r.id.name) is r)

    def contents_referencing(self, namespace: str, name: str) -> tuple[ContentRecord, ...]:
        both = (
            *self.upper.contents_referencing(namespace, name),
            *self.lower.contents_referencing(namespace, name),
        )
        return tuple(r for r in both if self.content(r.id.name) is r)

    def uses_driver(self, driver: str) -> bool:
        return self.upper.uses_driver(driver) or self.lower.uses_driver(driver)

    def contents_needing_class(self, class_name: str) -> tuple[ContentRecord, ...]:
        both = (
            *self.upper.contents_needing_class(class_name),
            *self.lower.contents_needing_class(class_name),
        )
        return tuple(r for r in both if self.content(r.id.name) is r)

    def snapshots_awaiting_default(self) -> tuple[SnapshotRecord, ...]:
        both = (*self.upper.snapshots_awaiting_default(), *self.lower.snapshots_awaiting_default())
        return tuple(r for r in both if self.snapshot(r.id.namespace, r.id.name) is r)


class LayeredState:
    """A StateView of `upper` over `lower`."""

    def __init__(self, lower: StateView, upper: StateView) -> None:
        self.lower, self.upper = lower, upper

    def family(self, family: Family) -> LayeredFamily:
        return LayeredFamily(self.lower.family(family), self.upper.family(family))

    def claim(self, namespace: str, name: str) -> ClaimRecord | None:
        return self.upper.claim(namespace, name) or self.lower.claim(namespace, name)

    def claims_in(self, namespace: str) -> list[ClaimRecord]:
        found = {c.id.name: c for c in self.lower.claims_in(namespace)}
        found.update((c.id.name, c) for c in self.upper.claims_in(namespace))
        return list(found.values())

    def claims_restoring(self, namespace: str, name: str) -> list[ClaimRecord]:
        both = (
            *self.upper.claims_restoring(namespace, name),
            *self.lower.claims_restoring(namespace, name),
        )
        return [r for r in both if self.claim(r.id.namespace, r.id.name) is r]

    def volume(self, name: str) -> VolumeRecord | None:
        return self.upper.volume(name) or self.lower.volume(name)

    def storage_class(self, name: str) -> StorageClassRecord | None:
        return self.upper.storage_class(name) or self.lower.storage_class(name)

    def is_csi_driver(self, driver: str) -> bool:
        return self.upper.is_csi_driver(driver) or self.lower.is_csi_driver(driver)


class Reservations:
    """Writes admitted here and not yet seen by the watch, each held for at most `ttl`.

    A reservation ends when the watch delivers any event for the same object
    (`settle`), or when its time is up: the apiserver may have rejected the
    write after this webhook admitted it, and then no event ever comes.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.index = StateIndex()
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._deadlines: dict[tuple[str, str, str, str], float] = {}
        self._order: deque[tuple[float, KindInfo, str, str]] = deque()

    def reserve(self, info: KindInfo, obj: KubeObject) -> None:
        record = to_record(info, obj)
        if isinstance(record, SnapshotRecord | ContentRecord | ClassRecord):
            record = msgspec.structs.replace(record, pending=True)
        deadline = self._clock() + self.ttl
        with self._lock:
            self._deadlines[(info.api_group, info.kind, obj.namespace, obj.name)] = deadline
            self._order.append((deadline, info, obj.namespace, obj.name))
            self.index.put(info, record)

    def settle(self, info: KindInfo, namespace: str, name: str) -> None:
        with self._lock:
            if self._deadlines.pop((info.api_group, info.kind, namespace, name), None) is not None:
                self.index.remove(info, namespace, name)

    def expire(self) -> int:
        """Drop reservations whose time is up; returns how many are still held."""
        now = self._clock()
        with self._lock:
            while self._order and self._order[0][0] <= now:
                deadline, info, namespace, name = self._order.popleft()
                key = (info.api_group, info.kind, namespace, name)
                if self._deadlines.get(key) == deadline:
                    del self._deadlines[key]
                    self.index.remove(info, namespace, name)
            return len(self._deadlines)
