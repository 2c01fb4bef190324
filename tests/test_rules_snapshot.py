"""VolumeSnapshot rules against the fixture cluster (tests/fixtures/cluster.yaml)."""

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
    snapshot_content,
    table,
    volume_snapshot,
    warned_ids,
)

from webhook.state.index import StateIndex

BOUND_CONTENT = "snapcontent-53f4f425-43b4-4baa-965c-c529c04ed742"
PVC_SNAP = volume_snapshot("postgres-data-snap-2", pvc="postgres-data", cls="ebs-snapclass")
PREPROV = volume_snapshot(
    "orders-restore-snap", content="snapcontent-orders-preprov", cls="ebs-snapclass"
)

CASES = [
    # (case id, review, denied rule ids, warned rule ids)
    ("claim source, matching class", review(PVC_SNAP), set(), set()),
    (
        "both sources",
        review(changed(PVC_SNAP, **{"spec.source.volumeSnapshotContentName": "x"})),
        {"snapshot.source.one-of"},
        {"snapshot.binding.one-to-one"},
    ),
    (
        "neither source",
        review(changed(PVC_SNAP, **{"spec.source": {}})),
        {"snapshot.source.one-of"},
        set(),
    ),
    ("no spec at all", review(changed(PVC_SNAP, spec=None)), {"snapshot.source.one-of"}, set()),
    (
        "no spec.source",
        review(changed(PVC_SNAP, **{"spec.source": None})),
        {"snapshot.source.one-of"},
        set(),
    ),
    (
        "empty claim name",
        review(changed(PVC_SNAP, **{"spec.source.persistentVolumeClaimName": ""})),
        {"snapshot.source.one-of"},
        set(),
    ),
    (
        "null claim name counts as absent",
        review(
            changed(
                PVC_SNAP,
                **{
                    "spec.source": {
                        "persistentVolumeClaimName": None,
                        "volumeSnapshotContentName": "x",
                    }
                },
            )
        ),
        set(),
        {"snapshot.binding.one-to-one"},
    ),
    (
        "group member with empty claim name and no class",
        review(
            volume_snapshot(
                "snapshot-0a1b2c-postgres-data", pvc="", owner_kind="VolumeGroupSnapshot"
            )
        ),
        set(),
        set(),
    ),
    (
        "empty class name",
        review(changed(PVC_SNAP, **{"spec.volumeSnapshotClassName": ""})),
        {"snapshot.class.non-empty"},
        set(),
    ),
    ("pre-provisioned, content ref matches", review(PREPROV), set(), set()),
    (
        "pre-provisioned from another namespace",
        review(
            volume_snapshot(
                "orders-restore-snap",
                "billing",
                content="snapcontent-orders-preprov",
                cls="ebs-snapclass",
            )
        ),
        {"snapshot.binding.one-to-one"},
        set(),
    ),
    (
        "content already bound to another snapshot",
        review(volume_snapshot("steal", content=BOUND_CONTENT, cls="ebs-snapclass")),
        {"snapshot.binding.one-to-one"},
        set(),
    ),
    (
        "content does not exist yet",
        review(volume_snapshot("future", content="snapcontent-future", cls="ebs-snapclass")),
        set(),
        {"snapshot.binding.one-to-one"},
    ),
    (
        "class does not exist",
        review(changed(PVC_SNAP, **{"spec.volumeSnapshotClassName": "nope"})),
        set(),
        {"snapshot.class.exists"},
    ),
    (
        "bound claim, class of another driver",
        review(changed(PVC_SNAP, **{"spec.volumeSnapshotClassName": "gce-pd-snapclass"})),
        {"snapshot.class.driver-match"},
        set(),
    ),
    (
        "unbound claim, storage class of another driver: only a warning",
        review(volume_snapshot("orders-snap", pvc="orders-data", cls="gce-pd-snapclass")),
        set(),
        {"snapshot.class.driver-match"},
    ),
    (
        "unbound claim, in-tree provisioner name differs: only a warning",
        review(volume_snapshot("legacy-snap", pvc="legacy-data", cls="ebs-snapclass")),
        set(),
        {"snapshot.class.driver-match"},
    ),
    (
        "claim on a volume without CSI: driver unknown",
        review(volume_snapshot("reports-snap", "analytics", pvc="reports", cls="gce-pd-snapclass")),
        set(),
        set(),
    ),
    (
        "claim missing: driver unknown",
        review(volume_snapshot("ghost-snap", pvc="ghost", cls="gce-pd-snapclass")),
        set(),
        set(),
    ),
    (
        "pre-provisioned, class name differs from the content's",
        review(changed(PREPROV, **{"spec.volumeSnapshotClassName": "ebs-snapclass-retain"})),
        {"snapshot.class.driver-match"},
        set(),
    ),
    (
        "pre-provisioned, class of another driver",
        review(changed(PREPROV, **{"spec.volumeSnapshotClassName": "gce-pd-snapclass"})),
        {"snapshot.class.driver-match"},
        set(),
    ),
    (
        "no class, one default for the claim's driver",
        review(volume_snapshot("postgres-data-snap-3", pvc="postgres-data")),
        set(),
        set(),
    ),
    (
        "no class, GCE claim has its own default",
        review(volume_snapshot("ch-snap", "analytics", pvc="clickhouse-data-0")),
        set(),
        set(),
    ),
    (
        "no class, claim on a volume without CSI",
        review(volume_snapshot("reports-snap", "analytics", pvc="reports")),
        set(),
        set(),
    ),
    (
        "re-sent CREATE of a stored snapshot never conflicts with itself",
        review(
            volume_snapshot(
                "postgres-data-snap-1",
                pvc="postgres-data",
                cls="ebs-snapclass",
                bound=BOUND_CONTENT,
                uid="53f4f425-43b4-4baa-965c-c529c04ed742",
            )
        ),
        set(),
        set(),
    ),
]


