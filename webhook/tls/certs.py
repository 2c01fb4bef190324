"""A private CA and a serving certificate for the webhook, made with `cryptography`.

The CA is kept across runs (its certificate is the caBundle a cluster trusts),
so re-issuing the serving certificate never changes what the apiserver has to
trust. Private keys are written with mode 0600.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
RENEW_BEFORE = datetime.timedelta(days=30)
# notBefore is set this far in the past, so that a peer whose clock runs a little
# behind accepts a certificate made a moment ago
BACKDATE = datetime.timedelta(minutes=5)


class CertificateError(ValueError):
    pass


@dataclass(frozen=True)
class CertPaths:
    directory: Path
    prefix: str = ""  # "client-" for the pair the apiserver presents to the webhook

    @property
    def ca_cert(self) -> Path:
        return self.directory / f"{self.prefix}{CA_CERT}"

    @property
    def ca_key(self) -> Path:
        return self.directory / f"{self.prefix}{CA_KEY}"

    @property
    def cert(self) -> Path:
        return self.directory / f"{self.prefix}{TLS_CERT}"

    @property
    def key(self) -> Path:
        return self.directory / f"{self.prefix}{TLS_KEY}"


def service_names(service: str, namespace: str) -> list[str]:
    """The names the apiserver may use to reach a Service."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def issued_at(cert: x509.Certificate) -> datetime.datetime:
    """When a certificate made here was made (its notBefore is backdated)."""
    return cert.not_valid_before_utc + BACKDATE


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def make_ca(
    days: float, now: datetime.datetime | None = None
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "snapshot-webhook CA")])
    now = now or _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_serving_cert(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    names: Sequence[str],
    days: float,
    *,
    client: bool = False,
    now: datetime.datetime | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A leaf certificate signed by the CA: for serving, or (`client`) for presenting."""
    key = _new_key()
    now = now or _now()
    not_after = min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only, replacing any file atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _load_ca(paths: CertPaths) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    if not (paths.ca_cert.exists() and paths.ca_key.exists()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except (ValueError, OSError) as err:
        raise CertificateError(f"{paths.ca_cert}: cannot read the CA: {err}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{paths.ca_key}: expected an EC private key")
    if cert.not_valid_after_utc <= _now() + RENEW_BEFORE:
        raise CertificateError(
            f"{paths.ca_cert}: the CA expires {cert.not_valid_after_utc:%Y-%m-%d}; "
            "run `snapshot-webhook certs --force` to make a new one"
        )
    return key, cert


def covers(cert: x509.Certificate, names: Sequence[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(n) for n in san.get_values_for_type(x509.DNSName)}
    have |= {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return {str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in names} <= have


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _serving_cert_usable(paths: CertPaths, ca_cert: x509.Certificate, names: Sequence[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
    except (ValueError, OSError):
        return False
    return (
        cert.issuer == ca_cert.subject
        and cert.not_valid_after_utc > _now() + RENEW_BEFORE
        and covers(cert, names)
    )


def ensure(
    directory: Path,
    names: Sequence[str],
    *,
    days: int = 365,
    force: bool = False,
    reissue: bool = False,
    client: bool = False,
) -> CertPaths:
    """CA and serving certificate in `directory`, kept when still good.

    The CA is made only when missing (or with `force`). The serving
    certificate is re-issued when missing, expiring, not signed by the CA, not
    covering `names`, or when `reissue` asks for it.
    """
    paths = CertPaths(directory, "client-" if client else "")
    directory.mkdir(parents=True, exist_ok=True)
    ca = None if force else _load_ca(paths)
    if ca is None:
        ca_key, ca_cert = make_ca(days=max(days, 3650))
        write_private(paths.ca_key, key_pem(ca_key))
        write_public(paths.ca_cert, pem(ca_cert))
        reissue = True
    else:
        ca_key, ca_cert = ca
    if reissue or not _serving_cert_usable(paths, ca_cert, names):
        key, cert = make_serving_cert(ca_key, ca_cert, names, days, client=client)
        write_private(paths.key, key_pem(key))
        write_public(paths.cert, pem(cert))
    return paths


def ca_bundle(paths: CertPaths) -> str:
    """The base64 caBundle for a ValidatingWebhookConfiguration."""
    return base64.b64encode(paths.ca_cert.read_bytes()).decode()


def not_after(cert_pem: bytes) -> datetime.datetime:
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


def issued_by_one_of(bundle_pem: bytes, cert_pem: bytes) -> bool:
    """Whether the first certificate of `cert_pem` was signed by a CA of `bundle_pem`:
    what the apiserver checks when it trusts a caBundle."""
    try:
        cas = x509.load_pem_x509_certificates(bundle_pem)
        cert = x509.load_pem_x509_certificates(cert_pem)[0]
    except ValueError:
        return False
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False
