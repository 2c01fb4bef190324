"""Warnings before a harmful delete: what each deletion rule warns of, that a
DELETE is never denied (not by a rule, a bad object or a bug), and the index
questions the rules ask, kept right through updates and removals."""

from __future__ import annotations

from typing import Any

import pytest
from builders import (
    EBS,
    add,
    assert_outcome,
    changed,
    claim,
    group_content,
    group_snapshot,
    judge,
    review,
    snapshot_class,
    snapshot_content,
    storage_class,
    table,
    volume_snapshot,
)

from webhook.decide.admission import read_review
from webhook.decide.service import Webhook
from webhook.model import kinds
from webhook.rules import Policy, UnknownRuleError
from webhook.state.index import StateIndex

Obj = dict[str, Any]
PD = "pd.csi.storage.gke.io"


def deleted(obj: Obj, **kwargs: Any) -> Obj:
    return review(None, operation="DELETE", old=obj, **kwargs)


def delete_policy(obj: Obj) -> Obj:
    return changed(obj, **{"spec.deletionPolicy": "Delete"})


def bound_claim(obj: Obj, volume: str) -> Obj:
    return changed(obj, **{"spec.volumeName": volume})


@pytest.fixture
def cluster() -> StateIndex:
    """Two drivers, one default class each; contents, snapshots and claims that
    depend on them."""
    state = StateIndex()
    add(
        state,
        storage_class("gp3"),
        storage_class("standard", provisioner=PD),
        snapshot_class("gold", default="true"),
        snapshot_class("silver"),
        snapshot_class("pd-default", driver=PD, default="true"),
        snapshot_class("group-gold", default="true", group=True),
        delete_policy(snapshot_content("content-gold", cls="gold", ref=("shop", "nightly"))),
        snapshot_content("content-gold-retained", cls="gold", ref=("shop", "weekly")),
        delete_policy(snapshot_content("content-silver", cls="silver", ref=("shop", "hourly"))),
        volume_snapshot("nightly", pvc="orders", cls="gold", bound="content-gold"),
        volume_snapshot("weekly", pvc="orders", cls="gold", bound="content-gold-retained"),
        delete_policy(group_content("group-content-gold", cls="group-gold")),
        claim("orders"),
        claim("orders-copy", snapshot="nightly"),
        bound_claim(claim("orders-old-copy", snapshot="weekly"), "pv-1"),
        claim(
            "elsewhere",
            "reports",
            snapshot="nightly",
            via="dataSourceRef",
            snapshot_namespace="shop",
        ),
    )
    return state


def ids(rule: str) -> set[str]:
    return {rule}


CASES = [
    (
        "a class that Delete-policy contents name",
        deleted(snapshot_class("silver")),
        ids("class.delete.in-use"),
    ),
    (
        "a class named only by a Retain content and one with Delete",
        deleted(snapshot_class("gold", default="true")),
        ids("class.delete.in-use"),
    ),
    ("a class no content names", deleted(snapshot_class("bronze")), set()),
    (
        "a group class that a Delete-policy group content names",
        deleted(snapshot_class("group-gold", default="true", group=True)),
        ids("group-class.delete.in-use"),
    ),
    (
        "a snapshot that pending claims restore from, in two namespaces",
        deleted(volume_snapshot("nightly", pvc="orders", cls="gold")),
        ids("snapshot.delete.restore-pending"),
    ),
    (
        "a snapshot only a bound claim restores from",
        deleted(volume_snapshot("weekly", pvc="orders", cls="gold")),
        set(),
    ),
    (
        "a content a live snapshot is bound to",
        deleted(
            delete_policy(snapshot_content("content-gold", cls="gold", ref=("shop", "nightly")))
        ),
        ids("content.delete.bound"),
    ),
    (
        "a content no snapshot names",
        deleted(snapshot_content("content-orphan", ref=("shop", "gone"))),
        set(),
    ),
    (
        "a group snapshot: no deletion rule of its own",
        deleted(group_snapshot("g", selector={})),
        set(),
    ),
]


