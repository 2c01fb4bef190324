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

from webhook.cluster.claims import Holder, LeaseClaims
from webhook.decide.admission import AdmissionRequest, Review, Verdict, allowed, denied, errored
from webhook.decide.apply import apply_admitted
from webhook.decide.authorize import AllowList, Authorizer, Requester, needs_authorization, settle
from webhook.decide.judge import Subject, judge, read_subject, subject_record
from webhook.model import kinds
from webhook.model.kinds import KindInfo, Role
from webhook.model.records import ClaimRecord, ContentRecord, Record, SnapshotRecord
from webhook.rules import BY_ID, Policy
from webhook.rules.base import Finding, Mode, Operation
from webhook.state.index import StateIndex
from webhook.state.layers import LayeredState, Reservations
from webhook.state.slots import Slot, holds, taken_by
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
    authorizer: Authorizer = field(default_factory=AllowList)  # who may set volume-mode change
    claims: LeaseClaims | None = None  # cluster mode: unique slots claimed with Leases
    claim_failure: str = "deny"  # when the apiserver cannot be asked: deny, or warn and allow

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
        verdict = self._authorized(review.request, self._judge(subject, self.view()))
        return self._admitted(review.request, subject, verdict)

    async def judge_live(self, review: Review) -> Verdict:
        """The verdict, after fetching what the watch has not delivered yet."""
        subject = self._subject(review)
        if isinstance(subject, Verdict):
            return self._admitted(review.request, None, subject)
        view = self.view()
        deleting = subject.operation is Operation.DELETE
        if self.live_get is not None and not deleting:
            try:
                missing = [ref for ref in references(subject) if not self._present(view, ref)]
                if missing:
                    extras = await asyncio.to_thread(self._fetch, view, missing)
                    view = LayeredState(view, extras)
            except Exception:  # judge from the watched state alone rather than fail
                log.exception(
                    "looking up objects for %s %s failed", subject.info.kind, subject.new.name
                )
        verdict = self._judge(subject, view)
        request = review.request
        if needs_authorization(verdict):  # rare: may ask the apiserver, so off the loop
            verdict = await asyncio.to_thread(self._authorized, request, verdict)
        if (
            self.claims is not None
            and verdict.allowed
            and request
            and not request.dry_run
            and not deleting
        ):
            # most admissions take no slot: only those go to a thread and the apiserver
            slots = self._unclaimed_slots(subject)
            if slots:
                verdict = await asyncio.to_thread(self._claim, request, subject, verdict, slots)
        return self._admitted(request, subject, verdict)

    def _subject(self, review: Review) -> Subject | Verdict:
        if review.request is None:
            return errored(400, review.error or "request is unreadable")
        return read_subject(review.request)

    def _judge(self, subject: Subject, view: StateView) -> Verdict:
        try:
            return judge(subject, view, self.policy)
        except Exception:  # a bug, not the caller's fault: answer, log, keep serving
            log.exception("internal error judging %s %s", subject.info.kind, subject.new.name)
            if subject.operation is Operation.DELETE:
                return allowed()  # a delete is never blocked, not even by a bug here
            return errored(500, "internal error in snapshot-webhook; see its log")

    def _authorized(self, request: AdmissionRequest | None, verdict: Verdict) -> Verdict:
        if request is None or not needs_authorization(verdict):
            return verdict
        return settle(verdict, Requester.of(request.user_info), self.authorizer)

    # --- claims -------------------------------------------------------------------

    def _unclaimed_slots(self, subject: Subject) -> list[tuple[Slot, Mode]]:
        """The unique slots the subject takes that the watched state shows as free,
        with the mode of the rule that protects each (rules turned off claim none)."""
        family = subject.info.rules_family
        assert family is not None
        record = subject_record(subject.info, subject.new)
        watched = self.state.family(family)
        found: list[tuple[Slot, Mode]] = []
        for slot in taken_by(family, record):
            mode = self.policy.mode(BY_ID[slot.rule_id])
            if mode is not Mode.OFF and not holds(watched, slot, record):
                found.append((slot, mode))
        return found

    def _claim(
        self,
        request: AdmissionRequest,
        subject: Subject,
        verdict: Verdict,
        slots: list[tuple[Slot, Mode]],
    ) -> Verdict:
        """Claim `slots` through the apiserver. Blocking (runs off the event loop)."""
        assert self.claims is not None
        holder = Holder(
            subject.info.kind,
            subject.new.namespace,
            subject.new.name,
            subject.new.uid or "",
            request.operation,
        )
        findings = list(verdict.findings)
        for slot, mode in slots:
            outcome = self.claims.claim(slot, holder)
            if outcome.claimed:
                continue
            lease = f"Lease {self.claims.namespace}/{outcome.lease}"
            if outcome.holder is not None:
                until = f"{outcome.until:%H:%M:%S}Z" if outcome.until else "its expiry"
                message = (
                    f"{slot.path} takes {slot.what}, but {outcome.holder.display} holds a "
                    f"pending claim on it ({lease}: admitted moments ago, not yet stored by "
                    f"the apiserver; the claim lapses at {until} unless it is stored)"
                )
                findings.append(Finding(slot.rule_id, slot.path, message, mode is Mode.DENY))
            elif self.claim_failure == "deny":
                message = (
                    f"{slot.path} takes {slot.what}, which must first be claimed through the "
                    f"apiserver, and the claim failed ({outcome.error}): retry the request"
                )
                findings.append(Finding(slot.rule_id, slot.path, message, True))
            else:
                message = (
                    f"{slot.path} takes {slot.what}, admitted without a claim because the "
                    f"apiserver could not be asked ({outcome.error}): another replica may "
                    "admit a conflicting object; the audit reports it if so"
                )
                findings.append(Finding(slot.rule_id, slot.path, message, False))
        if len(findings) == len(verdict.findings):
            return verdict
        if any(f.denies for f in findings):
            return denied(findings)
        return allowed(findings)

    def _stored(self, slot: Slot, holder: Holder) -> Record | None:
        """The holder of a claim as the watch shows it (None when not stored yet, or
        when it is another incarnation of that name)."""
        view = self.state.family(slot.family)
        found: Record | None = None
        if holder.kind == slot.family.class_kind:
            found = view.snapshot_class(holder.name)
        elif holder.kind == slot.family.snapshot_kind:
            found = view.snapshot(holder.namespace, holder.name)
        elif holder.kind == slot.family.content_kind:
            found = view.content(holder.name)
        if found is None or (holder.uid and found.id.uid and found.id.uid != holder.uid):
            return None
        return found

    def claim_settled(self, slot: Slot, holder: Holder) -> bool:
        """The watch shows the holder holding the slot: the rules enforce it now."""
        stored = self._stored(slot, holder)
        return stored is not None and holds(self.state.family(slot.family), slot, stored)

    def claim_given_up(self, slot: Slot, holder: Holder) -> bool:
        """The watch shows the object a CREATE claimed for, stored without the slot.
        (An UPDATE's object has the same uid before and after, so a stored copy
        without the slot may be the state before the claimed write: only expiry
        ends such a claim early.)"""
        if holder.operation != "CREATE" or not holder.uid:
            return False
        stored = self._stored(slot, holder)
        return (
            stored is not None
            and stored.id.uid == holder.uid
            and not holds(self.state.family(slot.family), slot, stored)
        )

    def _admitted(
        self, request: AdmissionRequest | None, subject: Subject | None, verdict: Verdict
    ) -> Verdict:
        if request is None or not verdict.allowed or request.dry_run:
            return verdict
        if subject is not None and subject.operation is Operation.DELETE:
            if self.embedded:
                apply_admitted(self.state, request)
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
