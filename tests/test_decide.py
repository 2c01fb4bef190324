"""Cleanup is never blocked, verdicts collect everything, unreadable objects are code 400."""

from __future__ import annotations

import orjson
import pytest
from builders import (
    changed,
    denied_ids,
    group_snapshot,
    judge,
    review,
    snapshot_class,
    snapshot_content,
    volume_snapshot,
    warned_ids,
)

from webhook.decide.admission import MAX_WARNING_CHARS, read_review, review_from_bytes
from webhook.decide.judge import decide
from webhook.rules import BY_ID, Policy, UnknownRuleError
from webhook.rules.base import Mode
from webhook.state.index import StateIndex

BROKEN = volume_snapshot("broken", pvc="postgres-data", content="snapcontent-future", cls="")


def test_every_violation_is_collected(state: StateIndex) -> None:
    verdict = judge(state, review(BROKEN))
    assert not verdict.allowed
    assert (verdict.code, verdict.reason) == (403, "Forbidden")
    assert denied_ids(verdict) == {"snapshot.source.one-of", "snapshot.class.non-empty"}
    assert verdict.message.count("; ") == 1
    for part in verdict.message.split("; "):
        assert part.split(": ", 1)[0] in BY_ID


def test_denial_still_carries_warnings(state: StateIndex) -> None:
    verdict = judge(state, review(BROKEN))
    assert warned_ids(verdict) == {"snapshot.binding.one-to-one"}
    assert verdict.warnings[0].startswith("snapshot.binding.one-to-one: ")


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_cleanup_operations_are_always_allowed(state: StateIndex, operation: str) -> None:
    verdict = judge(state, review(None, operation=operation, old=BROKEN))
    assert verdict.allowed and verdict.findings == ()


@pytest.mark.parametrize("operation", ["PATCH", "create", "Operation.CREATE", ""])
def test_an_unknown_operation_is_code_400_naming_it(state: StateIndex, operation: str) -> None:
    verdict = judge(state, review(BROKEN, operation=operation))
    assert (verdict.allowed, verdict.code) == (False, 400)
    assert verdict.message == (
        f"request.operation {operation!r} is not one of CREATE, UPDATE, DELETE, CONNECT"
    )


def test_delete_of_unhandled_resource_is_allowed(state: StateIndex) -> None:
    body = review(None, operation="DELETE", old=BROKEN)
    body["request"]["kind"] = {"group": "", "version": "v1", "kind": "Pod"}
    assert judge(state, body).allowed


def test_subresource_requests_are_allowed_whatever_they_carry(state: StateIndex) -> None:
    body = review(BROKEN, operation="UPDATE", old=BROKEN, sub_resource="status")
    body["request"]["object"] = {"spec": "not an object"}
    assert judge(state, body).allowed


def test_unchanged_spec_update_is_allowed_even_when_broken(state: StateIndex) -> None:
    new = changed(BROKEN, **{"metadata.labels": {"retention": "7d"}, "metadata.finalizers": []})
    verdict = judge(state, review(new, operation="UPDATE", old=BROKEN))
    assert verdict.allowed and verdict.findings == ()


@pytest.mark.parametrize("read", ["from bytes", "as decoded JSON"])
def test_an_update_is_unchanged_only_when_the_spec_as_sent_is(state: StateIndex, read: str) -> None:
    """A spec field no view declares still makes an UPDATE a change: the check
    compares the spec as it was sent, whichever way the review is read."""
    relabelled = changed(BROKEN, **{"metadata.labels": {"retention": "7d"}})
    undeclared = changed(BROKEN, **{"spec.futureField": "on"})
    verdicts = []
    for new in (relabelled, undeclared):
        body = review(new, operation="UPDATE", old=BROKEN)
        if read == "from bytes":
            parsed = review_from_bytes(orjson.dumps(body))
        else:
            parsed = read_review(body)
        assert parsed.request is not None
        verdicts.append(decide(parsed.request, state, Policy()))
    unchanged, judged = verdicts
    assert unchanged.allowed and unchanged.findings == ()
    assert judged.allowed and {"snapshot.source.one-of", "snapshot.class.non-empty"} <= warned_ids(
        judged
    )
    ratcheted = [w for w in judged.warnings if w.startswith(("snapshot.source", "snapshot.class"))]
    assert len(ratcheted) == 2
    assert all("already so before this update" in w for w in ratcheted)


