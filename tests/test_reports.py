"""Findings published as policy reports: the objects, the writer against an
apiserver that serves either report API or neither, the Lease that elects one
writer, and two live replicas of which exactly one writes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import add, snapshot_class, volume_snapshot
from fakeapi import FakeAPIServer, fake_apiserver
from serving import cli, running_server, wait_for

from webhook.cluster.api import KubeAPI, api_client
from webhook.cluster.leader import LeaseElector
from webhook.decide.audit import audit
from webhook.model import kinds
from webhook.model.report_kinds import OPENREPORTS, WGPOLICY, ReportFormat
from webhook.render.reports import report, reports
from webhook.rules import Policy
from webhook.serving.reporting import ReportWriter, discover
from webhook.state.index import StateIndex

Obj = dict[str, Any]
SNAPSHOT_GROUPS = {
    kinds.SNAPSHOT_GROUP: ["v1"],
    kinds.GROUP_SNAPSHOT_GROUP: ["v1", "v1beta2", "v1beta1"],
    "storage.k8s.io": ["v1"],
}


def broken_state() -> StateIndex:
    """Two defaults for one driver (a cluster-scoped denial), and a snapshot naming
    a class that does not exist (a namespaced warning)."""
    state = StateIndex()
    add(
        state,
        snapshot_class("gold", default="true"),
        snapshot_class("gold-too", default="true"),
        volume_snapshot("nightly", pvc="orders", cls="missing"),
    )
    return state


def api_for(fake: FakeAPIServer, path: Path, token: str = "fake-token") -> KubeAPI:
    return KubeAPI(api_client(str(fake.kubeconfig(path, token))))


# --- the objects ------------------------------------------------------------------


def test_reports_say_rule_result_severity_message_path_and_the_object() -> None:
    made = reports(WGPOLICY, audit(broken_state(), Policy()), now=1_800_000_000)
    cluster, shop = made
    assert cluster["kind"] == "ClusterPolicyReport" and "namespace" not in cluster["metadata"]
    assert shop["kind"] == "PolicyReport" and shop["metadata"]["namespace"] == "shop"
    assert cluster["apiVersion"] == shop["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
    assert cluster["summary"] == {"pass": 0, "fail": 2, "warn": 0, "error": 0, "skip": 0}
    assert shop["summary"] == {"pass": 0, "fail": 0, "warn": 1, "error": 0, "skip": 0}
    first = cluster["results"][0]
    assert first["policy"] == "snapshot-webhook" and first["rule"] == "class.default.unique"
    assert first["result"] == "fail" and first["severity"] == "high"
    assert first["properties"]["path"].startswith("metadata.annotations[")
    assert first["resources"][0]["kind"] == "VolumeSnapshotClass"
    assert first["resources"][0]["apiVersion"] == "snapshot.storage.k8s.io/v1"
    assert first["resources"][0]["uid"]
    (warning,) = shop["results"]
    assert warning["rule"] == "snapshot.class.exists" and warning["result"] == "warn"
    assert warning["severity"] == "medium" and '"missing"' in warning["message"]
    assert warning["resources"][0] | {} == {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "name": "nightly",
        "namespace": "shop",
        "uid": warning["resources"][0]["uid"],
    }
    opened = reports(OPENREPORTS, audit(broken_state(), Policy()), now=1)
    assert [r["kind"] for r in opened] == ["ClusterReport", "Report"]
    assert opened[0]["apiVersion"] == "openreports.io/v1alpha1"


BROKEN = [
    snapshot_class("gold", default="true"),
    snapshot_class("gold-too", default="true"),
    volume_snapshot("nightly", pvc="orders", cls="missing"),
]


@pytest.mark.parametrize(
    ("output", "fmt"), [("policyreport", WGPOLICY), ("openreports", OPENREPORTS)]
)
def test_audit_prints_the_same_reports_offline(
    output: str, fmt: ReportFormat, tmp_path: Path
) -> None:
    state = tmp_path / "state.yaml"
    state.write_text(yaml.safe_dump_all(BROKEN))
    done = cli("audit", "--state", str(state), "-o", output)
    assert done.returncode == 1, done.stderr  # a deny-mode rule found something
    printed = list(yaml.safe_load_all(done.stdout))
    expected = reports(fmt, audit(broken_state(), Policy()), now=0)
    for made in (*printed, *expected):
        for result in made["results"]:
            result.pop("timestamp")
    assert printed == expected
    assert (
        cli(
            "audit",
            "--state",
            str(state),
            "-o",
            output,
            "--rule",
            "class.default.unique=off",
            "--rule",
            "snapshot.class.exists=off",
        ).stdout
        == ""
    )


def test_a_result_keeps_its_timestamp_across_rewrites() -> None:
    findings = audit(broken_state(), Policy())
    cluster = [f for f in findings if not f.namespace]
    before = report(WGPOLICY, "", cluster, now=100)
    after = report(WGPOLICY, "", cluster, now=200, previous=before)
    assert after == before  # unchanged findings: the same report, nothing to write
    fewer = report(WGPOLICY, "", cluster[:1], now=300, previous=before)
    assert [r["timestamp"]["seconds"] for r in fewer["results"]] == [100]


# --- the writer -------------------------------------------------------------------


@pytest.fixture(params=[WGPOLICY, OPENREPORTS], ids=["wgpolicy", "openreports"])
def installed(request: pytest.FixtureRequest) -> Iterator[tuple[FakeAPIServer, ReportFormat]]:
    fmt: ReportFormat = request.param
    with fake_apiserver(groups={**SNAPSHOT_GROUPS, fmt.group: [fmt.version]}) as fake:
        yield fake, fmt


def stored_reports(fake: FakeAPIServer, fmt: ReportFormat) -> dict[str, Obj]:
    found = {}
    for plural in (fmt.plural, fmt.cluster_plural):
        for obj in fake.stored_objects(fmt.group, plural):
            found[obj["metadata"].get("namespace", "")] = obj
    return found


def test_a_finding_appears_then_goes_when_fixed(
    installed: tuple[FakeAPIServer, ReportFormat], tmp_path: Path
) -> None:
    fake, fmt = installed
    api = api_for(fake, tmp_path / "kubeconfig")
    assert discover(api, "auto") == fmt
    writer = ReportWriter(api, fmt)
    state = broken_state()
    done = writer.publish(audit(state, Policy()), now=100)
    assert done == {"created": 2}
    stored = stored_reports(fake, fmt)
    assert stored[""]["kind"] == fmt.cluster_kind and stored["shop"]["kind"] == fmt.kind
    assert stored[""]["summary"]["fail"] == 2

    writes = len(fake.writes)
    assert writer.publish(audit(state, Policy()), now=200) == {"unchanged": 2}
    assert len(fake.writes) == writes  # nothing rewritten

    add(state, snapshot_class("gold-too"))  # one default left: the denial is fixed
    assert writer.publish(audit(state, Policy()), now=300) == {"deleted": 1, "unchanged": 1}
    assert set(stored_reports(fake, fmt)) == {"shop"}

    add(state, snapshot_class("missing"))  # the snapshot's class now exists
    assert writer.publish(audit(state, Policy()), now=400) == {"deleted": 1}
    assert stored_reports(fake, fmt) == {}


def test_a_changed_report_is_replaced_whole_with_its_resource_version(
    installed: tuple[FakeAPIServer, ReportFormat], tmp_path: Path
) -> None:
    fake, fmt = installed
    writer = ReportWriter(api_for(fake, tmp_path / "kubeconfig"), fmt)
    state = broken_state()
    writer.publish(audit(state, Policy()), now=100)
    add(state, volume_snapshot("weekly", pvc="orders", cls="missing"))
    assert writer.publish(audit(state, Policy()), now=200) == {"replaced": 1, "unchanged": 1}
    shop = stored_reports(fake, fmt)["shop"]
    assert shop["summary"]["warn"] == 2
    assert [r["timestamp"]["seconds"] for r in shop["results"]] == [100, 200]
    assert fake.writes[-1][0] == "PUT"

    # a write between this writer's read and its own: Conflict, and nothing lost
    stale = ReportWriter(api_for(fake, tmp_path / "kubeconfig-2"), fmt)
    existing = stale.stored()
    fake.store(fmt.group, fmt.plural, {**shop, "summary": {**shop["summary"], "pass": 1}})
    stale.stored = lambda: existing  # type: ignore[method-assign]
    add(state, volume_snapshot("hourly", pvc="orders", cls="missing"))
    assert stale.publish(audit(state, Policy()), now=300)["conflict"] == 1
    assert stored_reports(fake, fmt)["shop"]["summary"]["pass"] == 1  # the other write stands


def test_with_neither_crd_nothing_is_written(tmp_path: Path) -> None:
    with fake_apiserver(groups=SNAPSHOT_GROUPS) as fake:
        api = api_for(fake, tmp_path / "kubeconfig")
        assert discover(api, "auto") is None
        assert discover(api, "wgpolicy") is None
        status, _ = api.get_json(WGPOLICY.every_namespace())
        assert status == 404  # the apiserver does not serve an uninstalled kind
    with fake_apiserver(groups={**SNAPSHOT_GROUPS, WGPOLICY.group: [WGPOLICY.version]}) as fake:
        api = api_for(fake, tmp_path / "kubeconfig")
        assert discover(api, "openreports") is None  # asked for the other one
        assert discover(api, "auto") == WGPOLICY


def test_auto_prefers_openreports_when_both_are_installed(tmp_path: Path) -> None:
    groups = {
        **SNAPSHOT_GROUPS,
        WGPOLICY.group: [WGPOLICY.version],
        OPENREPORTS.group: [OPENREPORTS.version],
    }
    with fake_apiserver(groups=groups) as fake:
        assert discover(api_for(fake, tmp_path / "kubeconfig"), "auto") == OPENREPORTS


# --- the Lease ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_one_leader_and_failover_on_release_or_expiry(tmp_path: Path) -> None:
    with fake_apiserver(groups=SNAPSHOT_GROUPS) as fake:
        clock = Clock()

        def elector(n: int) -> LeaseElector:
            api = api_for(fake, tmp_path / f"kubeconfig-{n}")
            return LeaseElector(api, "snapshot-webhook", "reports", f"replica-{n}", 15, clock)

        one, two = elector(1), elector(2)
        assert one.step() is True
        assert two.step() is False and two.holder == "replica-1"
        for _ in range(3):
            clock.now += 5
            assert (one.step(), two.step()) == (True, False)
        one.release()
        assert not one.leading
        assert two.step() is True  # released: taken over at once
        assert one.step() is False
        (lease,) = fake.stored_objects("coordination.k8s.io", "leases")
        assert lease["spec"]["holderIdentity"] == "replica-2"
        assert lease["spec"]["leaseTransitions"] == 1

        # the leader stops without a word: the other waits out the lease, then leads
        clock.now += 14
        assert one.step() is False
        clock.now += 2
        assert one.step() is True and two.holder == "replica-2"
        assert two.step() is False  # renewing now fails: it sees replica-1 holding it
        assert not two.leading


def test_a_leader_that_cannot_renew_stops_leading_before_another_can_take_over(
    tmp_path: Path,
) -> None:
    with fake_apiserver(groups=SNAPSHOT_GROUPS) as fake:
        clock = Clock()
        api = api_for(fake, tmp_path / "kubeconfig")
        one = LeaseElector(api, "snapshot-webhook", "reports", "replica-1", 15, clock)
        assert one.step() is True
        fake.writes_failing = True
        clock.now += 9
        assert one.step() is True  # within its renew deadline (10 s)
        clock.now += 2
        assert one.step() is False  # past it: stops, 4 s before the lease could expire


# --- two live replicas ----------------------------------------------------------------


def report_writers(fake: FakeAPIServer) -> set[str]:
    return {token for token, _, path in fake.writers if "policyreports" in path}


def test_two_replicas_one_writer_and_failover_when_the_leader_stops(tmp_path: Path) -> None:
    groups = {**SNAPSHOT_GROUPS, WGPOLICY.group: [WGPOLICY.version]}
    with fake_apiserver(groups=groups) as fake:
        for obj in (
            snapshot_class("gold", default="true"),
            snapshot_class("gold-too", default="true"),
        ):
            fake.put(obj)
        with ExitStack() as stack:
            replicas = []
            for n in range(2):
                workdir = tmp_path / f"replica-{n}"
                workdir.mkdir()
                kubeconfig = fake.kubeconfig(workdir / "kubeconfig", f"replica-{n}")
                replicas.append(
                    stack.enter_context(
                        running_server(
                            workdir,
                            "--kubeconfig",
                            str(kubeconfig),
                            "--namespace",
                            "snapshot-webhook",
                            "--reports",
                            "wgpolicy",
                            "--reports-lease-seconds",
                            "6",  # a busy machine never loses it by accident
                            "--reports-debounce-seconds",
                            "0.2",
                            "--watch-read-timeout-seconds",
                            "2",
                            "--discovery-interval-seconds",
                            "0.5",
                        )
                    )
                )

            def cluster_report() -> Obj | None:
                found = fake.stored_objects(WGPOLICY.group, WGPOLICY.cluster_plural)
                return found[0] if found else None

            wait_for(lambda: cluster_report() is not None, 30, "the report written")
            report_now = cluster_report()
            assert report_now is not None and report_now["summary"]["fail"] == 2
            (writer,) = report_writers(fake)  # one replica writes
            (lease,) = [
                o
                for o in fake.stored_objects("coordination.k8s.io", "leases")
                if o["metadata"]["name"] == "snapshot-webhook-reports"
            ]
            assert lease["spec"]["holderIdentity"]
            leader = int(writer.rpartition("-")[2])

            stopped = replicas[leader].process
            stopped.terminate()  # a rollout: the leader hands the Lease back on SIGTERM
            stopped.wait(timeout=30)
            assert "lease snapshot-webhook/snapshot-webhook-reports" in replicas[leader].log()
            fake.put(snapshot_class("gold-too"))  # fixed meanwhile
            wait_for(lambda: cluster_report() is None, 30, "the fixed finding gone")
            assert report_writers(fake) == {"replica-0", "replica-1"}  # the other took over


def test_with_neither_crd_a_replica_says_so_once_and_writes_nothing(tmp_path: Path) -> None:
    with fake_apiserver(groups=SNAPSHOT_GROUPS) as fake:
        fake.put(snapshot_class("gold", default="true"))
        fake.put(snapshot_class("gold-too", default="true"))
        with running_server(
            tmp_path,
            "--kubeconfig",
            str(fake.kubeconfig(tmp_path / "kubeconfig")),
            "--namespace",
            "snapshot-webhook",
            "--reports-lease-seconds",
            "3",
            "--reports-debounce-seconds",
            "0.2",
        ) as server:

            def said(record: dict[str, object]) -> bool:
                return "no report CRD is installed" in str(record.get("message"))

            server.wait_for_log(said, timeout=30)
            fake.put(volume_snapshot("nightly", pvc="orders", cls="missing"))  # a change
            time.sleep(1.5)  # several rounds of the leader's loop
            assert len([r for r in server.log_records() if said(r)]) == 1
        assert not [w for w in fake.writes if "reports" in w[1] and "leases" not in w[1]]
