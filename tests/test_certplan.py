"""The certificate Secret's plan: made once, left alone while right, rotated
with an overlap so that no handshake can fail at any moment."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from webhook.tls import certs
from webhook.tls.plan import Lifetimes, ManagedPair, from_secret_data, plan

NAMES = certs.service_names("snapshot-webhook", "snapshot-webhook")
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
SHORT = Lifetimes(
    ca=datetime.timedelta(days=30),
    serving=datetime.timedelta(days=9),
    overlap=datetime.timedelta(hours=6),
)


def cas_of(pair: ManagedPair) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pair.ca_bundle)


def signer_of(pair: ManagedPair) -> x509.Certificate:
    cert = x509.load_pem_x509_certificate(pair.cert)
    for ca in cas_of(pair):
        try:
            cert.verify_directly_issued_by(ca)
        except Exception:
            continue
        return ca
    raise AssertionError("the serving certificate's CA is not in the bundle")


def test_a_missing_pair_is_made_and_then_left_alone() -> None:
    made = plan(None, NAMES, T0)
    assert made is not None
    pair, why = made
    assert why == "a new CA and serving certificate, the first"
    cert = x509.load_pem_x509_certificate(pair.cert)
    assert certs.covers(cert, NAMES)
    assert signer_of(pair) == cas_of(pair)[0]
    assert plan(pair, NAMES, T0 + datetime.timedelta(days=1)) is None
    assert from_secret_data(pair.secret_data()) == pair


def test_an_unreadable_pair_is_replaced() -> None:
    pair, _ = plan(None, NAMES, T0) or (None, "")
    assert pair is not None
    broken = ManagedPair(pair.ca_bundle, pair.ca_key, b"not a certificate", pair.key)
    replaced = plan(broken, NAMES, T0)
    assert replaced is not None and "replacing a stored pair that does not read" in replaced[1]
    assert from_secret_data({"tls.crt": "!!"}) is None


def test_a_missing_name_reissues_the_certificate_from_the_same_ca() -> None:
    pair, _ = plan(None, NAMES, T0) or (None, "")
    assert pair is not None
    wider = [*NAMES, "webhook.example.com"]
    reissued = plan(pair, wider, T0)
    assert reissued is not None and "does not name" in reissued[1]
    assert reissued[0].ca_bundle == pair.ca_bundle
    assert certs.covers(x509.load_pem_x509_certificate(reissued[0].cert), wider)


def test_rotation_over_several_ca_lifetimes_never_serves_an_untrusted_certificate() -> None:
    """Step through 100 days in one-hour steps, as replicas syncing would: the CA
    that signed the served certificate has always been in the bundle for at least
    the overlap (so every apiserver trusted it before it was served), no bundle
    holds an expired CA, and the served certificate is always valid."""
    pair, _ = plan(None, NAMES, T0, SHORT) or (None, "")
    assert pair is not None
    trusted_since = {cas_of(pair)[0].fingerprint(hashes.SHA256()): T0}
    now, served_cas, reasons = T0, set(), []
    for _ in range(100 * 24):
        now += datetime.timedelta(hours=1)
        step = plan(pair, NAMES, now, SHORT)
        if step is not None:
            pair, why = step
            reasons.append(why)
        bundle = {ca.fingerprint(hashes.SHA256()): ca for ca in cas_of(pair)}
        for fingerprint in bundle:
            trusted_since.setdefault(fingerprint, now)
        for fingerprint in list(trusted_since):
            if fingerprint not in bundle:
                del trusted_since[fingerprint]
        signer = signer_of(pair).fingerprint(hashes.SHA256())
        served_cas.add(signer)
        if signer != next(iter(served_cas)):
            assert now - trusted_since[signer] >= SHORT.overlap
        cert = x509.load_pem_x509_certificate(pair.cert)
        assert cert.not_valid_after_utc > now
        assert all(ca.not_valid_after_utc > now for ca in bundle.values())
        assert len(bundle) <= 2
    assert len(served_cas) >= 4  # 100 days is more than four 20-day CA terms
    assert any("new CA joins" in r for r in reasons)
    assert any("no longer needed" in r for r in reasons)
    assert any("trusted long enough" in r for r in reasons)
