"""Cluster mode against a real HTTP server speaking the list/watch protocol,
driven by the official `kubernetes` client (tests/fakeapi.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from builders import (
    assert_outcome,
    claim,
    review,
    snapshot_class,
    snapshot_content,
    volume_snapshot,
)
from fakeapi import FakeAPIServer, fake_apiserver

from webhook.cluster.api import KubeAPI, api_client
from webhook.cluster.watch import ClusterState, WatchSettings
from webhook.decide.admission import read_review
from webhook.decide.service import Webhook
from webhook.model import kinds
from webhook.model.reading import parse_object
from webhook.rules import Policy
from webhook.state.index import StateIndex
from webhook.state.layers import Reservations

FAST = WatchSettings(
    connect_timeout=2.0,
    read_timeout=1.0,
    watch_timeout=1,  # each watch ends after 1-2 s and is resumed
    backoff_base=0.05,
    backoff_cap=0.2,
    discovery_interval=0.2,
    failure_grace=0.5,
    live_get_timeout=1.0,
)
VSC = kinds.by_group_kind(kinds.SNAPSHOT_GROUP, "VolumeSnapshotClass")
EBS_DEFAULT = snapshot_class("ebs-snapclass", default="true")


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


class Cluster:
    """A fake apiserver, the reflectors watching it, and a webhook judging from them."""

    def __init__(self, fake: FakeAPIServer, tmp: Path, settings: WatchSettings = FAST) -> None:
        self.fake = fake
        self.index = StateIndex()
        self.reservations = Reservations(ttl=5.0)
        self.counts: list[tuple[str, str]] = []
        self.api = KubeAPI(api_client(str(fake.kubeconfig(tmp / "kubeconfig"))))
        self.state = ClusterState(
            self.api,
            self.index,
            settings,
            on_change=self.reservations.settle,
            counters=lambda what, info: self.counts.append((what, info.kind)),
        )
        self.lookups: list[tuple[str, str]] = []
        self.webhook = Webhook(
            self.index,
            Policy(),
            embedded=False,
            reservations=self.reservations,
            live_get=self.state.live_get,
            on_live_get=lambda info, r: self.lookups.append((info.kind, r)),
        )

    def judge(self, body: dict) -> object:
        import asyncio

        return asyncio.run(self.webhook.judge_live(read_review(body)))

    def has_class(self, name: str) -> bool:
        return self.index.family(kinds.VOLUME).snapshot_class(name) is not None


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with fake_apiserver() as fake:
        fake.put(EBS_DEFAULT)
        running = Cluster(fake, tmp_path)
        running.state.start()
        try:
            assert running.state.wait_synced(10)
            yield running
        finally:
            running.state.stop()


def test_initial_list_pages_through_continue_and_becomes_ready(tmp_path: Path) -> None:
    with fake_apiserver(page_size=2) as fake:
        for n in range(5):
            fake.put(snapshot_class(f"c{n}", driver="d.csi.example.com"))
        running = Cluster(fake, tmp_path)
        assert running.state.status.problems()  # nothing listed yet
        running.state.start()
        try:
            assert running.state.wait_synced(10)
            assert running.state.status.problems() == []
            assert len(running.index.records(VSC)) == 5
            lists = [
                q
                for p, q in fake.requests
                if p.endswith("/volumesnapshotclasses") and "watch" not in q
            ]
            assert sum("continue" in q for q in lists) == 2  # 5 objects, pages of 2
            (first_watch, *_) = fake.watch_requests("volumesnapshotclasses")
            assert first_watch["allowWatchBookmarks"] == ["true"]
            assert first_watch["resourceVersion"] == [str(fake.version)]
        finally:
            running.state.stop()


def test_every_event_kind_changes_verdicts(cluster: Cluster) -> None:
    second = review(snapshot_class("ebs-snapclass-fast", default="true"), dry_run=True)
    assert_outcome(cluster.judge(second), {"class.default.unique"})
    cluster.fake.put(snapshot_class("ebs-snapclass", default="false"))  # MODIFIED
    eventually(lambda: cluster.judge(second).allowed)
    cluster.fake.put(EBS_DEFAULT)
    eventually(lambda: not cluster.judge(second).allowed)
    cluster.fake.delete(EBS_DEFAULT)  # DELETED
    eventually(lambda: cluster.judge(second).allowed)
    cluster.fake.put(snapshot_class("other-default", default="true"))  # ADDED
    eventually(lambda: not cluster.judge(second).allowed)


def test_410_gone_relists_and_sees_what_happened_meanwhile(cluster: Cluster) -> None:
    cluster.fake.put(snapshot_class("doomed", driver="x.csi.example.com"))
    eventually(lambda: cluster.has_class("doomed"))
    cluster.fake.silent = True  # hold the open watch so the delete is not streamed
    cluster.fake.delete(snapshot_class("doomed", driver="x.csi.example.com"))
    cluster.fake.compact()
    cluster.fake.silent = False
    cluster.fake.drop_watches()
    eventually(lambda: not cluster.has_class("doomed"))
    assert ("relist", "VolumeSnapshotClass") in cluster.counts[1:]


def test_dropped_connection_resumes_from_the_last_version_without_relisting(
    cluster: Cluster,
) -> None:
    relists = cluster.counts.count(("relist", "VolumeSnapshotClass"))
    cluster.fake.drop_watches()
    cluster.fake.put(snapshot_class("after-drop", driver="y.csi.example.com"))
    eventually(lambda: cluster.has_class("after-drop"))
    assert cluster.counts.count(("relist", "VolumeSnapshotClass")) == relists
    resumed = cluster.fake.watch_requests("volumesnapshotclasses")[-1]
    assert int(resumed["resourceVersion"][0]) > 1000


def test_a_silent_server_is_detected_by_the_read_timeout(cluster: Cluster) -> None:
    cluster.fake.silent = True
    time.sleep(0.1)
    cluster.fake.put(snapshot_class("while-silent", driver="z.csi.example.com"))
    eventually(lambda: cluster.has_class("while-silent"), timeout=6.0)
    assert ("restart", "VolumeSnapshotClass") in cluster.counts


def test_idle_watches_with_no_bookmarks_end_cleanly_and_stay_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real apiserver sends an idle watch no bookmarks: each watch asks to be
    ended (timeoutSeconds), reads for longer than that, and takes the clean end
    as the normal renewal. No warning, no restart, and the freshness moves on."""
    caplog.set_level(logging.INFO, logger="snapshot_webhook.kube")
    with fake_apiserver() as fake:
        fake.bookmark_interval = None  # as an idle watch on a real apiserver
        running = Cluster(fake, tmp_path)
        running.state.start()
        try:
            assert running.state.wait_synced(10)
            first = running.state.status.fresh_times()
            assert set(first) == {info.kind for info in kinds.KINDS}
            # every kind renews its watch at least twice (each lasts 1-2 s)
            eventually(
                lambda: all(len(fake.watch_requests(info.plural)) >= 3 for info in kinds.KINDS),
                timeout=15.0,
            )
            later = running.state.status.fresh_times()
            assert all(later[kind] > first[kind] for kind in first)
            assert running.state.status.problems() == []
            for info in kinds.KINDS:
                for query in fake.watch_requests(info.plural):
                    assert 1 <= int(query["timeoutSeconds"][0]) <= 2
        finally:
            running.state.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [c for c in running.counts if c[0] == "restart"]


