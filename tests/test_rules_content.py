"""VolumeSnapshotContent rules against the fixture cluster."""

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
    snapshot_content,
    table,
    volume_snapshot,
)

from webhook.state.index import StateIndex

SNAP_UID = "53f4f425-43b4-4baa-965c-c529c04ed742"
FRESH = snapshot_content(
    "snapcontent-invoices-preprov", ref=("billing", "invoices-restore"), cls="ebs-snapclass"
)

CASES = [
    ("pre-provisioned content for a new snapshot", review(FRESH), set(), set()),
    (
        "both handles",
        review(changed(FRESH, **{"spec.source.volumeHandle": "vol-0123456789abcdef0"})),
        {"content.source.one-of"},
        set(),
    ),
    ("no handle", review(changed(FRESH, **{"spec.source": {}})), {"content.source.one-of"}, set()),
    (
        "no source",
        review(changed(FRESH, **{"spec.source": None})),
        {"content.source.one-of"},
        set(),
    ),
    (
        "no spec",
        review(changed(FRESH, spec=None)),
        {"content.source.one-of", "content.ref.required"},
        set(),
    ),
    (
        "empty snapshot handle",
        review(changed(FRESH, **{"spec.source.snapshotHandle": ""})),
        {"content.source.one-of"},
        set(),
    ),
    (
        "no ref",
        review(changed(FRESH, **{"spec.volumeSnapshotRef": None})),
        {"content.ref.required"},
        set(),
    ),
    (
        "ref without namespace",
        review(changed(FRESH, **{"spec.volumeSnapshotRef.namespace": ""})),
        {"content.ref.required"},
        set(),
    ),
    (
        "ref to a snapshot another content is bound to (no uid)",
        review(snapshot_content("snapcontent-dup", ref=("shop", "orders-restore-snap"))),
        {"content.binding.one-to-one"},
        set(),
    ),
    (
        "ref to a snapshot bound to another content, same uid",
        review(
            snapshot_content(
                "snapcontent-dup", ref=("shop", "postgres-data-snap-1"), ref_uid=SNAP_UID
            )
        ),
        {"content.binding.one-to-one"},
        set(),
    ),
    (
        "ref with a stale uid conflicts with nothing, but warns",
        review(
            snapshot_content(
                "snapcontent-old",
                ref=("shop", "postgres-data-snap-1"),
                ref_uid="0b0b0b0b-dead-4bad-8bad-000000000000",
            )
        ),
        set(),
        {"content.ref.stale-uid"},
    ),
    (
        "class of another driver",
        review(changed(FRESH, **{"spec.driver": GCE_PD})),
        {"content.class.driver-match"},
        set(),
    ),
    (
        "class that does not exist is not judged here",
        review(changed(FRESH, **{"spec.volumeSnapshotClassName": "nope"})),
        set(),
        set(),
    ),
    (
        "re-sent CREATE of a stored content never conflicts with itself",
        review(
            snapshot_content(
                "snapcontent-orders-preprov",
                ref=("shop", "orders-restore-snap"),
                cls="ebs-snapclass",
                uid="d3288596-c259-42bf-9aa7-e3396c50b0b0",
            )
        ),
        set(),
        set(),
    ),
]


@pytest.mark.parametrize(*table(CASES))
def test_content_rules(state: StateIndex, body: dict, denied: set, warned: set) -> None:
    assert_outcome(judge(state, body), denied, warned)


UPDATES = [
    (
        "snapshot handle changed",
        {"spec.source.snapshotHandle": "snap-0ffffffffffffffff"},
        {"content.source.immutable"},
    ),
    ("ref name changed", {"spec.volumeSnapshotRef.name": "other"}, {"content.ref.immutable"}),
    (
        "ref uid set for the first time",
        {"spec.volumeSnapshotRef.uid": "1d1d1d1d-aaaa-4bbb-8ccc-0d0d0d0d0d0d"},
        set(),
    ),
    (
        "driver changed",
        {"spec.driver": GCE_PD},
        {"content.driver.immutable", "content.class.driver-match"},
    ),
    ("volume mode removed", {"spec.sourceVolumeMode": None}, {"content.volume-mode.immutable"}),
    ("volume mode changed", {"spec.sourceVolumeMode": "Block"}, {"content.volume-mode.immutable"}),
]


@pytest.mark.parametrize(*table(UPDATES, ("updates", "denied")))
def test_content_updates(state: StateIndex, updates: dict, denied: set) -> None:
    body = review(changed(FRESH, **updates), operation="UPDATE", old=FRESH)
    assert_outcome(judge(state, body), denied)


@pytest.mark.parametrize(
    ("old_uid", "new_uid", "denied"),
    [
        (None, "u-1", False),
        ("u-1", "u-1", False),
        ("u-1", "u-2", True),
        ("u-1", None, True),
        ("", "u-1", True),  # an empty string counts as set
    ],
)
def test_ref_uid_is_set_once(
    state: StateIndex, old_uid: str | None, new_uid: str | None, denied: bool
) -> None:
    old = changed(FRESH, **{"spec.volumeSnapshotRef.uid": old_uid})
    new = changed(FRESH, **{"spec.volumeSnapshotRef.uid": new_uid})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert ("content.ref.immutable" in denied_ids(verdict)) is denied


