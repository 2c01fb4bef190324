"""Requests shaped exactly as a kube-apiserver sends them (see wire.py), for each
way kubectl creates, changes and deletes the six kinds: every one is answered
in the request's AdmissionReview version, with its uid, and allowed unless it
makes a second default class."""

from __future__ import annotations

from typing import Any

import pytest
from builders import (
    EBS,
    GCE_PD,
    changed,
    group_content,
    group_snapshot,
    judge,
    snapshot_class,
    snapshot_content,
    volume_snapshot,
)
from wire import wire_review

from webhook.decide.admission import read_review, response
from webhook.state.index import StateIndex

Obj = dict[str, Any]

PVC_SNAP = volume_snapshot("nightly", pvc="postgres-data", cls="ebs-snapclass")
CONTENT_SNAP = volume_snapshot("imported", "shop", content="snapcontent-imported")
IMPORTED = snapshot_content("snapcontent-imported", ref=("shop", "imported"), cls="ebs-snapclass")
BY_VOLUME = snapshot_content(
    "snapcontent-from-volume",
    volume_handle="vol-0abc",
    snapshot_handle=None,
    ref=("shop", "from-volume"),
)
CLASS = snapshot_class("gce-pd-snapclass-2", driver=GCE_PD, deletion_policy="Retain")
DEFAULT = snapshot_class("ebs-snapclass-2", driver=EBS, default="true")
GROUP_CLASS = snapshot_class("gce-pd-groupsnapclass-2", driver=GCE_PD, group=True)
GROUP_DEFAULT = snapshot_class("ebs-groupsnapclass-2", driver=EBS, default="true", group=True)
GROUP = group_snapshot("db-group", selector={"matchLabels": {"app": "postgres"}})
GROUP_FROM_CONTENT = group_snapshot("imported-group", content="groupsnapcontent-imported")
GROUP_CONTENT = group_content("groupsnapcontent-imported", ref=("shop", "imported-group"))


def labelled(obj: Obj) -> Obj:
    return changed(obj, **{"metadata.labels": {"team": "storage"}})


def v1beta(obj: Obj, version: str) -> Obj:
    return changed(obj, apiVersion=f"groupsnapshot.storage.k8s.io/{version}")


DELETING = changed(PVC_SNAP, **{"metadata.deletionTimestamp": "2026-11-21T12:00:00Z"})
DELETING["metadata"]["finalizers"] = ["snapshot.storage.kubernetes.io/volumesnapshot-as-source"]