def test_one_object_rule_broken_before_only_warns(state: StateIndex) -> None:
    old = volume_snapshot("both", pvc="postgres-data", content="snapcontent-x")
    new = changed(old, **{"spec.volumeSnapshotClassName": "ebs-snapclass"})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert verdict.allowed
    assert "snapshot.source.one-of" in warned_ids(verdict)


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        (
            changed(BROKEN, **{"spec.source.persistentVolumeClaimName": 5}),
            "request.object.spec.source.persistentVolumeClaimName must be a string, got 5",
        ),
        (changed(BROKEN, spec="yes"), 'request.object.spec must be an object, got "yes"'),
        (
            changed(BROKEN, metadata={"name": "x", "annotations": ["a"]}),
            'request.object.metadata.annotations must be an object, got ["a"]',
        ),
        (
            changed(BROKEN, metadata={"name": "x", "annotations": {"a": 1}}),
            "request.object.metadata.annotations.a must be a string, got 1",
        ),
        (["not", "an", "object"], "request.object must be a VolumeSnapshot object, got array"),
        (
            changed(BROKEN, kind="VolumeSnapshotContent"),
            'request.object.kind is "VolumeSnapshotContent", but the request is for VolumeSnapshot',
        ),
    ],
)
def test_unreadable_object_is_code_400_naming_the_field(
    state: StateIndex, obj: object, needle: str
) -> None:
    body = review(BROKEN)
    body["request"]["object"] = obj
    verdict = judge(state, body)
    assert (verdict.allowed, verdict.code) == (False, 400)
    assert needle in verdict.message


def test_missing_old_object_on_update_is_code_400(state: StateIndex) -> None:
    verdict = judge(state, review(BROKEN, operation="UPDATE", old=None))
    assert verdict.code == 400
    assert verdict.message == "request.oldObject must be a VolumeSnapshot object, got null"


def test_unhandled_resource_is_code_400_naming_it(state: StateIndex) -> None:
    body = review(BROKEN)
    body["request"]["kind"] = {"group": "apps", "version": "v1", "kind": "Deployment"}
    verdict = judge(state, body)
    assert verdict.code == 400
    assert "apps/v1 Deployment is not handled" in verdict.message


def test_unknown_operation_is_code_400(state: StateIndex) -> None:
    body = review(BROKEN)
    body["request"]["operation"] = "PATCH"
    assert "request.operation 'PATCH'" in judge(state, body).message


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2", "v1alpha1", "v1"])
def test_every_group_version_is_handled(state: StateIndex, version: str) -> None:
    obj = snapshot_class("g", default="true", group=True)
    obj["apiVersion"] = f"groupsnapshot.storage.k8s.io/{version}"
    verdict = judge(state, review(obj))
    assert denied_ids(verdict) == {"group-class.default.unique"}


def test_warnings_stay_under_256_characters(state: StateIndex) -> None:
    long_name = "c" * 240
    verdict = judge(state, review(volume_snapshot("s", content=long_name)))
    assert verdict.warnings
    assert all(len(w) <= MAX_WARNING_CHARS for w in verdict.warnings)
    assert verdict.warnings[0].startswith("snapshot.binding.one-to-one: ")


def test_policy_can_turn_a_rule_off_or_to_warn(state: StateIndex) -> None:
    body = review(snapshot_class("ebs-snapclass-fast", default="true"))
    off = judge(state, body, Policy.parse(["class.default.unique=off"]))
    assert off.allowed and off.findings == ()
    warn = judge(state, body, Policy.parse(["class.default.unique=warn"]))
    assert warn.allowed and warned_ids(warn) == {"class.default.unique"}
    promoted = judge(
        state,
        review(snapshot_class("x", default="True")),
        Policy.parse(["class.default.annotation=deny"]),
    )
    assert denied_ids(promoted) == {"class.default.annotation"}