@pytest.mark.parametrize(*table(CASES))
def test_snapshot_rules(state: StateIndex, body: dict, denied: set, warned: set) -> None:
    assert_outcome(judge(state, body), denied, warned)


def test_immutable_source_names_path_and_both_values(state: StateIndex) -> None:
    new = changed(PVC_SNAP, **{"spec.source.persistentVolumeClaimName": "orders-data"})
    verdict = judge(state, review(new, operation="UPDATE", old=PVC_SNAP))
    assert denied_ids(verdict) == {"snapshot.source.immutable"}
    assert verdict.message == (
        "snapshot.source.immutable: spec.source.persistentVolumeClaimName is immutable: "
        'was "postgres-data", now "orders-data"'
    )


def test_source_switch_reports_each_changed_field(state: StateIndex) -> None:
    new = changed(PVC_SNAP, **{"spec.source": {"volumeSnapshotContentName": BOUND_CONTENT}})
    verdict = judge(state, review(new, operation="UPDATE", old=PVC_SNAP))
    assert "spec.source.persistentVolumeClaimName is immutable" in verdict.message
    assert (
        f'spec.source.volumeSnapshotContentName is immutable: was absent, now "{BOUND_CONTENT}"'
        in verdict.message
    )


def test_transition_rules_apply_to_deleting_objects(state: StateIndex) -> None:
    old = volume_snapshot(
        "postgres-data-snap-2", pvc="postgres-data", cls="ebs-snapclass", deleting=True
    )
    new = changed(old, **{"spec.source.persistentVolumeClaimName": "orders-data"})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert denied_ids(verdict) == {"snapshot.source.immutable"}


def test_deleting_object_skips_cross_object_rules(state: StateIndex) -> None:
    old = volume_snapshot("steal", content=BOUND_CONTENT, cls="ebs-snapclass", deleting=True)
    new = changed(old, **{"spec.volumeSnapshotClassName": "gce-pd-snapclass"})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert verdict.allowed and not verdict.findings


def test_missing_content_claimed_by_another_snapshot_is_denied_without_warning(
    state: StateIndex,
) -> None:
    add(state, volume_snapshot("first", content="snapcontent-future"))
    verdict = judge(state, review(volume_snapshot("second", content="snapcontent-future")))
    assert denied_ids(verdict) == {"snapshot.binding.one-to-one"}
    assert warned_ids(verdict) == set()
    assert (
        "shop/first already names that content in spec.source.volumeSnapshotContentName"
        in verdict.message
    )


def test_deleting_snapshot_claims_nothing(state: StateIndex) -> None:
    add(state, volume_snapshot("first", content="snapcontent-future", deleting=True))
    verdict = judge(state, review(volume_snapshot("second", content="snapcontent-future")))
    assert verdict.allowed
    assert warned_ids(verdict) == {"snapshot.binding.one-to-one"}