@pytest.mark.parametrize(*table(CASES, ("body", "warned")))
def test_each_rule_warns_of_what_the_delete_breaks_and_never_denies(
    cluster: StateIndex, body: Obj, warned: set[str]
) -> None:
    verdict = judge(cluster, body)
    assert_outcome(verdict, set(), warned)
    # each names its rule, whole: short enough that the apiserver keeps it uncut
    assert list(verdict.warnings) == [str(f) for f in verdict.findings]


def test_messages_name_what_breaks_and_only_that(cluster: StateIndex) -> None:
    (gold,) = judge(cluster, deleted(snapshot_class("gold", default="true"))).findings
    assert '"content-gold"' in gold.message and "content-gold-retained" not in gold.message
    assert "spec.volumeSnapshotClassName" in gold.message and gold.path == "metadata.name"
    assert "1 VolumeSnapshotContent(s)" in gold.message
    (restore,) = judge(cluster, deleted(volume_snapshot("nightly", pvc="orders"))).findings
    assert '"shop/orders-copy"' in restore.message and '"reports/elsewhere"' in restore.message
    assert (
        "orders-old-copy" not in restore.message
        and "2 unbound PersistentVolumeClaim" in restore.message
    )
    content = delete_policy(snapshot_content("content-gold", cls="gold", ref=("shop", "nightly")))
    (bound,) = judge(cluster, deleted(content)).findings
    assert '"shop/nightly"' in bound.message


def test_a_content_whose_snapshot_is_being_deleted_or_another_incarnation_is_quiet(
    cluster: StateIndex,
) -> None:
    content = snapshot_content("content-gold-retained", cls="gold", ref=("shop", "weekly"))
    assert judge(cluster, deleted(content)).findings  # weekly is live and bound to it
    add(
        cluster,
        volume_snapshot("weekly", pvc="orders", bound="content-gold-retained", deleting=True),
    )
    assert not judge(cluster, deleted(content)).findings
    add(
        cluster,
        volume_snapshot(
            "weekly", pvc="orders", bound="content-gold-retained", uid="another-incarnation"
        ),
    )
    pinned = snapshot_content(
        "content-gold-retained", cls="gold", ref=("shop", "weekly"), ref_uid="the-first-one"
    )
    assert not judge(cluster, deleted(pinned)).findings


# --- the only default class of a driver -----------------------------------------


def awaiting(name: str, pvc: str, namespace: str = "shop") -> Obj:
    return volume_snapshot(name, namespace, pvc=pvc)


def test_deleting_the_only_default_warns_when_snapshots_of_its_driver_wait(
    cluster: StateIndex,
) -> None:
    gold = deleted(snapshot_class("gold", default="true"))
    policy = Policy.parse(["class.delete.in-use=off"])
    assert not judge(cluster, gold, policy).findings  # nothing waits yet
    add(cluster, awaiting("pending", "orders"))  # orders: StorageClass gp3, driver EBS
    (finding,) = judge(cluster, gold, policy).findings
    assert finding.rule_id == "class.delete.last-default"
    assert '"shop/pending" (its claim\'s driver)' in finding.message
    assert f'driver "{EBS}"' in finding.message
    assert finding.path == f"metadata.annotations[{kinds.VOLUME.default_annotation}]"


def test_many_waiting_snapshots_are_shown_three_with_why_and_counted(
    cluster: StateIndex,
) -> None:
    gold = deleted(snapshot_class("gold", default="true"))
    policy = Policy.parse(["class.delete.in-use=off"])
    add(cluster, *(awaiting(f"pending-{n}", "orders") for n in range(5)))
    (finding,) = judge(cluster, gold, policy).findings
    assert "5 VolumeSnapshot(s)" in finding.message
    assert finding.message.count("(its claim's driver)") == 3
    assert "and 2 more;" in finding.message