def test_stop_ends_every_open_watch_together_and_promptly(tmp_path: Path) -> None:
    slow = WatchSettings(**{**FAST.__dict__, "watch_timeout": 600, "read_timeout": 60.0})
    with fake_apiserver() as fake:
        running = Cluster(fake, tmp_path, slow)
        running.state.start()
        try:
            assert running.state.wait_synced(10)
            eventually(lambda: all(fake.watch_requests(i.plural) for i in kinds.KINDS))
        finally:
            started = time.monotonic()
            running.state.stop()
            took = time.monotonic() - started
        assert not [t for t in running.state.threads if t.is_alive()]
        assert took < slow.stop_timeout


def test_bookmarks_move_the_resume_point(cluster: Cluster) -> None:
    cluster.fake.put(snapshot_content("c-bookmark", ref=("ns", "s")))
    classes = next(r for r in cluster.state.reflectors if r.info == VSC)
    # a bookmark carries the class watch past the content's resourceVersion
    eventually(lambda: classes.resource_version == str(cluster.fake.version))
    cluster.fake.drop_watches()
    eventually(lambda: len(cluster.fake.watch_requests("volumesnapshotclasses")) >= 2)
    resumed = cluster.fake.watch_requests("volumesnapshotclasses")[-1]
    assert int(resumed["resourceVersion"][0]) == cluster.fake.version


def test_missing_crd_is_empty_then_watched_when_it_appears(tmp_path: Path) -> None:
    with fake_apiserver(groups={kinds.SNAPSHOT_GROUP: ["v1"]}) as fake:
        running = Cluster(fake, tmp_path)
        running.state.start()
        try:
            assert running.state.wait_synced(10)
            eventually(lambda: running.state.status.problems() == [])
            # an uninstalled CRD is known empty: current, so no stale-watch alert
            group_kinds = {i.kind for i in kinds.KINDS if i.api_group == kinds.GROUP_SNAPSHOT_GROUP}
            fresh = running.state.status.fresh_times()
            assert all(fresh[kind] > 0 for kind in group_kinds)
            fake.install_group(kinds.GROUP_SNAPSHOT_GROUP, ["v1beta1"])
            fake.put(snapshot_class("ebs-groupsnapclass", default="true", group=True))
            group = running.index.family(kinds.GROUP)
            eventually(lambda: group.snapshot_class("ebs-groupsnapclass") is not None)
            # found by discovery at the served version, then watched (the list that
            # delivered the class comes first, so the watch request may follow it)
            eventually(lambda: bool(fake.watch_requests("volumegroupsnapshotclasses")))
            assert any(
                p.startswith("/apis/groupsnapshot.storage.k8s.io/v1beta1/")
                for p, _ in fake.requests
            )
        finally:
            running.state.stop()


