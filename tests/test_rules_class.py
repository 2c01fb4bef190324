"""VolumeSnapshotClass and VolumeGroupSnapshotClass rules against the fixture cluster."""

from __future__ import annotations

import pytest
from builders import (
    EBS,
    GCE_PD,
    add,
    assert_outcome,
    changed,
    denied_ids,
    judge,
    review,
    snapshot_class,
    table,
)

from webhook.state.index import StateIndex

EBS_DEFAULT_UID = "e6bf4cf5-68a7-449f-b261-dccdca5afe6e"
RETAIN = snapshot_class(
    "ebs-snapclass-retain", deletion_policy="Retain", uid="817b4027-fbb5-4352-a810-42bf4ab10176"
)

CASES = [
    (
        "second default for a driver",
        review(snapshot_class("ebs-snapclass-fast", default="true")),
        {"class.default.unique"},
        set(),
    ),
    (
        "second default, dry run: same verdict",
        review(snapshot_class("ebs-snapclass-fast", default="true"), dry_run=True),
        {"class.default.unique"},
        set(),
    ),
    (
        "default for a driver without one",
        review(
            snapshot_class("csi-hostpath-snapclass", driver="hostpath.csi.k8s.io", default="true")
        ),
        set(),
        set(),
    ),
    ("not a default", review(snapshot_class("ebs-snapclass-fast", default="false")), set(), set()),
    (
        "annotation value other than true/false",
        review(snapshot_class("ebs-snapclass-fast", default="True")),
        set(),
        {"class.default.annotation"},
    ),
    (
        "re-sent CREATE of the stored default",
        review(
            snapshot_class(
                "ebs-snapclass",
                default="true",
                parameters={"tagSpecification_1": "team=shop"},
                uid=EBS_DEFAULT_UID,
            )
        ),
        set(),
        set(),
    ),
    (
        "same uid under another name is the same object",
        review(snapshot_class("renamed", default="true", uid=EBS_DEFAULT_UID)),
        set(),
        set(),
    ),
    (
        "group class default for ebs, which has a group default",
        review(snapshot_class("ebs-groupsnapclass-2", default="true", group=True)),
        {"group-class.default.unique"},
        set(),
    ),
    (
        "group class default for pd: a single-volume default never conflicts",
        review(
            snapshot_class("gce-pd-groupsnapclass-2", driver=GCE_PD, default="true", group=True)
        ),
        set(),
        set(),
    ),
    (
        "group annotation value typo",
        review(snapshot_class("x", default="yes", group=True)),
        set(),
        {"group-class.default.annotation"},
    ),
]


@pytest.mark.parametrize(*table(CASES))
def test_class_rules(state: StateIndex, body: dict, denied: set, warned: set) -> None:
    assert_outcome(judge(state, body), denied, warned)


def test_second_default_message_names_existing_default_and_driver(state: StateIndex) -> None:
    verdict = judge(state, review(snapshot_class("ebs-snapclass-fast", default="true")))
    assert verdict.message == (
        "class.default.unique: metadata.annotations[snapshot.storage.kubernetes.io/"
        'is-default-class] is "true", but VolumeSnapshotClass "ebs-snapclass" is already the '
        f'default for driver "{EBS}"'
    )


UPDATES = [
    (
        "annotate an existing class default",
        RETAIN,
        {"metadata.annotations": {"snapshot.storage.kubernetes.io/is-default-class": "true"}},
        {"class.default.unique"},
    ),
    ("driver changed", RETAIN, {"driver": GCE_PD}, {"class.driver.immutable"}),
    (
        "parameters added",
        RETAIN,
        {"parameters": {"tagSpecification_1": "x"}},
        {"class.parameters.immutable"},
    ),
    ("empty parameters are not absent", RETAIN, {"parameters": {}}, {"class.parameters.immutable"}),
    (
        "deletion policy changed",
        RETAIN,
        {"deletionPolicy": "Delete"},
        {"class.deletion-policy.immutable"},
    ),
    ("label added", RETAIN, {"metadata.labels": {"backup-tier": "archive"}}, set()),
]


@pytest.mark.parametrize(*table(UPDATES, ("old", "updates", "denied")))
def test_class_updates(state: StateIndex, old: dict, updates: dict, denied: set) -> None:
    assert_outcome(
        judge(state, review(changed(old, **updates), operation="UPDATE", old=old)), denied
    )


def test_moving_a_default_to_another_driver_is_checked(state: StateIndex) -> None:
    old = snapshot_class("hostpath-default", driver="hostpath.csi.k8s.io", default="true")
    add(state, old)
    verdict = judge(state, review(changed(old, driver=EBS), operation="UPDATE", old=old))
    assert denied_ids(verdict) == {"class.driver.immutable", "class.default.unique"}


def test_label_edit_of_a_second_default_is_allowed_without_rules(state: StateIndex) -> None:
    second = snapshot_class("ebs-snapclass-fast", default="true")
    add(state, second)
    verdict = judge(
        state,
        review(changed(second, **{"metadata.labels": {"a": "b"}}), operation="UPDATE", old=second),
    )
    assert verdict.allowed and verdict.findings == ()


def test_deleting_default_leaves_the_slot_free(state: StateIndex) -> None:
    add(state, snapshot_class("ebs-snapclass", default="true", deleting=True, uid=EBS_DEFAULT_UID))
    assert judge(state, review(snapshot_class("ebs-snapclass-fast", default="true"))).allowed


def test_removing_the_default_frees_the_slot_for_another(state: StateIndex) -> None:
    add(state, snapshot_class("ebs-snapclass", default="false", uid=EBS_DEFAULT_UID))
    assert judge(state, review(snapshot_class("ebs-snapclass-fast", default="true"))).allowed


def test_annotation_warning_names_the_value(state: StateIndex) -> None:
    verdict = judge(state, review(snapshot_class("ebs-snapclass-fast", default="True")))
    assert verdict.warnings == (
        "class.default.annotation: metadata.annotations[snapshot.storage.kubernetes.io/"
        'is-default-class] is "True": only "true" marks a default, so the snapshot controller '
        "treats this class as not default",
    )
