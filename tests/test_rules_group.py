"""VolumeGroupSnapshot and VolumeGroupSnapshotContent rules against the fixture cluster."""

from __future__ import annotations

import pytest
from builders import (
    GCE_PD,
    add,
    assert_outcome,
    changed,
    denied_ids,
    group_content,
    group_snapshot,
    judge,
    review,
    table,
)

from webhook.state.index import StateIndex

SELECTOR = {"matchLabels": {"app": "postgres", "tier": "db"}}
DYNAMIC = group_snapshot("postgres-group-snap-2", selector=SELECTOR, cls="ebs-groupsnapclass")
PREPROV = group_snapshot(
    "orders-group-restore", content="groupsnapcontent-orders-preprov", cls="ebs-groupsnapclass"
)
CONTENT = group_content(
    "groupsnapcontent-billing", ref=("billing", "billing-group-restore"), cls="ebs-groupsnapclass"
)
BOUND_GROUP_CONTENT = "groupsnapcontent-33350f59-7364-4365-b90f-a49ea7a781c1"

CASES = [
    ("selector source", review(DYNAMIC), set(), set()),
    (
        "empty selector is present and valid (it takes every claim, unbound ones too)",
        review(changed(DYNAMIC, **{"spec.source.selector": {}})),
        set(),
        {"group-snapshot.selector.bound"},
    ),
    (
        "selector and content name",
        review(changed(DYNAMIC, **{"spec.source.volumeGroupSnapshotContentName": "x"})),
        {"group-snapshot.source.one-of"},
        {"group-snapshot.binding.one-to-one"},
    ),
    (
        "neither",
        review(changed(DYNAMIC, **{"spec.source": {}})),
        {"group-snapshot.source.one-of"},
        set(),
    ),
    ("no spec", review(changed(DYNAMIC, spec=None)), {"group-snapshot.source.one-of"}, set()),
    (
        "empty content name",
        review(changed(PREPROV, **{"spec.source.volumeGroupSnapshotContentName": ""})),
        {"group-snapshot.source.one-of"},
        set(),
    ),
    (
        "empty class name",
        review(changed(DYNAMIC, **{"spec.volumeGroupSnapshotClassName": ""})),
        {"group-snapshot.class.non-empty"},
        set(),
    ),
    ("pre-provisioned, ref matches", review(PREPROV), set(), set()),
    (
        "pre-provisioned from another namespace",
        review(
            group_snapshot(
                "orders-group-restore", "billing", content="groupsnapcontent-orders-preprov"
            )
        ),
        {"group-snapshot.binding.one-to-one"},
        set(),
    ),
    (
        "content bound to another group snapshot",
        review(group_snapshot("steal", content=BOUND_GROUP_CONTENT)),
        {"group-snapshot.binding.one-to-one"},
        set(),
    ),
    (
        "content missing",
        review(group_snapshot("later", content="groupsnapcontent-later")),
        set(),
        {"group-snapshot.binding.one-to-one"},
    ),
    (
        "pre-provisioned, class of another driver",
        review(changed(PREPROV, **{"spec.volumeGroupSnapshotClassName": "gce-pd-groupsnapclass"})),
        {"group-snapshot.class.driver-match"},
        set(),
    ),
    (
        "the selector's bound claims are of another driver than the class's",
        review(changed(DYNAMIC, **{"spec.volumeGroupSnapshotClassName": "gce-pd-groupsnapclass"})),
        {"group-snapshot.selector.driver-match"},
        set(),
    ),
    # contents
    ("group content with snapshot handles", review(CONTENT), set(), set()),
    (
        "group content with volume handles",
        review(group_content("gc-vh", volume_handles=["vol-0a", "vol-0b"], ref=("billing", "g"))),
        set(),
        set(),
    ),
    (
        "empty volume handles list",
        review(group_content("gc-vh", volume_handles=[], ref=("billing", "g"))),
        {"group-content.source.one-of"},
        set(),
    ),
    (
        "group handle missing",
        review(
            group_content(
                "gc", group_handles={"volumeSnapshotHandles": ["s1"]}, ref=("billing", "g")
            )
        ),
        {"group-content.source.one-of"},
        set(),
    ),
    (
        "member handles empty",
        review(
            group_content(
                "gc",
                group_handles={"volumeGroupSnapshotHandle": "g-1", "volumeSnapshotHandles": []},
                ref=("billing", "g"),
            )
        ),
        {"group-content.source.one-of"},
        set(),
    ),
    (
        "both sources",
        review(
            group_content(
                "gc",
                volume_handles=["v"],
                group_handles={"volumeGroupSnapshotHandle": "g-1", "volumeSnapshotHandles": ["s"]},
                ref=("billing", "g"),
            )
        ),
        {"group-content.source.one-of"},
        set(),
    ),
    (
        "no ref",
        review(changed(CONTENT, **{"spec.volumeGroupSnapshotRef": None})),
        {"group-content.ref.required"},
        set(),
    ),
    (
        "ref to a group snapshot another content is bound to",
        review(group_content("gc-dup", ref=("shop", "orders-group-restore"))),
        {"group-content.binding.one-to-one"},
        set(),
    ),
    (
        "class of another driver",
        review(changed(CONTENT, **{"spec.driver": GCE_PD})),
        {"group-content.class.driver-match"},
        set(),
    ),
]


