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
    shutdown_delay_seconds: float = Field(2.0, ge=0)
    shutdown_timeout_seconds: float = Field(20.0, gt=0)
    # slow and greedy clients
    header_timeout_seconds: float = Field(10.0, gt=0)
    body_timeout_seconds: float = Field(10.0, gt=0)
    keep_alive_seconds: int = Field(30, gt=0)
    max_connections: int = Field(1000, ge=1)
    max_inflight_bytes: int = Field(DEFAULT_MAX_BODY_BYTES * 16, ge=1024)
    # cluster mode
    kube: bool = False
    kubeconfig: Path | None = None
    watch_read_timeout_seconds: float = Field(90.0, gt=0)
    watch_failure_grace_seconds: float = Field(60.0, gt=0)
    discovery_interval_seconds: float = Field(30.0, gt=0)
    reservation_ttl_seconds: float = Field(30.0, gt=0)
    live_get_timeout_seconds: float = Field(1.0, gt=0)
    audit_interval_seconds: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_private_key_file is None):
            given = "--tls-cert-file" if self.tls_cert_file else "--tls-private-key-file"
            missing = "--tls-private-key-file" if self.tls_cert_file else "--tls-cert-file"
            raise ValueError(f"{given} was given without {missing}: pass both or neither")
        if self.kubeconfig is not None:
            self.kube = True
        if self.kube and self.state:
            raise ValueError(
                "--state seeds the embedded state and cannot be combined with --kube or "
                "--kubeconfig, which follow the cluster"
            )
        return self

    @property
    def generates_certificate(self) -> bool:
        return self.tls_cert_file is None
