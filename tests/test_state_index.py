"""The reverse indexes follow every put, replace and remove."""

from __future__ import annotations

from builders import add, changed, snapshot_class, snapshot_content, volume_snapshot

from webhook.model import kinds
from webhook.state.index import StateIndex


def names(records: tuple) -> list[str]:
    return [r.id.name for r in records]


def test_default_class_index_follows_annotation_and_driver() -> None:
    state = StateIndex()
    fam = state.family(kinds.VOLUME)
    cls = snapshot_class("a", default="true")
    add(state, cls)
    assert names(fam.default_classes("ebs.csi.aws.com")) == ["a"]
    add(state, changed(cls, driver="other.csi.example.com"))
    assert fam.default_classes("ebs.csi.aws.com") == ()
    assert names(fam.default_classes("other.csi.example.com")) == ["a"]
    add(state, changed(cls, **{"metadata.annotations": {}}))
    assert fam.default_classes("ebs.csi.aws.com") == ()
    assert fam.default_classes("other.csi.example.com") == ()


def test_snapshot_naming_index_covers_spec_and_status() -> None:
    state = StateIndex()
    fam = state.family(kinds.VOLUME)
    add(state, volume_snapshot("s", content="c1", bound="c2"))
    assert names(fam.snapshots_naming("c1")) == ["s"]
    assert names(fam.snapshots_naming("c2")) == ["s"]
    add(state, volume_snapshot("s", pvc="p", bound="c3"))
    assert fam.snapshots_naming("c1") == () and fam.snapshots_naming("c2") == ()
    assert names(fam.snapshots_naming("c3")) == ["s"]
    state.remove(kinds.for_role(kinds.VOLUME, kinds.Role.SNAPSHOT), "shop", "s")
    assert fam.snapshots_naming("c3") == ()
    assert fam.snapshot("shop", "s") is None


def test_content_ref_index_follows_ref_changes_and_removal() -> None:
    state = StateIndex()
    fam = state.family(kinds.VOLUME)
    add(state, snapshot_content("c", ref=("ns", "a")))
    assert names(fam.contents_referencing("ns", "a")) == ["c"]
    add(state, snapshot_content("c", ref=("ns", "b")))
    assert fam.contents_referencing("ns", "a") == ()
    state.remove(kinds.for_role(kinds.VOLUME, kinds.Role.CONTENT), "", "c")
    assert fam.contents_referencing("ns", "b") == ()


def test_families_are_separate_and_counted() -> None:
    state = StateIndex()
    add(state, snapshot_class("a", default="true"), snapshot_class("a", default="true", group=True))
    assert len(state.family(kinds.VOLUME).default_classes("ebs.csi.aws.com")) == 1
    assert len(state.family(kinds.GROUP).default_classes("ebs.csi.aws.com")) == 1
    counts = state.counts()
    assert counts["VolumeSnapshotClass"] == 1 and counts["VolumeGroupSnapshotClass"] == 1
    assert counts["VolumeSnapshot"] == 0