def test_volume_mode_may_not_be_added(state: StateIndex) -> None:
    old = changed(FRESH, **{"spec.sourceVolumeMode": None})
    verdict = judge(state, review(FRESH, operation="UPDATE", old=old))
    assert verdict.message == (
        "content.volume-mode.immutable: spec.sourceVolumeMode is immutable: "
        'was absent, now "Filesystem"'
    )


def test_snapshot_naming_another_content_is_a_conflict(state: StateIndex) -> None:
    verdict = judge(
        state, review(snapshot_content("snapcontent-manual", ref=("shop", "postgres-data-snap-1")))
    )
    assert denied_ids(verdict) == {"content.binding.one-to-one"}
    assert (
        "spec.volumeSnapshotRef points at VolumeSnapshot shop/postgres-data-snap-1, but that "
        'snapshot names content "snapcontent-53f4f425-43b4-4baa-965c-c529c04ed742" in '
        "status.boundVolumeSnapshotContentName"
    ) in verdict.message


def test_two_refs_with_different_uids_never_conflict(state: StateIndex) -> None:
    add(state, snapshot_content("snapcontent-a", ref=("billing", "inv"), ref_uid="uid-a"))
    verdict = judge(
        state, review(snapshot_content("snapcontent-b", ref=("billing", "inv"), ref_uid="uid-b"))
    )
    assert verdict.allowed


def test_stale_existing_content_does_not_conflict(state: StateIndex) -> None:
    add(
        state,
        volume_snapshot("inv", "billing", content="snapcontent-b", uid="uid-current"),
        snapshot_content("snapcontent-a", ref=("billing", "inv"), ref_uid="uid-previous"),
    )
    verdict = judge(
        state,
        review(snapshot_content("snapcontent-b", ref=("billing", "inv"), ref_uid="uid-current")),
    )
    assert verdict.allowed and not verdict.findings


def test_deleting_content_is_not_a_binding(state: StateIndex) -> None:
    add(state, snapshot_content("snapcontent-a", ref=("billing", "inv"), deleting=True))
    verdict = judge(state, review(snapshot_content("snapcontent-b", ref=("billing", "inv"))))
    assert verdict.allowed


def test_content_created_for_a_snapshot_whose_class_has_another_driver(state: StateIndex) -> None:
    add(state, volume_snapshot("pd-restore", content="snapcontent-pd", cls="gce-pd-snapclass"))
    body = review(snapshot_content("snapcontent-pd", driver=EBS, ref=("shop", "pd-restore")))
    verdict = judge(state, body)
    assert denied_ids(verdict) == {"content.class.driver-match"}
    assert (
        f'spec.driver is "{EBS}", but VolumeSnapshot shop/pd-restore names this content '
        f'and class "gce-pd-snapclass", whose driver is "{GCE_PD}"' in verdict.message
    )
    # On UPDATE only the content's own class is compared.
    update = judge(
        state,
        review(
            body["request"]["object"],
            operation="UPDATE",
            old=changed(body["request"]["object"], **{"spec.deletionPolicy": "Delete"}),
        ),
    )
    assert "content.class.driver-match" not in denied_ids(update)


def _naming_snapshot_with_a_gce_class(state: StateIndex) -> None:
    """A snapshot names the content and a class of another driver than the content's."""
    add(
        state,
        volume_snapshot("legacy", content="snapcontent-legacy", cls="gce-pd-snapclass"),
    )


def test_ratcheting_never_claims_a_problem_the_old_object_did_not_have(
    state: StateIndex,
) -> None:
    """The old content breaks only a CREATE-only clause (a snapshot naming it has a
    class of another driver); the update introduces a mismatch of its own class.
    That is a new problem: denied, not waved through as "already so"."""
    _naming_snapshot_with_a_gce_class(state)
    old = snapshot_content("snapcontent-legacy", ref=("shop", "legacy"), cls=None, driver=EBS)
    new = changed(old, **{"spec.volumeSnapshotClassName": "gce-pd-snapclass"})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert denied_ids(verdict) == {"content.class.driver-match"}
    assert not any("already so" in w for w in verdict.warnings)


def test_ratcheting_keeps_exactly_the_problem_the_old_object_had(state: StateIndex) -> None:
    old = snapshot_content(
        "snapcontent-legacy", ref=("shop", "legacy"), cls="gce-pd-snapclass", driver=EBS
    )
    new = changed(old, **{"spec.deletionPolicy": "Delete"})
    assert old["spec"]["deletionPolicy"] == "Retain"
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert verdict.allowed
    (warning,) = verdict.warnings
    assert warning.startswith("content.class.driver-match: already so before this update: ")