def test_a_snapshot_of_another_driver_or_a_second_default_keeps_it_quiet(
    cluster: StateIndex,
) -> None:
    gold = deleted(snapshot_class("gold", default="true"))
    policy = Policy.parse(["class.delete.in-use=off"])
    add(cluster, claim("pd-claim", storage_class="standard"), awaiting("pd-snap", "pd-claim"))
    assert not judge(cluster, gold, policy).findings  # its driver has its own default
    add(cluster, awaiting("unknown", "no-such-claim"))
    (finding,) = judge(cluster, gold, policy).findings
    assert (
        '"shop/unknown" (driver not known)' in finding.message and "pd-snap" not in finding.message
    )
    add(cluster, snapshot_class("gold-2", default="true"))
    assert not judge(cluster, gold, policy).findings  # another default remains
    add(cluster, snapshot_class("gold-2", default="true", deleting=True))
    assert judge(cluster, gold, policy).findings  # one being deleted does not count


def test_snapshots_with_a_class_or_a_content_do_not_wait_for_a_default(
    cluster: StateIndex,
) -> None:
    gold = deleted(snapshot_class("gold", default="true"))
    policy = Policy.parse(["class.delete.in-use=off"])
    add(
        cluster,
        volume_snapshot("classed", pvc="orders", cls="silver"),
        volume_snapshot("static", content="content-orphan"),
        volume_snapshot("bound", pvc="orders", bound="content-x"),
        volume_snapshot("going", pvc="orders", deleting=True),
    )
    assert not judge(cluster, gold, policy).findings
    assert not judge(
        cluster, deleted(snapshot_class("silver")), Policy.parse(["class.delete.in-use=off"])
    ).findings  # not a default class


def test_group_snapshots_without_a_class_wait_for_the_group_default(cluster: StateIndex) -> None:
    body = deleted(snapshot_class("group-gold", default="true", group=True))
    policy = Policy.parse(["group-class.delete.in-use=off"])
    assert not judge(cluster, body, policy).findings
    add(cluster, group_snapshot("g", selector={"matchLabels": {"app": "db"}}))
    (finding,) = judge(cluster, body, policy).findings
    assert finding.rule_id == "group-class.delete.last-default"
    assert '"shop/g" (driver not known)' in finding.message


# --- a delete is never denied -----------------------------------------------------


def test_a_deletion_rule_cannot_be_set_to_deny() -> None:
    with pytest.raises(UnknownRuleError, match="judges deletes, which are never denied"):
        Policy.parse(["content.delete.bound=deny"])
    assert Policy.parse(["content.delete.bound=off"])


def test_turned_off_a_rule_says_nothing(cluster: StateIndex) -> None:
    body = deleted(snapshot_class("silver"))
    assert not judge(cluster, body, Policy.parse(["class.delete.in-use=off"])).findings


@pytest.mark.parametrize(
    "old",
    [
        None,
        {
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotClass",
            "metadata": {"name": "silver"},
            "driver": 7,
        },
        {
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshotClass",
            "metadata": "not a mapping",
        },
    ],
    ids=["no oldObject", "a field of the wrong type", "unreadable metadata"],
)
def test_a_delete_of_an_unreadable_object_is_allowed_without_a_word(
    cluster: StateIndex, old: Obj | None
) -> None:
    body = deleted(snapshot_class("silver"))
    body["request"]["oldObject"] = old
    verdict = judge(cluster, body)
    assert verdict.allowed and verdict.code == 200 and not verdict.findings


def test_a_bug_in_a_rule_never_blocks_a_delete(
    cluster: StateIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webhook.decide.service as service

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "judge", broken)
    webhook = Webhook(cluster, Policy(), embedded=False)
    verdict = webhook.judge(read_review(deleted(snapshot_class("silver"))))
    assert verdict.allowed and verdict.code == 200
    verdict = webhook.judge(read_review(review(snapshot_class("copper"))))
    assert not verdict.allowed and verdict.code == 500  # a CREATE answers the error


