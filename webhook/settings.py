"""Server configuration: command-line flags, or `SNAPSHOT_WEBHOOK_*` environment variables.

Flags win over the environment. Every value is validated at start, and a bad
or contradictory one stops the server with a message naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The apiserver stores objects of at most 1.5 MiB (etcd's default request
# limit). An UPDATE review carries the object and the old object, plus an
# envelope of a few KiB: 3 MiB and change. 4 MiB admits every real review and
# bounds what a caller can make us hold.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024

LogLevel = Literal["debug", "info", "warning", "error"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SNAPSHOT_WEBHOOK_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8443, ge=1, le=65535)
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    cert_dir: Path = Path("certs")
    dns_names: list[str] = Field(default_factory=list)
    client_ca_file: Path | None = None
    state: list[str] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)
    log_level: LogLevel = "info"
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024)
    cert_poll_seconds: float = Field(2.0, gt=0, le=10)
    # None: 5 s behind a Service (--kube), none in a terminal
    shutdown_delay_seconds: float | None = Field(None, ge=0)
    shutdown_timeout_seconds: float = Field(3.0, gt=0)
    # slow and greedy clients
    header_timeout_seconds: float = Field(10.0, gt=0)
    body_timeout_seconds: float = Field(10.0, gt=0)
    keep_alive_seconds: int = Field(30, gt=0)
    max_connections: int = Field(1000, ge=1)
    max_inflight_bytes: int = Field(DEFAULT_MAX_BODY_BYTES * 16, ge=1024)
    # cluster mode
    kube: bool = False
    kubeconfig: Path | None = None
    watch_timeout_seconds: int = Field(300, ge=1)
    watch_read_timeout_seconds: float = Field(30.0, gt=0)
    watch_failure_grace_seconds: float = Field(60.0, gt=0)
    discovery_interval_seconds: float = Field(30.0, gt=0)
    reservation_ttl_seconds: float = Field(30.0, gt=0)
    live_get_timeout_seconds: float = Field(1.0, gt=0)
    audit_interval_seconds: float = Field(300.0, gt=0)
    # who may set allow-volume-mode-change where no cluster is asked (embedded mode)
    authorized_users: list[str] = Field(default_factory=list)
    authorized_groups: list[str] = Field(default_factory=lambda: ["system:masters"])
    # unique slots claimed with Leases (cluster mode)
    claims: bool = True
    claim_duration_seconds: float = Field(30.0, ge=2)
    claim_timeout_seconds: float = Field(2.0, gt=0, le=4)
    claim_failure: Literal["deny", "warn"] = "deny"
    # policy reports, written by the leader of a Lease (cluster mode)
    reports: Literal["auto", "wgpolicy", "openreports", "off"] = "auto"
    reports_lease_seconds: float = Field(15.0, ge=3, le=300)
    reports_debounce_seconds: float = Field(2.0, gt=0, le=60)
    # health and metrics on a plain-HTTP port of their own (0: none)
    probe_port: int = Field(8081, ge=0, le=65535)
    # self-managed certificates (cluster mode)
    manage_certificates: bool = False
    namespace: str | None = None  # default: POD_NAMESPACE, service account, kubeconfig
    service: str = "snapshot-webhook"
    tls_sans: list[str] = Field(default_factory=list)
    certificate_secret: str = "snapshot-webhook-tls"
    webhook_configurations: list[str] = Field(default_factory=lambda: ["snapshot-webhook"])
    # the server registers its own webhook configuration (cluster mode)
    register_webhook: bool = False
    ca_bundle_file: Path | None = None  # the CA to register, when certificates are not managed
    webhook_owner: str = "snapshot-webhook"  # ClusterRole the configuration is deleted with
    failure_policy: Literal["Fail", "Ignore"] = "Fail"
    certificate_sync_seconds: float = Field(10.0, gt=0, le=30)
    certificate_start_timeout_seconds: float = Field(60.0, gt=0)
    ca_lifetime_seconds: float = Field(3 * 365 * 86400.0, gt=0)
    certificate_lifetime_seconds: float = Field(90 * 86400.0, gt=0)
    ca_overlap_seconds: float = Field(3600.0, gt=0)

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_private_key_file is None):
            given = "--tls-cert-file" if self.tls_cert_file else "--tls-private-key-file"
            missing = "--tls-private-key-file" if self.tls_cert_file else "--tls-cert-file"
            raise ValueError(f"{given} was given without {missing}: pass both or neither")
        if self.kubeconfig is not None:
            self.kube = True
        if self.manage_certificates and not self.kube:
            raise ValueError(
                "--manage-certificates keeps the certificate in a Secret: it needs --kube or "
                "--kubeconfig"
            )
        if self.manage_certificates and self.tls_cert_file is not None:
            raise ValueError(
                "--manage-certificates and --tls-cert-file both say where the serving "
                "certificate comes from: pass one"
            )
        if self.register_webhook:
            if not self.kube:
                raise ValueError("--register-webhook writes to the cluster: it needs --kube")
            if not self.manage_certificates and self.ca_bundle_file is None:
                raise ValueError(
                    "--register-webhook needs the CA the apiserver is to trust: pass "
                    "--manage-certificates or --ca-bundle-file"
                )
            if len(self.webhook_configurations) != 1:
                raise ValueError(
                    "--register-webhook keeps one configuration: pass --webhook-configuration "
                    f"once (got {self.webhook_configurations})"
                )
        if self.probe_port and self.probe_port == self.port:
            raise ValueError(f"--probe-port {self.probe_port} is the admission port (--port)")
        if self.kube and self.state:
            raise ValueError(
                "--state seeds the embedded state and cannot be combined with --kube or "
                "--kubeconfig, which follow the cluster"
            )
        return self

    @property
    def drain_delay(self) -> float:
        """How long /readyz is false after SIGTERM before the listeners close: long
        enough for EndpointSlices to drop the pod, and pointless with no Service."""
        if self.shutdown_delay_seconds is not None:
            return self.shutdown_delay_seconds
        return 5.0 if self.kube else 0.0

    @property
    def generates_certificate(self) -> bool:
        return self.tls_cert_file is None
