"""Readiness: the state is loaded, the certificate is valid, and we are not draining."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from webhook.cluster.watch import SyncStatus
from webhook.tls.watch import CertificateReloader


@dataclass
class Readiness:
    state_loaded: bool = False
    draining: bool = False
    certificate: CertificateReloader | None = None
    sync: SyncStatus | None = None  # cluster mode: the watches

    def problems(self) -> list[str]:
        found = []
        if self.draining:
            found.append("shutting down")
        if not self.state_loaded:
            found.append("state not loaded yet")
        if self.certificate is not None:
            expires = self.certificate.not_after
            if expires is None:
                found.append("no serving certificate loaded")
            elif expires <= datetime.datetime.now(datetime.UTC):
                found.append(f"serving certificate expired at {expires.isoformat()}")
        if self.sync is not None:
            found += self.sync.problems()
        return found
