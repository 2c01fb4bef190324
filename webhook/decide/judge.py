"""(request, state, policy) -> verdict.

Order of business:
1. Cleanup is never blocked: CONNECT and any subresource are allowed with no
   rule run, and a DELETE is always allowed. A DELETE of a snapshot kind runs
   only the deletion rules, which warn of what it will break and never deny; an
   object that cannot be read is deleted without a word.
2. The object (and the old object on UPDATE) must read as its kind, or the
   answer is code 400 naming the field.
3. An UPDATE that leaves the judged fields unchanged is allowed: that is how
   finalizers are removed and labels edited.
4. Transition rules (UPDATE) always deny; authorization rules (who may make
   a change) run on every object, a deleting one too; one-object rules run on
   the new object; cross-object rules consult the state, except for a
   deleting object.
   On UPDATE, a one-object or cross-object rule the old object already broke
   only warns (ratcheting), so a fix never has to wait for an unrelated one.
5. Every finding is collected; the verdict denies when any finding denies.

Pure: the state is read through narrow views and never changed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from webhook.decide.admission import AdmissionRequest, Verdict, allowed, denied, errored
from webhook.model import kinds, objects
from webhook.model.kinds import KindInfo, Role, judged
from webhook.model.reading import UnreadableObjectError, decoder, parse_object, value_of
from webhook.model.records import (
    Record,
    SnapshotRecord,
    claim_under_review,
    snapshot_source,
    to_record,
)
from webhook.model.values import TooDeepError, cel_equal
from webhook.rules import Policy
from webhook.rules.base import CrossContext, Finding, Operation
from webhook.state.view import StateView

CLEANUP_OPERATIONS = ("DELETE", "CONNECT")
_OPERATIONS = {operation.value: operation for operation in Operation}


def _annotation(raw: dict[str, Any], key: str) -> object:
    metadata = raw.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return annotations.get(key) if isinstance(annotations, dict) else None


def _judged(info: KindInfo, raw: dict[str, Any]) -> list[object]:
    """The parts of a raw object that rules judge on UPDATE, read without a model."""
    what = judged(info)
    return [raw.get(name) for name in what.fields] + [
        _annotation(raw, key) for key in what.annotations
    ]


class _JudgedMetadata(msgspec.Struct):
    annotations: Any = None


class _Judged(msgspec.Struct, rename="camel"):
    """The top-level fields `_judged` reads, decoded from raw JSON as they are."""

    spec: Any = None
    driver: Any = None
    parameters: Any = None
    deletion_policy: Any = None
    metadata: _JudgedMetadata | None = None


def _judged_fields(raw: object) -> object:
    """A raw object as the mapping `_judged` reads: raw JSON decodes only those
    fields (anything odd in them is left to the whole decode to judge)."""
    if not isinstance(raw, msgspec.Raw):
        return raw
    try:
        found = decoder(_Judged).decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return value_of(raw)
    metadata = None if found.metadata is None else {"annotations": found.metadata.annotations}
    return {
        "spec": found.spec,
        "driver": found.driver,
        "parameters": found.parameters,
        "deletionPolicy": found.deletion_policy,
        "metadata": metadata,
    }


def unchanged(info: KindInfo, old: object, new: object) -> bool:
    """True when nothing a rule judges differs between two raw objects, compared
    as CEL compares them. Decided before the objects are read as their kind, so
    that a field no rule reads can never block an update (a finalizer's removal)."""
    old, new = _judged_fields(old), _judged_fields(new)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return False
    return cel_equal(_judged(info, old), _judged(info, new))


@dataclass(frozen=True)
class Subject:
    """A request that rules must judge: its kind, operation and objects, read."""

    info: KindInfo
    operation: Operation
    new: objects.KubeObject
    old: objects.KubeObject | None


def read_subject(request: AdmissionRequest) -> Subject | Verdict:
    """The subject of a request, or the verdict when no rule needs to run."""
    if request.operation == "DELETE" and not request.sub_resource:
        return _deleted(request)
    if request.operation in CLEANUP_OPERATIONS or request.sub_resource:
        return allowed()
    gvk = request.kind
    info = kinds.by_group_kind(gvk.group, gvk.kind)
    if info is None or not info.reviewed:
        return errored(
            400,
            f"request.kind {gvk.group}/{gvk.version} {gvk.kind} is not handled by this webhook; "
            "it admits the snapshot.storage.k8s.io and groupsnapshot.storage.k8s.io kinds, and "
            "PersistentVolumeClaims",
        )
    operation = _OPERATIONS.get(request.operation)
    if operation is None:
        return errored(
            400,
            f"request.operation {request.operation!r} is not one of CREATE, UPDATE, DELETE, "
            "CONNECT",
        )
    if info.role is Role.PVC and operation is Operation.UPDATE:
        return allowed()  # claims are judged once, when created
    try:
        if operation is Operation.UPDATE and unchanged(info, request.old_object, request.object):
            return allowed()
        new = parse_object(info, request.object, "request.object")
        old = None
        if operation is Operation.UPDATE:
            old = parse_object(info, request.old_object, "request.oldObject")
    except (UnreadableObjectError, TooDeepError) as err:
        return errored(400, str(err))
    if isinstance(new, objects.PersistentVolumeClaim) and snapshot_source(new) is None:
        return allowed()  # a claim that restores no snapshot: nothing to check
    return Subject(info, operation, new, old)


def _deleted(request: AdmissionRequest) -> Subject | Verdict:
    """A DELETE's subject: the object as stored, judged only by the deletion rules.
    Anything unexpected allows the delete with no warning: a delete is never blocked."""
    info = kinds.by_group_kind(request.kind.group, request.kind.kind)
    if info is None or info.family is None or request.old_object is None:
        return allowed()
    try:
        gone = parse_object(info, request.old_object, "request.oldObject")
    except (UnreadableObjectError, TooDeepError):
        return allowed()
    return Subject(info, Operation.DELETE, gone, None)


def subject_record(info: KindInfo, obj: objects.KubeObject) -> Record:
    """The record rules see for an object under review (claims carry their restore,
    group snapshots their selector)."""
    if isinstance(obj, objects.PersistentVolumeClaim):
        return claim_under_review(obj)
    record = to_record(info, obj)
    if isinstance(obj, objects.VolumeGroupSnapshot) and isinstance(record, SnapshotRecord):
        source = obj.spec.source if obj.spec else None
        if source is not None and source.selector is not None:
            return msgspec.structs.replace(record, selector=source.selector)
    return record


def judge(subject: Subject, state: StateView, policy: Policy) -> Verdict:
    try:
        findings = list(
            evaluate(subject.info, subject.operation, subject.new, subject.old, state, policy)
        )
    except TooDeepError as err:  # the caller's input, never an internal error
        if subject.operation is Operation.DELETE:
            return allowed()
        return errored(400, f"request.object: {err}")
    if any(f.denies for f in findings):
        return denied(findings)
    return allowed(findings)


def decide(request: AdmissionRequest, state: StateView, policy: Policy) -> Verdict:
    subject = read_subject(request)
    if isinstance(subject, Verdict):
        return subject
    return judge(subject, state, policy)


def evaluate(
    info: KindInfo,
    operation: Operation,
    new: objects.KubeObject,
    old: objects.KubeObject | None,
    state: StateView,
    policy: Policy,
) -> list[Finding]:
    """Every finding of every rule for this object, with ratcheting applied."""
    family = info.rules_family
    assert family is not None
    plan = policy.plan(info.kind, family, info.role)
    findings: list[Finding] = []
    if operation is Operation.DELETE:  # what the delete breaks: warnings only
        if plan.deletion:
            record = subject_record(info, new)
            gone = CrossContext(family, operation, record, None, state.family(family), state)
            for rule_id, check, _ in plan.deletion:
                for p in check(gone):
                    findings.append(Finding(rule_id, p.path, p.message, denies=False))
        return findings
    if old is not None:
        for rule_id, check, deny in plan.transition:
            for p in check(family, old, new):
                findings.append(Finding(rule_id, p.path, p.message, deny and not p.soft))

    # Cross-object rules skip an object being deleted: it is on its way out, and
    # no binding or default it takes can outlive it. Who may make a change does
    # not depend on the object's lifecycle: authorization rules always run.
    cross = () if new.deleting else plan.cross
    if not cross and not plan.object and not plan.authorization:
        return findings
    record = subject_record(info, new)
    view = state.family(family)
    old_record = subject_record(info, old) if old is not None else None
    now = CrossContext(family, operation, record, old_record, view, state)
    for rule_id, check, deny in plan.authorization:
        for p in check(now):
            findings.append(Finding(rule_id, p.path, p.message, deny and not p.soft))
    if old is None:  # CREATE: every finding stands as found
        for rule_id, check, deny in plan.object:
            for p in check(family, new):
                findings.append(Finding(rule_id, p.path, p.message, deny and not p.soft))
        for rule_id, check, deny in cross:
            for p in check(now):
                findings.append(Finding(rule_id, p.path, p.message, deny and not p.soft))
        return findings

    assert old_record is not None
    # The old object judged under the same operation, so that clauses a rule
    # applies on CREATE only never speak for it.
    before = CrossContext(family, operation, old_record, old_record, view, state)
    for steps, args, was_args in (
        (plan.object, (family, new), (family, old)),
        (cross, (now,), (before,)),
    ):
        for rule_id, check, deny in steps:
            problems = list(check(*args))
            found = [Finding(rule_id, p.path, p.message, deny and not p.soft) for p in problems]
            if any(f.denies for f in found):
                # Ratchet per problem: a denial the old object, as it stood, already
                # had (same rule, same path, same values as CEL compares them)
                # only warns.
                already = [p for p in check(*was_args) if not p.soft]
                found = [
                    _as_warning(f) if f.denies and any(p.same_as(q) for q in already) else f
                    for f, p in zip(found, problems, strict=True)
                ]
            findings += found
    return findings


def _as_warning(finding: Finding) -> Finding:
    return Finding(
        finding.rule_id,
        finding.path,
        f"already so before this update: {finding.message}",
        denies=False,
    )
