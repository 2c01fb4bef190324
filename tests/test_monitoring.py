"""deploy/monitoring/: the alerts pass `promtool test rules`, each with a firing
and a quiet case, and the PodMonitor scrapes the port the metrics are on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from serving import ROOT
from test_deploy import container, one, render

MONITORING = ROOT / "deploy" / "monitoring"
CASES = ROOT / "tests" / "monitoring" / "alerts.test.yaml"
PROMTOOL = shutil.which("promtool")


def needs_promtool() -> str:
    if PROMTOOL is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: scripts/test installs Debian's prometheus package")
        pytest.skip(
            "promtool not installed (Debian's prometheus package; scripts/test installs it as root)"
        )
    return PROMTOOL


def rule_groups() -> dict[str, Any]:
    rule = one(render("deploy/monitoring"), "PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


def alerts() -> list[str]:
    return [r["alert"] for g in rule_groups()["groups"] for r in g["rules"]]


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = yaml.safe_load(CASES.read_text())["tests"]
    firing = {t["alertname"] for case in cases for t in case["alert_rule_test"] if t["exp_alerts"]}
    quiet = {
        t["alertname"] for case in cases for t in case["alert_rule_test"] if not t["exp_alerts"]
    }
    assert set(alerts()) == firing == quiet
    assert {
        "SnapshotWebhookAnsweringErrors",
        "SnapshotWebhookRefusingRequests",
        "SnapshotWebhookClaimFailures",
        "SnapshotWebhookAuthorizationFailures",
        "SnapshotWebhookWatchStale",
        "SnapshotWebhookCertificateExpiresSoon",
        "SnapshotWebhookAuditFindings",
    } <= set(alerts())


def test_alerts_pass_promtool(tmp_path: Path) -> None:
    promtool = needs_promtool()
    groups = rule_groups()
    (tmp_path / "checked.yaml").write_text(yaml.safe_dump(groups))
    # the cases assert what fires and with which labels; the annotations'
    # templates are checked by `promtool check rules` above
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(groups))
    shutil.copy(CASES, tmp_path / "alerts.test.yaml")
    for args in (["check", "rules", "checked.yaml"], ["test", "rules", "alerts.test.yaml"]):
        done = subprocess.run(
            [promtool, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    tested = done
    assert "SUCCESS" in tested.stdout + tested.stderr


def test_the_metrics_the_alerts_read_are_the_ones_the_server_exports() -> None:
    from webhook.serving.metrics import Metrics

    text = Metrics().registry
    from prometheus_client import generate_latest

    exported = generate_latest(text).decode()
    for name in (
        "snapshot_webhook_build_info",
        "snapshot_webhook_authorization_reviews_total",
        "snapshot_webhook_certificate_not_after_timestamp_seconds",
    ):
        assert name in exported
    expressions = " ".join(r["expr"] for g in rule_groups()["groups"] for r in g["rules"])
    for name in (
        "snapshot_webhook_admissions_total",
        "snapshot_webhook_bad_requests_total",
        "snapshot_webhook_claims_total",
        "snapshot_webhook_watch_fresh_timestamp_seconds",
        "snapshot_webhook_audit_violations",
    ):
        assert name in expressions
        assert (
            name.removesuffix("_total") in (ROOT / "webhook" / "serving" / "metrics.py").read_text()
        )


def test_the_pod_monitor_scrapes_the_probe_port() -> None:
    monitor = one(render("deploy/monitoring"), "PodMonitor")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for p in container(render("deploy"))["ports"]}
    assert endpoint["port"] == "probes" and "probes" in ports
    assert endpoint["path"] == "/metrics"
    deployment = one(render("deploy"), "Deployment")
    assert monitor["spec"]["selector"] == deployment["spec"]["selector"]