def test_embedded_a_dry_run_delete_warns_and_keeps_the_object(cluster: StateIndex) -> None:
    webhook = Webhook(cluster, Policy(), embedded=True)
    silver = deleted(snapshot_class("silver"), dry_run=True)
    verdict = webhook.judge(read_review(silver))
    assert verdict.allowed and verdict.warnings
    assert cluster.family(kinds.VOLUME).snapshot_class("silver") is not None
    verdict = webhook.judge(read_review(deleted(snapshot_class("silver"))))
    assert verdict.allowed and verdict.warnings
    assert cluster.family(kinds.VOLUME).snapshot_class("silver") is None


# --- the index answers stay right through updates and removals ----------------------


def test_the_indexes_follow_updates_and_removals(cluster: StateIndex) -> None:
    volume = cluster.family(kinds.VOLUME)
    assert [c.id.name for c in volume.contents_needing_class("gold")] == ["content-gold"]
    add(cluster, snapshot_content("content-gold", cls="gold", ref=("shop", "nightly")))
    assert volume.contents_needing_class("gold") == ()  # now Retain
    add(cluster, delete_policy(snapshot_content("content-gold", cls="silver")))
    assert [c.id.name for c in volume.contents_needing_class("silver")] == [
        "content-gold",
        "content-silver",
    ]
    cluster.remove(kinds.for_role(kinds.VOLUME, kinds.Role.CONTENT), "", "content-silver")
    assert [c.id.name for c in volume.contents_needing_class("silver")] == ["content-gold"]

    restoring = [c.id.display for c in cluster.claims_restoring("shop", "nightly")]
    assert restoring == ["reports/elsewhere", "shop/orders-copy"]
    add(cluster, claim("orders-copy", snapshot="weekly"))  # re-pointed
    assert [c.id.name for c in cluster.claims_restoring("shop", "weekly")] == [
        "orders-copy",
        "orders-old-copy",
    ]
    claims = kinds.by_group_kind("", "PersistentVolumeClaim")
    assert claims is not None
    cluster.remove(claims, "reports", "elsewhere")
    assert cluster.claims_restoring("shop", "nightly") == ()

    add(cluster, awaiting("pending", "orders"))
    assert [s.id.name for s in volume.snapshots_awaiting_default()] == ["pending"]
    add(cluster, volume_snapshot("pending", pvc="orders", cls="gold"))  # the controller set it
    assert volume.snapshots_awaiting_default() == ()


# --- registration: the DELETE entries follow the policy ------------------------------


def delete_entries(policy: Policy) -> dict[str, list[str]]:
    from webhook.render.configuration import warned_kinds, webhooks

    entries = webhooks("svc", "ns", warned_deletes=warned_kinds(policy))
    return {
        e["name"]: e["rules"][0]["resources"]
        for e in entries
        if e["rules"][0]["operations"] == ["DELETE"]
    }


def test_only_kinds_with_a_deletion_rule_on_are_registered_for_delete() -> None:
    assert delete_entries(Policy()) == {
        "snapshots-deletes.warnings.snapshot-webhook.io": [
            "volumesnapshots",
            "volumesnapshotcontents",
            "volumesnapshotclasses",
        ],
        "groupsnapshots-deletes.warnings.snapshot-webhook.io": [
            "volumegroupsnapshotcontents",
            "volumegroupsnapshotclasses",
        ],
    }
    fewer = Policy.parse(["snapshot.delete.restore-pending=off", "group-content.delete.bound=off"])
    assert delete_entries(fewer)["snapshots-deletes.warnings.snapshot-webhook.io"] == [
        "volumesnapshotcontents",
        "volumesnapshotclasses",
    ]
    assert delete_entries(fewer)["groupsnapshots-deletes.warnings.snapshot-webhook.io"] == [
        "volumegroupsnapshotclasses"
    ]
    group_off = Policy.parse(
        [
            "group-class.delete.in-use=off",
            "group-class.delete.last-default=off",
            "group-content.delete.bound=off",
        ]
    )
    assert list(delete_entries(group_off)) == ["snapshots-deletes.warnings.snapshot-webhook.io"]
