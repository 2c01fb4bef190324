"""`snapshot-webhook certs`: a CA kept across runs, a serving certificate for the Service."""

from __future__ import annotations

import base64
import stat
import subprocess
from pathlib import Path

from cryptography import x509
from serving import cli


def certs(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli(
        "certs",
        "--service",
        "snapshot-webhook",
        "--namespace",
        "snapshot-webhook",
        "--out",
        str(out),
        *extra,
    )


def names(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName))


def test_certs_writes_the_service_names_and_prints_the_ca_bundle(tmp_path: Path) -> None:
    result = certs(tmp_path)
    assert result.returncode == 0, result.stderr
    assert base64.b64decode(result.stdout.strip()) == (tmp_path / "ca.crt").read_bytes()
    assert names(tmp_path / "tls.crt") == {
        "snapshot-webhook",
        "snapshot-webhook.snapshot-webhook",
        "snapshot-webhook.snapshot-webhook.svc",
        "snapshot-webhook.snapshot-webhook.svc.cluster.local",
    }
    for key in ("tls.key", "ca.key"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600


def test_rerunning_keeps_the_ca_unless_forced(tmp_path: Path) -> None:
    first = certs(tmp_path).stdout
    serving = (tmp_path / "tls.crt").read_bytes()
    assert certs(tmp_path, "--days", "30").stdout == first
    assert (tmp_path / "tls.crt").read_bytes() != serving
    cert = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 31
    assert certs(tmp_path, "--force").stdout != first


def test_an_unreadable_ca_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("not a certificate")
    (tmp_path / "ca.key").write_text("not a key")
    result = certs(tmp_path)
    assert result.returncode == 2
    assert "cannot read the CA" in result.stderr and "Traceback" not in result.stderr


def test_client_pair_for_the_apiserver(tmp_path: Path) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    result = certs(tmp_path, "--client-name", "kube-apiserver")
    assert result.returncode == 0, result.stderr
    client = x509.load_pem_x509_certificate((tmp_path / "client-tls.crt").read_bytes())
    client_ca = x509.load_pem_x509_certificate((tmp_path / "client-ca.crt").read_bytes())
    serving_ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    assert client.issuer == client_ca.subject
    client.verify_directly_issued_by(client_ca)
    assert client_ca.public_key() != serving_ca.public_key()  # a CA of its own
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert stat.S_IMODE((tmp_path / "client-tls.key").stat().st_mode) == 0o600


def test_the_default_output_never_replaces_the_local_serving_pair() -> None:
    """`serve` keeps its localhost pair in its cert dir; `certs` must write elsewhere."""
    from webhook.cli.main import build_parser
    from webhook.settings import Settings

    args = build_parser().parse_args(["certs", "--service", "s", "--namespace", "n"])
    local = Settings().cert_dir.resolve()
    out = Path(args.out).resolve()
    assert out != local
    assert not {out / "tls.crt", out / "ca.crt"} & {local / "tls.crt", local / "ca.crt"}