# name -> (body, allowed)
CASES: dict[str, tuple[Obj, bool]] = {
    "VolumeSnapshot-CREATE-apply-client-side-pvc-source": (wire_review(PVC_SNAP), True),
    "VolumeSnapshot-CREATE-apply-client-side-content-source": (wire_review(CONTENT_SNAP), True),
    "VolumeSnapshot-CREATE-dry-run-server-pvc-source": (
        wire_review(PVC_SNAP, dry_run=True, manager="kubectl-create"),
        True,
    ),
    "VolumeSnapshot-UPDATE-apply-client-side-label": (
        wire_review(labelled(PVC_SNAP), "UPDATE", old=PVC_SNAP),
        True,
    ),
    "VolumeSnapshot-UPDATE-patch-status-subresource": (
        wire_review(
            changed(PVC_SNAP, status={"readyToUse": True}),
            "UPDATE",
            old=PVC_SNAP,
            sub_resource="status",
            manager="snapshot-controller",
        ),
        True,
    ),
    "VolumeSnapshot-UPDATE-patch-remove-finalizer-while-deleting": (
        wire_review(changed(DELETING, **{"metadata.finalizers": None}), "UPDATE", old=DELETING),
        True,
    ),
    "VolumeSnapshot-DELETE-delete-content-source": (
        wire_review(None, "DELETE", old=CONTENT_SNAP),
        True,
    ),
    "VolumeSnapshotContent-CREATE-apply-client-side-snapshot-handle": (
        wire_review(IMPORTED),
        True,
    ),
    "VolumeSnapshotContent-CREATE-apply-server-side-volume-handle": (
        wire_review(BY_VOLUME, manager="kubectl"),
        True,
    ),
    "VolumeSnapshotContent-UPDATE-apply-client-side-label": (
        wire_review(labelled(IMPORTED), "UPDATE", old=IMPORTED),
        True,
    ),
    "VolumeSnapshotContent-DELETE-delete": (wire_review(None, "DELETE", old=IMPORTED), True),
    "VolumeSnapshotClass-CREATE-apply-client-side-default-elsewhere": (
        wire_review(CLASS),
        True,
    ),
    "VolumeSnapshotClass-CREATE-apply-server-side-second-default": (
        wire_review(DEFAULT, manager="kubectl"),
        False,
    ),
    "VolumeSnapshotClass-CREATE-dry-run-server-second-default": (
        wire_review(DEFAULT, dry_run=True, manager="kubectl-create"),
        False,
    ),
    "VolumeSnapshotClass-CREATE-apply-client-side-admissionreview-v1beta1": (
        wire_review(CLASS, review_version="admission.k8s.io/v1beta1"),
        True,
    ),
    "VolumeSnapshotClass-UPDATE-annotate-default-false": (
        wire_review(
            changed(
                CLASS,
                **{
                    "metadata.annotations": {
                        "snapshot.storage.kubernetes.io/is-default-class": "false"
                    }
                },
            ),
            "UPDATE",
            old=CLASS,
        ),
        True,
    ),
    "VolumeSnapshotClass-UPDATE-apply-client-side-label": (
        wire_review(labelled(CLASS), "UPDATE", old=CLASS),
        True,
    ),
    "VolumeSnapshotClass-DELETE-delete-admissionreview-v1beta1": (
        wire_review(None, "DELETE", old=CLASS, review_version="admission.k8s.io/v1beta1"),
        True,
    ),
    "VolumeGroupSnapshot-CREATE-apply-client-side-selector": (wire_review(GROUP), True),
    "VolumeGroupSnapshot-CREATE-apply-server-side-content-source": (
        wire_review(GROUP_FROM_CONTENT, manager="kubectl"),
        True,
    ),
    "VolumeGroupSnapshot-CREATE-dry-run-server-v1beta1-selector-converted-to-v1": (
        wire_review(GROUP, dry_run=True, sent_version="v1beta1", manager="kubectl-create"),
        True,
    ),
    "VolumeGroupSnapshot-UPDATE-apply-client-side-label": (
        wire_review(labelled(GROUP), "UPDATE", old=GROUP),
        True,
    ),
    "VolumeGroupSnapshot-DELETE-delete": (wire_review(None, "DELETE", old=GROUP), True),
    "VolumeGroupSnapshotContent-CREATE-apply-client-side-group-snapshot-handles": (
        wire_review(GROUP_CONTENT),
        True,
    ),
    "VolumeGroupSnapshotContent-CREATE-dry-run-server-v1beta1": (
        wire_review(v1beta(GROUP_CONTENT, "v1beta1"), dry_run=True, manager="kubectl-create"),
        True,
    ),
    "VolumeGroupSnapshotContent-CREATE-apply-server-side-v1beta2-converted-to-v1": (
        wire_review(GROUP_CONTENT, sent_version="v1beta2", manager="kubectl"),
        True,
    ),
    "VolumeGroupSnapshotContent-UPDATE-apply-client-side-v1beta2-label": (
        wire_review(
            labelled(v1beta(GROUP_CONTENT, "v1beta2")),
            "UPDATE",
            old=v1beta(GROUP_CONTENT, "v1beta2"),
        ),
        True,
    ),
    "VolumeGroupSnapshotContent-DELETE-delete": (
        wire_review(None, "DELETE", old=GROUP_CONTENT),
        True,
    ),
    "VolumeGroupSnapshotClass-CREATE-apply-client-side-default-elsewhere": (
        wire_review(GROUP_CLASS),
        True,
    ),
    "VolumeGroupSnapshotClass-CREATE-apply-server-side-v1beta2-converted-to-v1": (
        wire_review(GROUP_CLASS, sent_version="v1beta2", manager="kubectl"),
        True,
    ),
    "VolumeGroupSnapshotClass-CREATE-dry-run-server-v1beta1-second-default": (
        wire_review(v1beta(GROUP_DEFAULT, "v1beta1"), dry_run=True, manager="kubectl-create"),
        False,
    ),
    "VolumeGroupSnapshotClass-UPDATE-apply-client-side-label": (
        wire_review(labelled(GROUP_CLASS), "UPDATE", old=GROUP_CLASS),
        True,
    ),
    "VolumeGroupSnapshotClass-DELETE-delete": (
        wire_review(None, "DELETE", old=GROUP_CLASS),
        True,
    ),
}


@pytest.mark.parametrize(("body", "allowed"), CASES.values(), ids=CASES.keys())
def test_a_request_as_the_apiserver_sends_it_is_answered(
    state: StateIndex, body: Obj, allowed: bool
) -> None:
    verdict = judge(state, body)
    review = read_review(body)
    answer = response(review.api_version, review.uid, verdict)
    assert answer["apiVersion"] == body["apiVersion"]
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == body["request"]["uid"]
    assert verdict.allowed is allowed, verdict.message
    assert verdict.code == (200 if allowed else 403)
    if not allowed:
        assert verdict.message.startswith(
            ("class.default.unique: ", "group-class.default.unique: ")
        )