@pytest.mark.parametrize(*table(CASES))
def test_group_rules(state: StateIndex, body: dict, denied: set, warned: set) -> None:
    assert_outcome(judge(state, body), denied, warned)


UPDATES = [
    (
        "selector changed",
        DYNAMIC,
        {"spec.source.selector": {"matchLabels": {"app": "x"}}},
        {"group-snapshot.source.immutable"},
    ),
    (
        "empty selector added beside a content name",
        PREPROV,
        {"spec.source.selector": {}},
        {"group-snapshot.source.immutable", "group-snapshot.source.one-of"},
    ),
    (
        "content handles changed",
        CONTENT,
        {"spec.source.groupSnapshotHandles.volumeSnapshotHandles": ["s-9"]},
        {"group-content.source.immutable"},
    ),
    (
        "ref namespace changed",
        CONTENT,
        {"spec.volumeGroupSnapshotRef.namespace": "shop2"},
        {"group-content.ref.immutable"},
    ),
    (
        "driver changed",
        CONTENT,
        {"spec.driver": GCE_PD},
        {"group-content.driver.immutable", "group-content.class.driver-match"},
    ),
    (
        "class changed",
        CONTENT,
        {"spec.volumeGroupSnapshotClassName": "gce-pd-groupsnapclass"},
        {"group-content.class.immutable", "group-content.class.driver-match"},
    ),
    (
        "class removed",
        CONTENT,
        {"spec.volumeGroupSnapshotClassName": None},
        {"group-content.class.immutable"},
    ),
    ("label added", CONTENT, {"metadata.labels": {"a": "b"}}, set()),
]


@pytest.mark.parametrize(*table(UPDATES, ("old", "updates", "denied")))
def test_group_updates(state: StateIndex, old: dict, updates: dict, denied: set) -> None:
    assert_outcome(
        judge(state, review(changed(old, **updates), operation="UPDATE", old=old)), denied
    )


@pytest.mark.parametrize(("was", "denied"), [(None, False), ("", True)])
def test_group_content_class_may_be_set_once(
    state: StateIndex, was: str | None, denied: bool
) -> None:
    old = changed(CONTENT, **{"spec.volumeGroupSnapshotClassName": was})
    verdict = judge(state, review(CONTENT, operation="UPDATE", old=old))
    assert ("group-content.class.immutable" in denied_ids(verdict)) is denied


def test_group_content_created_for_group_snapshot_with_other_driver_class(
    state: StateIndex,
) -> None:
    add(state, group_snapshot("pd-group", content="gc-pd", cls="gce-pd-groupsnapclass"))
    verdict = judge(state, review(group_content("gc-pd", ref=("shop", "pd-group"))))
    assert denied_ids(verdict) == {"group-content.class.driver-match"}