def test_forbidden_kind_is_logged_once_with_the_missing_verb(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fake_apiserver() as fake:
        fake.forbidden.add("persistentvolumes")
        running = Cluster(fake, tmp_path)
        with caplog.at_level(logging.WARNING, logger="snapshot_webhook.kube"):
            running.state.start()
            try:
                assert running.state.wait_synced(10)
                time.sleep(0.5)  # a few discovery intervals: still one message
                # a kind it may not read is not current: the stale-watch alert sees it
                assert running.state.status.fresh_times()["PersistentVolume"] == 0.0
            finally:
                running.state.stop()
    messages = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("PersistentVolume:")
    ]
    assert len(messages) == 1
    assert "RBAC verb 'list' missing" in messages[0]


def test_readiness_turns_false_while_watches_keep_failing(cluster: Cluster) -> None:
    cluster.fake.failing = True
    cluster.fake.drop_watches()
    eventually(lambda: any("failing" in p for p in cluster.state.status.problems()))
    cluster.fake.failing = False
    eventually(lambda: cluster.state.status.problems() == [])


def test_live_get_finds_an_object_the_watch_has_not_delivered(cluster: Cluster) -> None:
    cluster.fake.put(snapshot_class("brand-new", driver="ebs.csi.aws.com"), emit=False)
    body = review(volume_snapshot("s", content="snapcontent-x", cls="brand-new"))
    verdict = cluster.judge(body)
    assert "snapshot.class.exists" not in {f.rule_id for f in verdict.findings}
    assert ("VolumeSnapshotClass", "found") in cluster.lookups
    assert ("VolumeSnapshotContent", "missing") in cluster.lookups
    missing = cluster.judge(review(volume_snapshot("s", cls="nope", pvc="p")))
    assert "snapshot.class.exists" in {f.rule_id for f in missing.findings}


def test_admitted_claim_is_reserved_until_the_watch_shows_it(cluster: Cluster) -> None:
    driver = "r.csi.example.com"
    first = review(snapshot_class("r1", driver=driver, default="true"))
    second = review(snapshot_class("r2", driver=driver, default="true"))
    assert cluster.judge(
        review(snapshot_class("r0", driver=driver, default="true"), dry_run=True)
    ).allowed
    assert cluster.judge(first).allowed
    verdict = cluster.judge(second)
    assert not verdict.allowed
    assert "a pending claim" in verdict.message
    cluster.fake.put(first["request"]["object"])  # the apiserver stores it; the watch sees it
    eventually(lambda: cluster.has_class("r1"))
    assert cluster.reservations.expire() == 0
    assert "a pending claim" not in cluster.judge(second).message


def test_reservation_expires_when_the_write_never_lands(tmp_path: Path) -> None:
    now = [0.0]
    reservations = Reservations(ttl=30.0, clock=lambda: now[0])
    info = kinds.by_group_kind(kinds.SNAPSHOT_GROUP, "VolumeSnapshotClass")
    assert info is not None
    reservations.reserve(info, parse_object(info, EBS_DEFAULT, "object"))
    assert reservations.expire() == 1
    now[0] = 31.0
    assert reservations.expire() == 0
    assert reservations.index.family(kinds.VOLUME).snapshot_class("ebs-snapclass") is None


def test_live_get_follows_a_restore_to_its_snapshot_and_content(cluster: Cluster) -> None:
    content = "snapcontent-fresh"
    snap = volume_snapshot("fresh", pvc="postgres-data", cls="ebs-snapclass", bound=content)
    snap["status"] = {
        "boundVolumeSnapshotContentName": content,
        "readyToUse": True,
        "restoreSize": "10Gi",
    }
    cluster.fake.put(snap, emit=False)
    cluster.fake.put(
        snapshot_content(
            content,
            volume_handle="vol-1",
            snapshot_handle=None,
            ref=("shop", "fresh"),
            mode="Block",
        ),
        emit=False,
    )
    verdict = cluster.judge(review(claim("restored", snapshot="fresh", storage="5Gi")))
    assert_outcome(verdict, {"restore.size", "restore.volume-mode"})
    assert ("VolumeSnapshot", "found") in cluster.lookups
    assert ("VolumeSnapshotContent", "found") in cluster.lookups