def test_soft_problems_warn_even_in_deny_mode(state: StateIndex) -> None:
    verdict = judge(
        state, review(volume_snapshot("orders-snap", pvc="orders-data", cls="gce-pd-snapclass"))
    )
    assert verdict.allowed
    assert warned_ids(verdict) == {"snapshot.class.driver-match"}


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("nope=deny", "unknown rule id 'nope'; valid ids: class.default.annotation"),
        ("class.default.unique=maybe", "unknown mode 'maybe'"),
        ("class.default.unique", "expected RULE_ID=deny|warn|off"),
    ],
)
def test_bad_rule_override_names_the_problem(spec: str, needle: str) -> None:
    with pytest.raises(UnknownRuleError) as err:
        Policy.parse([spec])
    assert needle in str(err.value)


def test_every_rule_default_is_deny_or_warn() -> None:
    assert {rule.default for rule in BY_ID.values()} == {Mode.DENY, Mode.WARN}


def test_v1beta1_review_is_read(state: StateIndex) -> None:
    body = review(
        snapshot_content("c", ref=("billing", "x")), api_version="admission.k8s.io/v1beta1"
    )
    assert read_review(body).api_version == "admission.k8s.io/v1beta1"


def test_a_selector_change_from_1_to_true_is_a_change(state: StateIndex) -> None:
    """CEL equality: values of different types differ, whatever Python says."""
    old = group_snapshot("g", selector={"matchLabels": {"app": "db"}, "x": [1]})
    new = changed(old, **{"spec.source.selector.x": [True]})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert denied_ids(verdict) == {"group-snapshot.source.immutable"}


def test_absent_and_null_are_the_same_inside_maps(state: StateIndex) -> None:
    old = group_snapshot("g", selector={"matchLabels": {"app": "db"}})
    new = changed(old, **{"spec.source.selector.matchExpressions": None})
    new["spec"]["source"]["selector"]["matchExpressions"] = None
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert verdict.allowed and verdict.findings == ()


def test_cleanup_is_not_blocked_by_a_field_no_rule_reads(state: StateIndex) -> None:
    """Removing a finalizer from a snapshot whose status does not read (a string
    readyToUse) is an update that leaves every judged field as it was."""
    old = volume_snapshot("s", pvc="postgres-data", bound="snapcontent-x", deleting=True)
    old["status"]["readyToUse"] = "true"
    old["metadata"]["finalizers"] = ["snapshot.storage.kubernetes.io/volumesnapshot-as-source"]
    new = changed(old, **{"metadata.finalizers": None})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert (verdict.allowed, verdict.code) == (True, 200)


def test_nesting_below_the_limit_is_judged_and_above_it_refused(state: StateIndex) -> None:
    deep: object = "x"
    for _ in range(100):
        deep = [deep]
    old = group_snapshot("g", selector={"matchLabels": {"app": "db"}, "deep": deep})
    new = changed(old, **{"spec.source.selector.deep": [deep]})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert denied_ids(verdict) == {"group-snapshot.source.immutable"}
    assert len(verdict.message) < 1000
    deeper: object = "x"
    for _ in range(2000):
        deeper = [deeper]
    body = review(
        changed(old, **{"spec.source.selector.deep": deeper}), operation="UPDATE", old=old
    )
    verdict = judge(state, body)  # parsed already: no recursion error, a bounded message
    assert (verdict.allowed, verdict.code) == (False, 403)
    assert len(verdict.message) < 1000
    body = review(
        changed(old, **{"spec.source.selector.deep": deeper}),
        operation="UPDATE",
        old=body["request"]["object"],
    )
    verdict = judge(state, body)
    assert (verdict.allowed, verdict.code) == (False, 400)  # equal so far: compared to the limit
    assert "deeper than 256 levels" in verdict.message


def test_a_map_immutability_message_names_the_changed_keys(state: StateIndex) -> None:
    parameters = {f"parameter-{n:02d}": "a-long-value-" * 3 for n in range(15)}
    old = snapshot_class("c", parameters=parameters)
    new = changed(old, parameters={**parameters, "parameter-14": "other", "extra": "1"})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert denied_ids(verdict) == {"class.parameters.immutable"}
    assert 'extra added ("1")' in verdict.message
    assert 'parameter-14 changed from "a-long-value-a-long' in verdict.message
    assert verdict.message.endswith('to "other"')
