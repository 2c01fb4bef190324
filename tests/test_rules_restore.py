"""Claims restored from a snapshot, against the fixture cluster.

The fixture's shop/postgres-data-snap-1 is ready, has restoreSize 100Gi, and is
bound to an EBS content with sourceVolumeMode Filesystem.
"""

from __future__ import annotations

import pytest
from builders import (
    add,
    assert_outcome,
    changed,
    claim,
    denied_ids,
    judge,
    review,
    snapshot_class,
    snapshot_content,
    storage_class,
    table,
    volume_snapshot,
)

from webhook.state.index import StateIndex

SNAP = "postgres-data-snap-1"
CONTENT = "snapcontent-53f4f425-43b4-4baa-965c-c529c04ed742"

CASES = [
    ("same size, same driver", review(claim("restored", snapshot=SNAP)), set(), set()),
    (
        "through dataSourceRef",
        review(claim("restored", snapshot=SNAP, via="dataSourceRef")),
        set(),
        set(),
    ),
    (
        "larger than the snapshot",
        review(claim("restored", snapshot=SNAP, storage="200Gi")),
        set(),
        set(),
    ),
    (
        "smaller than the snapshot",
        review(claim("restored", snapshot=SNAP, storage="50Gi")),
        {"restore.size"},
        set(),
    ),
    (
        "100G is less than 100Gi",
        review(claim("restored", snapshot=SNAP, storage="100G")),
        {"restore.size"},
        set(),
    ),
    (
        "snapshot does not exist",
        review(claim("restored", snapshot="nope")),
        set(),
        {"restore.snapshot.exists"},
    ),
    (
        "StorageClass of another CSI driver",
        review(claim("restored", snapshot=SNAP, storage_class="standard-rwo")),
        {"restore.driver-match"},
        set(),
    ),
    (
        "in-tree provisioner name: only a warning",
        review(claim("restored", snapshot=SNAP, storage_class="gp2-intree")),
        set(),
        {"restore.driver-match"},
    ),
    (
        "Block claim from a Filesystem snapshot",
        review(claim("restored", snapshot=SNAP, volume_mode="Block")),
        {"restore.volume-mode"},
        set(),
    ),
    (
        "explicit Filesystem",
        review(claim("restored", snapshot=SNAP, volume_mode="Filesystem")),
        set(),
        set(),
    ),
    (
        "snapshot in another namespace",
        review(
            claim(
                "restored", "billing", snapshot=SNAP, via="dataSourceRef", snapshot_namespace="shop"
            )
        ),
        set(),
        {"restore.cross-namespace"},
    ),
    ("not a restore: an empty claim", review(claim("fresh", storage="1Mi")), set(), set()),
    (
        "not a restore: a clone",
        review(
            changed(
                claim("clone", storage="1Mi"),
                **{"spec.dataSource": {"kind": "PersistentVolumeClaim", "name": "postgres-data"}},
            )
        ),
        set(),
        set(),
    ),
    (
        "an update of a claim is never judged",
        review(
            claim("restored", snapshot=SNAP, storage="1Gi"),
            operation="UPDATE",
            old=claim("restored", snapshot=SNAP, storage="1Gi"),
        ),
        set(),
        set(),
    ),
]


@pytest.mark.parametrize(*table(CASES))
def test_restore_rules(state: StateIndex, body: dict, denied: set, warned: set) -> None:
    assert_outcome(judge(state, body), denied, warned)


@pytest.mark.parametrize(
    ("requested", "restore_size", "too_small"),
    [
        ("1Gi", "1024Mi", False),
        ("1024Mi", "1Gi", False),
        ("1G", "1Gi", True),
        ("500M", "1G", True),
        ("1.5Gi", "1Gi", False),
        ("1Gi", "1.5Gi", True),
        ("100Gi", 107374182400, False),
        ("99Gi", 107374182400, True),
        (107374182400, "100Gi", False),
    ],
)
def test_quantities_compare_as_kubernetes_quantities(
    state: StateIndex, requested: str | int, restore_size: str | int, too_small: bool
) -> None:
    snap = volume_snapshot("sized", pvc="postgres-data", cls="ebs-snapclass", bound=CONTENT)
    snap["status"] = {
        "boundVolumeSnapshotContentName": CONTENT,
        "readyToUse": True,
        "restoreSize": restore_size,
    }
    add(state, snap)
    verdict = judge(state, review(claim("restored", snapshot="sized", storage=requested)))
    assert ("restore.size" in {f.rule_id for f in verdict.findings if f.denies}) is too_small


def test_too_small_names_both_sizes(state: StateIndex) -> None:
    verdict = judge(state, review(claim("restored", snapshot=SNAP, storage="50Gi")))
    assert verdict.message == (
        'restore.size: spec.resources.requests.storage is "50Gi" (53687091200 bytes), smaller '
        'than VolumeSnapshot shop/postgres-data-snap-1 status.restoreSize "100Gi" '
        "(107374182400 bytes)"
    )


def test_snapshot_not_ready_warns(state: StateIndex) -> None:
    add(state, volume_snapshot("pending-snap", pvc="postgres-data", cls="ebs-snapclass"))
    verdict = judge(state, review(claim("restored", snapshot="pending-snap")))
    assert_outcome(verdict, set(), {"restore.snapshot.ready"})
    assert "status.readyToUse is absent" in verdict.warnings[0]


def test_content_may_allow_a_volume_mode_change(state: StateIndex) -> None:
    allowing = snapshot_content(
        CONTENT,
        volume_handle="vol-0123456789abcdef0",
        snapshot_handle=None,
        ref=("shop", SNAP),
        cls="ebs-snapclass",
        annotations={"snapshot.storage.kubernetes.io/allow-volume-mode-change": "true"},
        uid="c312c1b4-29f3-410c-852c-b1762866ded2",
    )
    add(state, allowing)
    verdict = judge(state, review(claim("restored", snapshot=SNAP, volume_mode="Block")))
    assert_outcome(verdict, set(), set())


def test_a_driver_named_only_by_a_group_class_is_a_csi_driver(state: StateIndex) -> None:
    """A StorageClass whose provisioner no snapshot class names, but a group
    snapshot class does, is a CSI driver: the mismatch denies, it is no in-tree name."""
    add(
        state,
        storage_class("group-only", provisioner="group.csi.example.com"),
        snapshot_class("g", driver="group.csi.example.com", group=True),
    )
    verdict = judge(state, review(claim("restored", snapshot=SNAP, storage_class="group-only")))
    assert denied_ids(verdict) == {"restore.driver-match"}


def test_the_in_tree_warning_keeps_names_whole_and_drops_a_clause_instead(
    state: StateIndex,
) -> None:
    """Names are never shortened: with the longest names the warning loses its
    least useful clauses; with ordinary ones it says everything."""
    long_name = "gp2-intree-" + "x" * 52  # 63 characters, the longest a name may be
    provisioner = "kubernetes.io/aws-ebs-" + "y" * 40
    add(state, storage_class(long_name, provisioner=provisioner))
    verdict = judge(state, review(claim("restored", snapshot=SNAP, storage_class=long_name)))
    (warning,) = verdict.warnings
    assert len(warning) <= 255
    assert f'"{long_name}"' in warning and f'"{provisioner}"' in warning
    assert warning.startswith("restore.driver-match: ") and warning.endswith(" ...")
    add(state, storage_class("gp2", provisioner="kubernetes.io/aws-ebs"))
    (whole,) = judge(state, review(claim("restored", snapshot=SNAP, storage_class="gp2"))).warnings
    assert "(maybe a migrated in-tree name); the snapshot was taken by" in whole
