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

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from webhook.tls.certs import not_after

log = logging.getLogger("snapshot_webhook.tls")


class CertificateReloader:
    def __init__(
        self, context: ssl.SSLContext, cert_file: Path, key_file: Path, source: str = ""
    ) -> None:
        self.context = context
        self.cert_file = cert_file
        self.key_file = key_file
        self.source = source or str(cert_file)  # where new pairs come from, for the log
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
        staged = self.prepare()
        if staged is None:
            return False
        self.install(staged)
        return True

    def prepare(self) -> StagedPair | None:
        """Read and prove a changed pair, off the event loop; None when nothing to do."""
        try:
            cert, key = self._read()
        except OSError as err:
            log.warning(
                "cannot read %s or %s (%s); keeping the current certificate",
                self.cert_file,
                self.key_file,
                err,
            )
            return None
        return self.stage(cert, key)

    def stage(self, cert: bytes, key: bytes) -> StagedPair | None:
        """Prove a pair whose bytes differ from the one serving; None when unchanged or bad."""
        digest = hashlib.sha256(cert + b"\0" + key).digest()
        if digest == self._digest:
            return None
        self._digest = digest  # a rejected pair is reported once, not on every poll
        staged = StagedPair(cert, key)
        try:
            staged.not_after = not_after(cert)
            scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            scratch.load_cert_chain(staged.cert_path, staged.key_path)  # raises on a mismatch
        except (ssl.SSLError, ValueError, OSError) as err:
            staged.discard()
            log.error(
                "new certificate from %s rejected (%s); keeping the current one", self.source, err
            )
            return None
        return staged

    def install(self, staged: StagedPair) -> None:
        """Swap the proven pair into the live context.

        Must run on the event loop's thread: loading sets the certificate and
        then the key, and a handshake in between would pair one with the other.
        """
        try:
            self.context.load_cert_chain(staged.cert_path, staged.key_path)
        finally:
            staged.discard()
        self.not_after = staged.not_after
        self.reloads += 1
        log.info(
            "serving certificate reloaded from %s; valid until %s",
            self.source,
            staged.not_after.isoformat() if staged.not_after else "unknown",
        )

    async def offer(self, cert: bytes, key: bytes) -> bool:
        """Serve this pair from now on, when it differs from the current one and is good."""
        staged = await asyncio.to_thread(self.stage, cert, key)
        if staged is None:
            return False
        self.install(staged)
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            staged = await asyncio.to_thread(self.prepare)
            if staged is not None:
                self.install(staged)


class StagedPair:
    """A private copy of exactly the bytes that were hashed, so a file replaced
    mid-load can never mix an old key with a new certificate."""

    def __init__(self, cert: bytes, key: bytes) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="snapshot-webhook-")
        self.cert_path = os.path.join(self._dir.name, "tls.crt")
        self.key_path = os.path.join(self._dir.name, "tls.key")
        self.not_after: datetime.datetime | None = None
        for path, data in ((self.cert_path, cert), (self.key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)

    def discard(self) -> None:
        self._dir.cleanup()


class TLSFileError(ValueError):
    """A certificate, key or CA file that cannot serve, named with its flag."""


def _check_pem(flag: str, path: Path, what: str) -> None:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise TLSFileError(f"{flag} {path}: cannot read it: {err.strerror or err}") from None
    try:
        if what == "key":
            serialization.load_pem_private_key(data, password=None)
        else:
            x509.load_pem_x509_certificates(data)
    except (ValueError, TypeError):
        noun = "an unencrypted PEM private key" if what == "key" else "a PEM certificate"
        raise TLSFileError(f"{flag} {path}: not {noun}") from None


def server_context(
    cert_file: Path,
    key_file: Path,
    client_ca_file: Path | None = None,
    flags: tuple[str, str] = ("--tls-cert-file", "--tls-private-key-file"),
) -> ssl.SSLContext:
    """The TLS context the server listens with: TLS 1.2 or newer. A file that
    cannot serve raises TLSFileError naming the flag, the path and the problem."""
    cert_flag, key_flag = flags
    _check_pem(cert_flag, cert_file, "certificate")
    _check_pem(key_flag, key_file, "key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as err:
        raise TLSFileError(
            f"{key_flag} {key_file} does not match {cert_flag} {cert_file} ({err.reason})"
        ) from None
    if client_ca_file is not None:
        _check_pem("--client-ca-file", client_ca_file, "certificate")
        context.load_verify_locations(cafile=client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
