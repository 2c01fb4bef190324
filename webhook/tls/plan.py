"""What the webhook's own certificate Secret should hold next. Pure: no I/O.

The Secret holds a CA bundle (`ca.crt`, newest CA first), the newest CA's key
(`ca.key`) and the serving pair (`tls.crt`, `tls.key`). `plan` looks at what
is there and the time, and returns the next content, or None when the current
one is right. Every replica runs the same plan; the apiserver's
resourceVersion precondition makes exactly one replica's write win, and the
others re-read and find nothing left to do.

Rotation never breaks a handshake, because the bundle always holds the CA
that signed the certificate being served:
1. A CA with less than a third of its life left is replaced: the new CA goes
   to the front of the bundle and the serving certificate stays as it is.
2. Once the new CA has been in the bundle for `overlap` (every caBundle has
   been updated and every apiserver has read it), the serving certificate is
   re-issued by it.
3. Once that certificate has been served for `overlap` (every replica has
   loaded it), the old CA leaves the bundle. An expired CA always leaves.
The serving certificate is also re-issued when it has less than a third of
its life left or does not name every name it must.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from webhook.tls import certs

CA_BUNDLE_KEY, CA_KEY_KEY, CERT_KEY, KEY_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"


@dataclass(frozen=True)
class Lifetimes:
    ca: datetime.timedelta = datetime.timedelta(days=3 * 365)
    serving: datetime.timedelta = datetime.timedelta(days=90)
    # longer than it takes every replica to read the Secret and every apiserver
    # to read a changed caBundle
    overlap: datetime.timedelta = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class ManagedPair:
    """The Secret's four values, as PEM bytes."""

    ca_bundle: bytes
    ca_key: bytes
    cert: bytes
    key: bytes

    def secret_data(self) -> dict[str, str]:
        return {
            CA_BUNDLE_KEY: base64.b64encode(self.ca_bundle).decode(),
            CA_KEY_KEY: base64.b64encode(self.ca_key).decode(),
            CERT_KEY: base64.b64encode(self.cert).decode(),
            KEY_KEY: base64.b64encode(self.key).decode(),
        }

    @property
    def ca_bundle_b64(self) -> str:
        """The caBundle value of a webhook configuration."""
        return base64.b64encode(self.ca_bundle).decode()


def from_secret_data(data: Mapping[str, object] | None) -> ManagedPair | None:
    """The pair in a Secret's `data`, or None when any value is missing or not base64."""
    if not isinstance(data, Mapping):
        return None
    values = []
    for key in (CA_BUNDLE_KEY, CA_KEY_KEY, CERT_KEY, KEY_KEY):
        value = data.get(key)
        if not isinstance(value, str):
            return None
        try:
            values.append(base64.b64decode(value, validate=True))
        except ValueError:
            return None
    return ManagedPair(*values)


@dataclass(frozen=True)
class _Read:
    """A pair whose PEM all reads, with the newest CA first."""

    cas: tuple[x509.Certificate, ...]
    ca_key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    signer: x509.Certificate | None  # the CA in the bundle that signed `cert`


def _read(pair: ManagedPair) -> _Read | None:
    try:
        cas = tuple(x509.load_pem_x509_certificates(pair.ca_bundle))
        ca_key = serialization.load_pem_private_key(pair.ca_key, password=None)
        cert = x509.load_pem_x509_certificate(pair.cert)
        key = serialization.load_pem_private_key(pair.key, password=None)
    except ValueError:
        return None
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey) or not cas:
        return None
    if cas[0].public_key() != ca_key.public_key() or cert.public_key() != key.public_key():
        return None
    return _Read(cas, ca_key, cert, _signer(cert, cas))


def _signer(cert: x509.Certificate, cas: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca
    return None


def _bundle(cas: Sequence[x509.Certificate]) -> bytes:
    return b"".join(certs.pem(ca) for ca in cas)


def _days(span: datetime.timedelta) -> float:
    return span.total_seconds() / 86400


def _fresh_ca(
    now: datetime.datetime, lifetimes: Lifetimes
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    return certs.make_ca(_days(lifetimes.ca), now=now)


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    names: Sequence[str],
    now: datetime.datetime,
    lifetimes: Lifetimes,
) -> tuple[bytes, bytes]:
    key, cert = certs.make_serving_cert(ca_key, ca, names, _days(lifetimes.serving), now=now)
    return certs.pem(cert), certs.key_pem(key)


def _nearly_over(cert: x509.Certificate, now: datetime.datetime) -> bool:
    """Less than a third of its life left."""
    life = cert.not_valid_after_utc - certs.issued_at(cert)
    return cert.not_valid_after_utc - now < life / 3


def plan(
    current: ManagedPair | None,
    names: Sequence[str],
    now: datetime.datetime,
    lifetimes: Lifetimes = Lifetimes(),
) -> tuple[ManagedPair, str] | None:
    """The next content of the Secret and why, or None when `current` is right."""
    read = _read(current) if current is not None else None
    if current is None or read is None:
        ca_key, ca = _fresh_ca(now, lifetimes)
        cert, key = _issue(ca_key, ca, names, now, lifetimes)
        why = (
            "a new CA and serving certificate, the first"
            if current is None
            else "a new CA and serving certificate, replacing a stored pair that does not read"
        )
        return ManagedPair(certs.pem(ca), certs.key_pem(ca_key), cert, key), why
    newest = read.cas[0]
    if _nearly_over(newest, now):
        ca_key, ca = _fresh_ca(now, lifetimes)
        kept = [c for c in read.cas if c.not_valid_after_utc > now]
        return (
            ManagedPair(_bundle([ca, *kept]), certs.key_pem(ca_key), current.cert, current.key)
        ), "the CA is past two thirds of its life: a new CA joins the bundle"
    reissue = ""
    if read.signer is None:
        reissue = "the serving certificate is not signed by a CA in the bundle"
    elif not certs.covers(read.cert, names):
        reissue = "the serving certificate does not name every Service name"
    elif _nearly_over(read.cert, now):
        reissue = "the serving certificate is past two thirds of its life"
    elif read.signer != newest and now - certs.issued_at(newest) >= lifetimes.overlap:
        reissue = "the new CA has been trusted long enough to sign the serving certificate"
    if reissue:
        cert, key = _issue(read.ca_key, newest, names, now, lifetimes)
        return ManagedPair(_bundle(read.cas), certs.key_pem(read.ca_key), cert, key), reissue
    settled = read.signer == newest and now - certs.issued_at(read.cert) >= lifetimes.overlap
    kept = [
        ca
        for ca in read.cas
        if ca == newest or ca == read.signer or (not settled and ca.not_valid_after_utc > now)
    ]
    if len(kept) < len(read.cas):
        return (
            ManagedPair(_bundle(kept), current.ca_key, current.cert, current.key),
            "an old CA is no longer needed in the bundle",
        )
    return None
