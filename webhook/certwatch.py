"""Serving-certificate hot reload.

A Kubernetes Secret volume is updated by swapping a `..data` symlink, which
file-event watchers do not reliably see, so the files are polled and hashed:
the certificate is reloaded only when the bytes changed. A new pair is proven
in a scratch TLS context before it touches the live one, so an unreadable or
mismatched pair is logged and the current one keeps serving. New handshakes
use the new certificate; connections already open keep theirs.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
import os
import ssl
import tempfile
from pathlib import Path

from webhook.certs import not_after

log = logging.getLogger("snapshot_webhook.tls")


class CertificateReloader:
    def __init__(self, context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
        self.context = context
        self.cert_file = cert_file
        self.key_file = key_file
        self.not_after: datetime.datetime | None = None
        self.reloads = 0
        self._digest: bytes | None = None

    def _read(self) -> tuple[bytes, bytes]:
        return self.cert_file.read_bytes(), self.key_file.read_bytes()

    def load_initial(self) -> None:
        """Record what the context was started with; raise when it cannot be read."""
        cert, key = self._read()
        self._digest = hashlib.sha256(cert + b"\0" + key).digest()
        self.not_after = not_after(cert)

    def check(self) -> bool:
        """Reload when the files' bytes changed and the new pair is good."""
        try:
            cert, key = self._read()
        except OSError as err:
            log.warning(
                "cannot read %s or %s (%s); keeping the current certificate",
                self.cert_file,
                self.key_file,
                err,
            )
            return False
        digest = hashlib.sha256(cert + b"\0" + key).digest()
        if digest == self._digest:
            return False
        self._digest = digest  # a rejected pair is reported once, not on every poll
        try:
            expires = not_after(cert)
            self._install(cert, key)
        except (ssl.SSLError, ValueError, OSError) as err:
            log.error(
                "new certificate in %s rejected (%s); keeping the current one", self.cert_file, err
            )
            return False
        self.not_after = expires
        self.reloads += 1
        log.info(
            "serving certificate reloaded from %s; valid until %s",
            self.cert_file,
            expires.isoformat(),
        )
        return True

    def _install(self, cert: bytes, key: bytes) -> None:
        # Load from a private copy of exactly the bytes that were hashed, so a
        # file replaced mid-load can never mix an old key with a new certificate.
        with tempfile.TemporaryDirectory(prefix="snapshot-webhook-") as tmp:
            cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
            for path, data in ((cert_path, cert), (key_path, key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            scratch.load_cert_chain(cert_path, key_path)  # raises on a mismatched pair
            self.context.load_cert_chain(cert_path, key_path)

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.check)


def server_context(
    cert_file: Path, key_file: Path, client_ca_file: Path | None = None
) -> ssl.SSLContext:
    """The TLS context the server listens with: TLS 1.2 or newer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if client_ca_file is not None:
        context.load_verify_locations(cafile=client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
