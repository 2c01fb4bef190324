"""The webhook as a service: judge a readable review against the state, then
make what was admitted visible to the next review.

- Embedded mode (no cluster): the server is its own cluster of one, and an
  admitted request is applied to the state directly.
- Cluster mode: the state follows the cluster's watches. An admitted request
  is held as a reservation until the watch shows it (or a TTL passes), so that
  two concurrent requests can never both take one unique slot. When a rule
  needs an object the watch has not delivered yet, one live GET is made
  before concluding that it does not exist.

This is also the one place an unexpected failure inside the rules becomes an
answer: a well-formed review, `allowed: false` with code 500 and the uid, so
that the apiserver reports it and nothing crashes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from webhook import kinds
from webhook.admission import AdmissionRequest, Review, Verdict, errored
from webhook.decide import Subject, judge, read_subject, subject_record
from webhook.kinds import KindInfo, Role
from webhook.records import ClaimRecord, ContentRecord, Record, SnapshotRecord
from webhook.rules import Policy
from webhook.state.fixtures import apply_admitted
from webhook.state.index import StateIndex
from webhook.state.layers import LayeredState, Reservations
from webhook.state.view import StateView

log = logging.getLogger("snapshot_webhook.admission")

LiveGet = Callable[[KindInfo, str, str], Record | None]
Reference = tuple[KindInfo, str, str]  # kind, namespace, name

_PVC = kinds.by_group_kind("", "PersistentVolumeClaim")
_PV = kinds.by_group_kind("", "PersistentVolume")
_SC = kinds.by_group_kind("storage.k8s.io", "StorageClass")


def references(subject: Subject) -> Iterator[Reference]:
    """Objects the cross-object rules will look up for this subject."""
    info, family = subject.info, subject.info.rules_family
    assert family is not None
    record = subject_record(info, subject.new)
    class_info = kinds.for_role(family, Role.CLASS)
    if isinstance(record, SnapshotRecord):
        if record.class_name:
            yield class_info, "", record.class_name
        if record.content_name:
            yield kinds.for_role(family, Role.CONTENT), "", record.content_name
        if record.pvc_name and _PVC is not None:
            yield _PVC, record.id.namespace, record.pvc_name
    elif isinstance(record, ContentRecord):
        if record.class_name:
            yield class_info, "", record.class_name
        if record.ref_key is not None:
            yield kinds.for_role(family, Role.SNAPSHOT), *record.ref_key
    elif isinstance(record, ClaimRecord) and record.restore_from is not None:
        source = record.restore_from
        yield kinds.for_role(family, Role.SNAPSHOT), source.namespace, source.name
        if record.storage_class_name and _SC is not None:
            yield _SC, "", record.storage_class_name


def followed(info: KindInfo, record: Record) -> Iterator[Reference]:
    """Objects a fetched object leads the rules to: a claim's volume or class, a
    snapshot's bound content."""
    if isinstance(record, ClaimRecord):
        if record.volume_name and _PV is not None:
            yield _PV, "", record.volume_name
        elif record.storage_class_name and _SC is not None:
            yield _SC, "", record.storage_class_name
    elif isinstance(record, SnapshotRecord) and record.bound_content_name and info.family:
        yield kinds.for_role(info.family, Role.CONTENT), "", record.bound_content_name


@dataclass
class Webhook:
    state: StateIndex
    policy: Policy
    embedded: bool  # apply admitted requests to the state (no cluster to watch)
    reservations: Reservations | None = None
    live_get: LiveGet | None = None
    on_live_get: Callable[[KindInfo, str], None] = field(default=lambda info, result: None)

    def view(self) -> StateView:
        if self.reservations is None:
            return self.state
        self.reservations.expire()
        return LayeredState(self.state, self.reservations.index)

    def judge(self, review: Review) -> Verdict:
        """The verdict from what the state holds now (no live lookups)."""
        subject = self._subject(review)
        if isinstance(subject, Verdict):
            return self._admitted(review.request, None, subject)
        return self._judge(review.request, subject, self.view())

    async def judge_live(self, review: Review) -> Verdict:
        """The verdict, after fetching what the watch has not delivered yet."""
        subject = self._subject(review)
        if isinstance(subject, Verdict):
            return self._admitted(review.request, None, subject)
        view = self.view()
        if self.live_get is not None:
            try:
                missing = [ref for ref in references(subject) if not self._present(view, ref)]
                if missing:
                    extras = await asyncio.to_thread(self._fetch, view, missing)
                    view = LayeredState(view, extras)
            except Exception:  # judge from the watched state alone rather than fail
                log.exception(
                    "looking up objects for %s %s failed", subject.info.kind, subject.new.name
                )
        return self._judge(review.request, subject, view)

    def _subject(self, review: Review) -> Subject | Verdict:
        if review.request is None:
            return errored(400, review.error or "request is unreadable")
        return read_subject(review.request)

    def _judge(
        self, request: AdmissionRequest | None, subject: Subject, view: StateView
    ) -> Verdict:
        try:
            verdict = judge(subject, view, self.policy)
        except Exception:  # a bug, not the caller's fault: answer, log, keep serving
            log.exception("internal error judging %s %s", subject.info.kind, subject.new.name)
            return errored(500, "internal error in snapshot-webhook; see its log")
        return self._admitted(request, subject, verdict)

    def _admitted(
        self, request: AdmissionRequest | None, subject: Subject | None, verdict: Verdict
    ) -> Verdict:
        if request is None or not verdict.allowed or request.dry_run:
            return verdict
        if self.embedded and subject is not None:
            self.state.put_object(subject.info, subject.new)  # already read: no second parse
        elif self.embedded:
            apply_admitted(self.state, request)  # deletes and subresources
        elif self.reservations is not None and subject is not None and subject.info.family:
            self.reservations.reserve(subject.info, subject.new)  # claims hold no unique slot
        return verdict

    @staticmethod
    def _present(view: StateView, ref: Reference) -> bool:
        info, namespace, name = ref
        if info.family is not None:
            family = view.family(info.family)
            if info.role is Role.SNAPSHOT:
                return family.snapshot(namespace, name) is not None
            if info.role is Role.CONTENT:
                return family.content(name) is not None
            return family.snapshot_class(name) is not None
        if info.role is Role.PVC:
            return view.claim(namespace, name) is not None
        if info.role is Role.PV:
            return view.volume(name) is not None
        return view.storage_class(name) is not None

    def _fetch(self, view: StateView, missing: list[Reference]) -> StateIndex:
        """One live GET per missing object (claims pull in their volume or class)."""
        assert self.live_get is not None
        extras = StateIndex()
        queue = list(missing)
        while queue:
            info, namespace, name = queue.pop(0)
            try:
                record = self.live_get(info, namespace, name)
            except Exception as err:  # unreachable API: judge as if absent, which never denies
                log.warning("live GET of %s %s failed: %s", info.kind, name, err)
                self.on_live_get(info, "error")
                continue
            self.on_live_get(info, "found" if record is not None else "missing")
            if record is None:
                continue
            extras.put(info, record)
            queue += [r for r in followed(info, record) if not self._present(view, r)]
        return extras
