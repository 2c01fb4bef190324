"""Claims on unique slots through the real client and the fake apiserver, which
answers AlreadyExists, Conflict and delete preconditions as the real one does."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeapi import FakeAPIServer, fake_apiserver

from webhook.cluster.api import KubeAPI, api_client
from webhook.cluster.claims import Holder, LeaseClaims
from webhook.model import kinds
from webhook.state.slots import Slot

LEASES = ("coordination.k8s.io", "leases")
SLOT = Slot(
    kinds.VOLUME,
    "class.default.unique",
    "metadata.annotations[snapshot.storage.kubernetes.io/is-default-class]",
    "default-class",
    ("ebs.csi.aws.com",),
    'the default VolumeSnapshotClass of driver "ebs.csi.aws.com"',
)
GOLD = Holder("VolumeSnapshotClass", "", "gold", "uid-gold", "CREATE")
SILVER = Holder("VolumeSnapshotClass", "", "silver", "uid-silver", "CREATE")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += datetime.timedelta(seconds=seconds)


@pytest.fixture
def fake() -> Iterator[FakeAPIServer]:
    with fake_apiserver() as api:
        yield api


def claims_for(fake: FakeAPIServer, tmp_path: Path, clock: Clock, name: str = "k") -> LeaseClaims:
    api = KubeAPI(api_client(str(fake.kubeconfig(tmp_path / name))))
    return LeaseClaims(api, "snapshot-webhook", duration=30, clock=clock)


@pytest.fixture
def two_replicas(fake: FakeAPIServer, tmp_path: Path) -> tuple[Clock, LeaseClaims, LeaseClaims]:
    """Two replicas' claims on one fake apiserver, on one controllable clock."""
    clock = Clock()
    return clock, claims_for(fake, tmp_path, clock, "a"), claims_for(fake, tmp_path, clock, "b")


def leases(fake: FakeAPIServer) -> list[dict[str, object]]:
    return fake.stored_objects(*LEASES)


def test_one_holder_wins_and_the_same_object_may_claim_again(
    fake: FakeAPIServer, two_replicas: tuple[Clock, LeaseClaims, LeaseClaims]
) -> None:
    _, one, two = two_replicas
    assert one.claim(SLOT, GOLD).claimed
    held = two.claim(SLOT, SILVER)
    assert not held.claimed and held.holder == GOLD and not held.error
    assert held.until is not None
    assert two.claim(SLOT, GOLD).claimed  # a retried call for the same object
    (lease,) = leases(fake)
    assert lease["metadata"]["name"] == SLOT.lease_name  # type: ignore[index]
    assert lease["spec"]["holderIdentity"] == "VolumeSnapshotClass gold"  # type: ignore[index]
    assert lease["spec"]["leaseDurationSeconds"] == 30  # type: ignore[index]


def test_concurrent_claims_from_many_replicas_give_one_winner(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    clock = Clock()
    replicas = [claims_for(fake, tmp_path, clock, f"r{n}") for n in range(3)]
    holders = [Holder("VolumeSnapshotClass", "", f"c{n}", f"u{n}", "CREATE") for n in range(30)]
    barrier = threading.Barrier(len(holders))
    won: list[bool] = [False] * len(holders)

    def claim(n: int) -> None:
        barrier.wait(timeout=10)
        won[n] = replicas[n % 3].claim(SLOT, holders[n]).claimed

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(holders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert won.count(True) == 1


def test_an_expired_claim_is_taken_over_and_a_conflict_is_decided_again(
    fake: FakeAPIServer, two_replicas: tuple[Clock, LeaseClaims, LeaseClaims]
) -> None:
    clock, one, two = two_replicas
    assert one.claim(SLOT, GOLD).claimed
    clock.advance(31)
    real = two._request
    raced = {"n": 0}

    def racing(method: str, path: str, body: object = None, query: object = None):  # type: ignore[no-untyped-def]
        if method == "PUT" and raced["n"] == 0:
            raced["n"] += 1
            # another replica takes the expired claim between our read and our update
            assert one.claim(SLOT, Holder("VolumeSnapshotClass", "", "bronze", "u", "CREATE"))
        return real(method, path, body, query)  # type: ignore[arg-type]

    two._request = racing  # type: ignore[method-assign]
    outcome = two.claim(SLOT, SILVER)
    # our update carried the stale resourceVersion: Conflict, read again, and the
    # claim bronze just took is live, so silver is held off
    assert raced["n"] == 1
    assert not outcome.claimed and outcome.holder is not None
    assert outcome.holder.name == "bronze"
    clock.advance(31)
    assert two.claim(SLOT, SILVER).claimed
    assert two.counts["taken_over"] == 1


def test_a_holder_that_gave_the_slot_up_is_taken_over_at_once(
    fake: FakeAPIServer, two_replicas: tuple[Clock, LeaseClaims, LeaseClaims]
) -> None:
    _, one, two = two_replicas
    assert one.claim(SLOT, GOLD).claimed
    two.gave_up = lambda slot, holder: holder.name == "gold"
    assert two.claim(SLOT, SILVER).claimed


def test_expired_claims_are_swept_and_settled_ones_released(
    fake: FakeAPIServer, two_replicas: tuple[Clock, LeaseClaims, LeaseClaims]
) -> None:
    clock, one, two = two_replicas
    other = Slot(*(SLOT.__dict__[k] for k in ("family", "rule_id", "path", "kind")), ("x",), "x")
    assert one.claim(SLOT, GOLD).claimed
    assert one.claim(other, SILVER).claimed
    assert two.sweep() == 2 and len(leases(fake)) == 2
    clock.advance(31)
    assert two.sweep() == 0  # any replica removes expired claims
    assert leases(fake) == []
    assert one.claim(SLOT, GOLD).claimed
    settled = {"gold"}
    assert one.settled(lambda slot, holder: holder.name in settled, grace=5) == 0
    clock.advance(6)  # held for longer than the grace: released
    assert one.settled(lambda slot, holder: holder.name in settled, grace=5) == 1
    assert leases(fake) == []


def test_an_unreachable_apiserver_is_an_error_not_a_claim(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    clock = Clock()
    one = claims_for(fake, tmp_path, clock)
    fake.writes_failing = True
    outcome = one.claim(SLOT, GOLD)
    assert not outcome.claimed and "503" in outcome.error
    fake.close()
    outcome = one.claim(SLOT, GOLD)
    assert not outcome.claimed and outcome.error
    assert one.counts["failed"] == 2


def test_the_sweep_deletes_only_the_webhooks_own_claims(
    fake: FakeAPIServer, two_replicas: tuple[Clock, LeaseClaims, LeaseClaims]
) -> None:
    clock, one, _ = two_replicas
    fake.store(
        "coordination.k8s.io",
        "leases",
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "other-controller", "namespace": "snapshot-webhook"},
            "spec": {
                "holderIdentity": "x",
                "leaseDurationSeconds": 1,
                "renewTime": "2020-01-01T00:00:00.000000Z",
            },
        },
    )
    assert one.claim(SLOT, GOLD).claimed
    clock.advance(31)
    assert one.sweep() == 0
    assert [lease["metadata"]["name"] for lease in leases(fake)] == ["other-controller"]  # type: ignore[index]
