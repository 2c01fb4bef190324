"""`serve --kubeconfig` and `audit --kubeconfig` against the list/watch fake, end to end."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import review, snapshot_class, volume_snapshot
from fakeapi import FakeAPIServer, fake_apiserver
from figures import record_figure
from serving import JSON_HEADERS, Server, cli, running_server

WATCH_FLAGS = (
    "--watch-read-timeout-seconds",
    "2",
    "--discovery-interval-seconds",
    "0.5",
    "--audit-interval-seconds",
    "0.5",
    "--reservation-ttl-seconds",
    "10",
)


@pytest.fixture
def fake() -> Iterator[FakeAPIServer]:
    with fake_apiserver() as api:
        api.put(snapshot_class("ebs-snapclass", default="true"))
        yield api


@pytest.fixture
def server(fake: FakeAPIServer, tmp_path: Path) -> Iterator[Server]:
    kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
    with running_server(tmp_path, "--kubeconfig", str(kubeconfig), *WATCH_FLAGS) as running:
        with running.client() as http:
            deadline = 100
            while http.get("/readyz").status_code != 200 and deadline:
                deadline -= 1
                threading.Event().wait(0.1)
        yield running


def send_all(server: Server, bodies: list[dict]) -> list[dict]:
    """POST every body at the same moment, one connection each."""
    barrier = threading.Barrier(len(bodies))
    answers: list[dict] = [{}] * len(bodies)

    def send(n: int) -> None:
        with server.client() as http:
            payload = json.dumps(bodies[n])
            barrier.wait(timeout=10)
            answers[n] = http.post("/validate", content=payload, headers=JSON_HEADERS).json()[
                "response"
            ]

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_not_ready_until_every_kind_is_listed(fake: FakeAPIServer, tmp_path: Path) -> None:
    fake.lists_open.clear()
    kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
    with (
        running_server(tmp_path, "--kubeconfig", str(kubeconfig), *WATCH_FLAGS) as running,
        running.client() as http,
    ):
        waiting = http.get("/readyz")
        assert waiting.status_code == 503
        assert any("initial list of" in p for p in waiting.json()["problems"])
        fake.lists_open.set()
        for _ in range(100):
            if http.get("/readyz").status_code == 200:
                break
            threading.Event().wait(0.1)
        assert http.get("/readyz").json() == {"ready": True, "problems": []}


def test_concurrent_defaults_for_one_driver_admit_exactly_one(server: Server) -> None:
    driver = "race.csi.example.com"
    bodies = [
        review(snapshot_class(f"race-{n}", driver=driver, default="true"), uid=f"u{n}")
        for n in range(16)
    ]
    answers = send_all(server, bodies)
    assert sum(a["allowed"] for a in answers) == 1
    denied = [a for a in answers if not a["allowed"]]
    assert all("class.default.unique" in a["status"]["message"] for a in denied)
    assert all("a pending claim" in a["status"]["message"] for a in denied)


def test_concurrent_snapshots_claiming_one_content_admit_exactly_one(server: Server) -> None:
    bodies = [
        review(volume_snapshot(f"claim-{n}", content="snapcontent-contested"), uid=f"s{n}")
        for n in range(12)
    ]
    answers = send_all(server, bodies)
    assert sum(a["allowed"] for a in answers) == 1


def test_dry_runs_never_reserve(server: Server) -> None:
    driver = "dry.csi.example.com"
    dry = [
        review(snapshot_class(f"dry-{n}", driver=driver, default="true"), dry_run=True, uid=f"d{n}")
        for n in range(6)
    ]
    assert all(a["allowed"] for a in send_all(server, dry))
    real = send_all(server, [review(snapshot_class("dry-real", driver=driver, default="true"))])
    assert real[0]["allowed"]


def test_verdicts_follow_the_cluster_and_metrics_show_the_watches(
    fake: FakeAPIServer, server: Server
) -> None:
    body = review(snapshot_class("ebs-snapclass-fast", default="true"), dry_run=True)
    with server.client() as http:

        def allowed() -> bool:
            return bool(
                http.post("/validate", content=json.dumps(body), headers=JSON_HEADERS).json()[
                    "response"
                ]["allowed"]
            )

        assert not allowed()
        fake.delete(snapshot_class("ebs-snapclass"))
        for _ in range(100):
            if allowed():
                break
            threading.Event().wait(0.05)
        assert allowed()
        fake.put(snapshot_class("a", driver="audit.csi.example.com", default="true"))
        fake.put(snapshot_class("b", driver="audit.csi.example.com", default="true"))
        text = ""
        for _ in range(100):
            text = http.get("/metrics").text
            if 'snapshot_webhook_audit_violations{rule="class.default.unique"} 2.0' in text:
                break
            threading.Event().wait(0.1)
        assert 'snapshot_webhook_audit_violations{rule="class.default.unique"} 2.0' in text
        assert 'snapshot_webhook_relists_total{kind="VolumeSnapshotClass"}' in text
        assert (
            'snapshot_webhook_watch_last_event_timestamp_seconds{kind="VolumeSnapshotClass"}'
            in text
        )


def test_audit_against_the_cluster(fake: FakeAPIServer, tmp_path: Path) -> None:
    fake.put(snapshot_class("ebs-snapclass-fast", default="true"))
    kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
    result = cli("audit", "--kubeconfig", str(kubeconfig), "--output", "json")
    assert result.returncode == 1, result.stderr
    found = json.loads(result.stdout)
    assert sorted(f["object"] for f in found) == ["ebs-snapclass", "ebs-snapclass-fast"]
    assert {f["rule"] for f in found} == {"class.default.unique"}
    assert "audit found 2 problems" in result.stderr
    clean = fake.put(snapshot_class("ebs-snapclass-fast", default="false"))
    assert clean["metadata"]["resourceVersion"]
    again = cli("audit", "--kubeconfig", str(kubeconfig))
    assert again.returncode == 0 and again.stdout == ""


def test_audit_answers_and_exits_at_once_with_every_watch_open(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    fake.bookmark_interval = None  # an idle cluster, as a real apiserver leaves it
    kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
    started = time.monotonic()
    result = cli("audit", "--kubeconfig", str(kubeconfig))
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "audit found no problems" in result.stderr
    # interpreter start, nine lists, the audit, and a stop that waits for no watch
    assert took < 10, took
    record_figure("audit of an idle cluster", f"{took:.1f} s from start to exit")


def test_sigterm_exits_within_ten_seconds_with_every_watch_open(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    """The Deployment's own shutdown flags, every watch open and idle (no
    bookmarks): SIGTERM drains, stops the watches together and exits in time."""
    import signal

    from test_deploy import container, render

    from webhook.model.kinds import KINDS

    flags = [a for a in container(render("deploy"))["args"] if a.startswith("--shutdown-")]
    assert "--shutdown-delay-seconds=5" in flags
    fake.bookmark_interval = None
    kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
    with running_server(tmp_path, "--kubeconfig", str(kubeconfig), *flags) as running:
        deadline = time.monotonic() + 15
        while not all(fake.watch_requests(info.plural) for info in KINDS):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stopped_at = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(timeout=15) == 0
        took = time.monotonic() - stopped_at
    assert took < 10, took
    record_figure("SIGTERM in cluster mode", f"exited 0 after {took:.1f} s (5 s of it the drain)")


def test_audit_without_a_reachable_cluster_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text("not: [a kubeconfig")
    result = cli("audit", "--kubeconfig", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_state_and_kube_together_are_refused() -> None:
    result = cli("serve", "--kube", "--state", "x.yaml")
    assert result.returncode == 2
    assert "cannot be combined with --kube" in result.stderr
    assert "Value error" not in result.stderr  # pydantic's prefix stays out of it


def test_watch_faults_under_load_recover_to_the_cluster_state(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
    flags = (
        "--kubeconfig",
        str(kubeconfig),
        "--watch-read-timeout-seconds",
        "1",
        "--watch-failure-grace-seconds",
        "1",
        "--discovery-interval-seconds",
        "0.5",
    )
    body = json.dumps(review(snapshot_class("probe", default="true"), dry_run=True))
    with running_server(tmp_path, *flags) as running, running.client() as http:
        answers: list[int] = []
        stop = threading.Event()

        def load() -> None:
            with running.client() as client:
                while not stop.is_set() and len(answers) < 20000:
                    reply = client.post("/validate", content=body, headers=JSON_HEADERS)
                    answers.append(reply.status_code)

        worker = threading.Thread(target=load)
        worker.start()
        try:
            fake.drop_watches()  # a dropped stream
            fake.compact()  # history gone: the next resume gets 410 and relists
            fake.delete(snapshot_class("ebs-snapclass"))
            fake.drop_watches()
            fake.failing = True  # the API server stops answering
            fake.drop_watches()
            failed_at = time.monotonic()
            while http.get("/readyz").status_code == 200:
                assert time.monotonic() - failed_at < 15
                time.sleep(0.05)
            outage_seen = time.monotonic() - failed_at
            fake.failing = False
            recovered_at = time.monotonic()
            while http.get("/readyz").status_code != 200:
                assert time.monotonic() - recovered_at < 15
                time.sleep(0.05)
            recovery = time.monotonic() - recovered_at
            # After recovery the verdict follows the cluster: the default class is gone.
            reply = http.post("/validate", content=body, headers=JSON_HEADERS).json()
            assert reply["response"]["allowed"] is True
        finally:
            stop.set()
            worker.join(timeout=30)
    assert answers and set(answers) == {200}
    record_figure(
        "watch faults under load",
        f"{len(answers)} requests, all answered; readiness false {outage_seen:.1f} s "
        f"into the outage, true {recovery:.1f} s after it ended",
    )


def test_an_unreachable_apiserver_is_said_in_a_few_json_lines(tmp_path: Path) -> None:
    """Every kind fails at once and keeps failing: each says so once (then at most
    every 30 s), in JSON, with no retry line of urllib3's own."""
    with fake_apiserver() as gone:
        kubeconfig = gone.kubeconfig(tmp_path / "kubeconfig")  # closed from here on
    with running_server(
        tmp_path, "--kubeconfig", str(kubeconfig), "--discovery-interval-seconds", "0.5"
    ) as running:
        with running.client() as http:
            assert http.get("/readyz").status_code == 503
        deadline = time.monotonic() + 15
        while len([r for r in running.log_records() if "failed" in str(r["message"])]) < 9:
            assert time.monotonic() < deadline, running.log()
            time.sleep(0.2)
        time.sleep(3.0)  # several backoff rounds later: still one line per kind
        lines = [line for line in running.log().splitlines() if line.strip()]
    assert all(line.startswith("{") for line in lines), lines[:3]
    assert not any("Retrying (Retry(" in line for line in lines)
    failing = [json.loads(line) for line in lines if "failed" in line]
    assert len(failing) == 9, [f["message"] for f in failing]