def test_bound_content_message_names_the_other_binding(state: StateIndex) -> None:
    verdict = judge(state, review(volume_snapshot("steal", content=BOUND_CONTENT)))
    assert (
        "shop/postgres-data-snap-1 already names that content in "
        "status.boundVolumeSnapshotContentName" in verdict.message
    )
    assert 'points at "shop/postgres-data-snap-1", not "shop/steal"' in verdict.message


def test_bound_claim_driver_mismatch_names_both_drivers(state: StateIndex) -> None:
    body = review(changed(PVC_SNAP, **{"spec.volumeSnapshotClassName": "gce-pd-snapclass"}))
    message = judge(state, body).message
    assert f'class "gce-pd-snapclass" has driver "{GCE_PD}"' in message
    assert f'belongs to driver "{EBS}"' in message
    assert 'PersistentVolume "pvc-3f1c9a7e-1b2d-4c5e-8f90-a1b2c3d4e5f6" spec.csi.driver' in message


def test_no_default_class_warns(state: StateIndex) -> None:
    add(
        state,
        snapshot_class(
            "ebs-snapclass", default="false", uid="e6bf4cf5-68a7-449f-b261-dccdca5afe6e"
        ),
    )
    verdict = judge(state, review(volume_snapshot("s", pvc="postgres-data")))
    assert verdict.allowed
    assert warned_ids(verdict) == {"snapshot.class.default-available"}
    assert f'no VolumeSnapshotClass is the default for driver "{EBS}"' in verdict.warnings[0]


def test_two_default_classes_warn_with_both_names(state: StateIndex) -> None:
    add(state, snapshot_class("ebs-snapclass-fast", default="true"))
    verdict = judge(state, review(volume_snapshot("s", pvc="postgres-data")))
    assert warned_ids(verdict) == {"snapshot.class.default-available"}
    assert '"ebs-snapclass", "ebs-snapclass-fast"' in verdict.warnings[0]


def test_deleting_default_class_does_not_count(state: StateIndex) -> None:
    add(
        state,
        snapshot_class(
            "ebs-snapclass",
            default="true",
            deleting=True,
            uid="e6bf4cf5-68a7-449f-b261-dccdca5afe6e",
        ),
    )
    verdict = judge(state, review(volume_snapshot("s", pvc="postgres-data")))
    assert warned_ids(verdict) == {"snapshot.class.default-available"}


def test_group_member_never_gets_default_warning(state: StateIndex) -> None:
    add(
        state,
        snapshot_class(
            "ebs-snapclass", default="false", uid="e6bf4cf5-68a7-449f-b261-dccdca5afe6e"
        ),
    )
    member = volume_snapshot(
        "snapshot-0a1b-postgres", pvc="postgres-data", owner_kind="VolumeGroupSnapshot"
    )
    assert judge(state, review(member)).findings == ()


def test_update_to_another_mismatched_class_is_a_new_problem(state: StateIndex) -> None:
    """Ratcheting is per problem: the old class broke the rule, but the new class
    is another value of the field, so the update is judged on its own."""
    add(state, snapshot_class("gce-pd-snapclass-archive", driver=GCE_PD))
    old = volume_snapshot("legacy", pvc="postgres-data", cls="gce-pd-snapclass")
    new = changed(old, **{"spec.volumeSnapshotClassName": "gce-pd-snapclass-archive"})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert denied_ids(verdict) == {"snapshot.class.driver-match"}


def test_update_that_newly_breaks_a_rule_is_denied(state: StateIndex) -> None:
    new = changed(PVC_SNAP, **{"spec.volumeSnapshotClassName": "gce-pd-snapclass"})
    verdict = judge(state, review(new, operation="UPDATE", old=PVC_SNAP))
    assert denied_ids(verdict) == {"snapshot.class.driver-match"}


def test_pre_provisioned_snapshot_agreeing_with_its_content_is_allowed(state: StateIndex) -> None:
    add(
        state,
        snapshot_content(
            "snapcontent-pd", driver=GCE_PD, cls="gce-pd-snapclass", ref=("shop", "pd-restore")
        ),
    )
    verdict = judge(
        state,
        review(volume_snapshot("pd-restore", content="snapcontent-pd", cls="gce-pd-snapclass")),
    )
    assert verdict.allowed and not verdict.findings
