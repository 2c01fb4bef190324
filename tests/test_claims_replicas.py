"""Several `serve --kube` replicas against one fake apiserver: 200 concurrent
requests for one unique slot, spread over the replicas, admit exactly one."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from builders import review, snapshot_class, snapshot_content, volume_snapshot
from fakeapi import FakeAPIServer, fake_apiserver
from serving import JSON_HEADERS, Server, running_server

LEASES = ("coordination.k8s.io", "leases")
CONCURRENT = 200
FLAGS = (
    "--watch-read-timeout-seconds",
    "2",
    "--discovery-interval-seconds",
    "0.5",
    "--namespace",
    "snapshot-webhook",
    "--reports",  # its Lease is not a claim: these tests count every Lease
    "off",
)

Obj = dict[str, Any]


@pytest.fixture
def fake() -> Iterator[FakeAPIServer]:
    with fake_apiserver() as api:
        yield api


def start_replicas(
    stack: ExitStack, fake: FakeAPIServer, tmp_path: Path, count: int, *extra: str
) -> list[Server]:
    replicas = []
    for n in range(count):
        workdir = tmp_path / f"replica-{n}"
        workdir.mkdir()
        kubeconfig = fake.kubeconfig(workdir / "kubeconfig")
        server = stack.enter_context(
            running_server(workdir, "--kubeconfig", str(kubeconfig), *FLAGS, *extra)
        )
        wait_ready(server)
        replicas.append(server)
    return replicas


def wait_ready(server: Server, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with server.client() as http:
        while http.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "replica not ready"
            time.sleep(0.1)


WORKERS = 50


def send_spread(replicas: list[Server], bodies: list[Obj]) -> list[Obj]:
    """POST every body at once, round robin over the replicas, as a Service would:
    50 workers, each with a connection to every replica made before they start."""
    answers: list[Obj] = [{}] * len(bodies)
    errors: list[str] = []
    barrier = threading.Barrier(WORKERS)

    def work(worker: int) -> None:
        clients = [r.client() for r in replicas]
        try:
            for client in clients:
                client.get("/healthz")  # connected and handshaken before the burst
            barrier.wait(timeout=60)
            for n in range(worker, len(bodies), WORKERS):
                answer = clients[n % len(replicas)].post(
                    "/validate", content=json.dumps(bodies[n]), headers=JSON_HEADERS
                )
                answers[n] = answer.json()["response"]
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}")
        finally:
            for client in clients:
                client.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    return answers


def default_classes(round_: int) -> list[Obj]:
    driver = f"round{round_}.csi.example.com"
    return [
        snapshot_class(f"r{round_}-class-{n}", driver=driver, default="true")
        for n in range(CONCURRENT)
    ]


def snapshots_claiming_one_content(round_: int) -> list[Obj]:
    return [
        volume_snapshot(f"r{round_}-snap-{n}", content=f"r{round_}-content")
        for n in range(CONCURRENT)
    ]


def contents_binding_one_snapshot(round_: int) -> list[Obj]:
    return [
        snapshot_content(f"r{round_}-content-{n}", ref=("shop", f"r{round_}-snap"))
        for n in range(CONCURRENT)
    ]


SLOT_KINDS: list[tuple[str, Callable[[int], list[Obj]]]] = [
    ("default class", default_classes),
    ("content claimed by a snapshot", snapshots_claiming_one_content),
    ("snapshot bound by a content", contents_binding_one_snapshot),
]


@pytest.mark.parametrize("replica_count", [2, 3])
def test_concurrent_conflicting_creates_over_replicas_admit_exactly_one(
    fake: FakeAPIServer, tmp_path: Path, replica_count: int
) -> None:
    with ExitStack() as stack:
        replicas = start_replicas(stack, fake, tmp_path, replica_count)
        for round_ in range(2):
            for what, make in SLOT_KINDS:
                objects = make(round_ + 10 * replica_count)
                answers = send_spread(replicas, [review(obj) for obj in objects])
                admitted = [obj for obj, a in zip(objects, answers, strict=True) if a["allowed"]]
                assert len(admitted) == 1, f"{what}, round {round_}: {len(admitted)} admitted"
                denied = [a for a in answers if not a["allowed"]]
                assert all("pending claim" in a["status"]["message"] for a in denied[:5])
                fake.put(admitted[0])  # the apiserver stores the one admitted


def test_dry_runs_claim_nothing(fake: FakeAPIServer, tmp_path: Path) -> None:
    with ExitStack() as stack:
        (replica,) = start_replicas(stack, fake, tmp_path, 1)
        body = review(snapshot_class("dry", driver="dry.csi.example.com", default="true"))
        body["request"]["dryRun"] = True
        with replica.client() as http:
            for _ in range(3):
                answer = http.post("/validate", content=json.dumps(body), headers=JSON_HEADERS)
                assert answer.json()["response"]["allowed"] is True
        assert fake.stored_objects(*LEASES) == []
        assert not [w for w in fake.writes if "leases" in w[1]]


def test_a_rejected_claimant_blocks_the_slot_only_until_its_claim_expires(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    """The apiserver refuses the admitted object (another plugin denied it): its
    claim holds the slot for the claim's duration, then another object gets it,
    and the expired Lease is removed."""
    with ExitStack() as stack:
        replicas = start_replicas(stack, fake, tmp_path, 2, "--claim-duration-seconds", "2")
        first = review(snapshot_class("first", driver="d.csi.example.com", default="true"))
        second = review(snapshot_class("second", driver="d.csi.example.com", default="true"))
        with replicas[0].client() as one, replicas[1].client() as two:
            assert post(one, first)["allowed"] is True  # never stored: rejected later
            blocked = post(two, second)
            assert blocked["allowed"] is False
            assert "VolumeSnapshotClass first holds a pending claim" in blocked["status"]["message"]
            assert blocked["status"]["message"].startswith("class.default.unique: ")
            deadline = time.monotonic() + 15
            while not (answer := post(two, second))["allowed"]:
                assert time.monotonic() < deadline, answer
                time.sleep(0.2)
            fake.put(second["request"]["object"])
        # with its holder stored and settled, or expired, every claim goes away
        deadline = time.monotonic() + 20
        while fake.stored_objects(*LEASES):
            assert time.monotonic() < deadline, fake.stored_objects(*LEASES)
            time.sleep(0.2)


def post(http: httpx.Client, body: Obj) -> Obj:
    answer = http.post("/validate", content=json.dumps(body), headers=JSON_HEADERS)
    assert answer.status_code == 200
    return answer.json()["response"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(("policy", "allowed"), [("deny", False), ("warn", True)])
def test_claim_failures_follow_the_flag(
    fake: FakeAPIServer, tmp_path: Path, policy: str, allowed: bool
) -> None:
    with ExitStack() as stack:
        (replica,) = start_replicas(stack, fake, tmp_path, 1, "--claim-failure", policy)
        fake.writes_failing = True
        body = review(snapshot_class("f", driver="f.csi.example.com", default="true"))
        with replica.client() as http:
            answer = post(http, body)
            assert answer["allowed"] is allowed
            text = answer["status"]["message"] if not allowed else " ".join(answer["warnings"])
            assert "class.default.unique" in text
            assert ("retry" in text) if not allowed else ("without a claim" in text)
            metrics = http.get("/metrics").text
        assert 'snapshot_webhook_claims_total{result="failed"} 1.0' in metrics


def test_a_refused_create_never_shadows_the_stored_object(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    """A re-sent CREATE of a stored snapshot is admitted here and then refused by the
    apiserver (AlreadyExists): what the watch shows must still decide, so a content
    that binds the stored snapshot's uid is not called stale."""
    stored = volume_snapshot("orders", pvc="orders-data", uid="uid-stored")
    fake.put(stored)
    with ExitStack() as stack:
        (replica,) = start_replicas(stack, fake, tmp_path, 1)
        with replica.client() as http:
            resent = volume_snapshot("orders", pvc="orders-data", uid="uid-resent")
            assert post(http, review(resent))["allowed"] is True
            content = snapshot_content("orders-content", ref=("shop", "orders"))
            bound = json.loads(json.dumps(content))
            bound["spec"]["volumeSnapshotRef"]["uid"] = "uid-stored"
            answer = post(http, review(bound, operation="UPDATE", old=content))
        assert answer["allowed"] is True
        assert not any("stale-uid" in w for w in answer.get("warnings", [])), answer
