"""`serve --manage-certificates` replicas against the fake apiserver: one Secret,
every webhook entry trusted, a wiped caBundle restored, rotation under load
with no failed handshake, and probes on their own plain-HTTP port."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from builders import review, snapshot_class
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from fakeapi import FakeAPIServer, fake_apiserver
from figures import record_figure
from serving import JSON_HEADERS, Server, cli, free_port, running_server, wait_for
from test_certsync import ADMISSION, VWC, bundles, shipped_configuration

WATCH = ("--watch-read-timeout-seconds", "2", "--discovery-interval-seconds", "0.5")

ENTRIES = 5  # three for CREATE and UPDATE, two for delete warnings


def managed(*extra: str) -> tuple[str, ...]:
    return (
        "--manage-certificates",
        "--namespace",
        "snapshot-webhook",
        "--tls-san",
        "127.0.0.1",
        "--tls-san",
        "localhost",
        *extra,
    )


def trusted_bundle(fake: FakeAPIServer) -> bytes | None:
    """What the apiserver would trust: the first entry's caBundle, decoded."""
    config = fake.stored_object(ADMISSION, VWC, "", "snapshot-webhook")
    value = config["webhooks"][0]["clientConfig"].get("caBundle") if config else None
    return base64.b64decode(value) if value else None


@pytest.fixture
def fake() -> Iterator[FakeAPIServer]:
    with fake_apiserver() as api:
        api.store(ADMISSION, VWC, shipped_configuration())
        yield api


def start(stack: ExitStack, fake: FakeAPIServer, tmp_path: Path, n: int, *args: str) -> Server:
    kubeconfig = fake.kubeconfig(tmp_path / f"kubeconfig-{n}")
    workdir = tmp_path / f"replica-{n}"
    workdir.mkdir()
    return stack.enter_context(
        running_server(
            workdir,
            "--kubeconfig",
            str(kubeconfig),
            *WATCH,
            *managed(*args),
            ca_file=workdir / "ca.crt",
            fetch_ca=lambda: trusted_bundle(fake),
        )
    )


def admit(server: Server, bundle: bytes) -> dict[str, object]:
    context = ssl.create_default_context(cadata=bundle.decode())
    body = review(snapshot_class("gold", driver="x.csi.example.com"), dry_run=True)
    with httpx.Client(base_url=server.url, verify=context, timeout=10.0) as http:
        answer = http.post("/validate", content=json.dumps(body), headers=JSON_HEADERS)
    assert answer.status_code == 200
    return answer.json()["response"]  # type: ignore[no-any-return]


def test_replicas_share_one_secret_every_entry_is_trusted_and_a_wipe_comes_back(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        replicas = [
            start(stack, fake, tmp_path, n, "--certificate-sync-seconds", "0.5") for n in range(2)
        ]
        secrets = fake.stored_objects("", "secrets")
        assert len(secrets) == 1
        bundle = base64.b64decode(secrets[0]["data"]["ca.crt"])
        assert bundles(fake) == [secrets[0]["data"]["ca.crt"]] * ENTRIES
        for replica in replicas:
            assert admit(replica, bundle)["allowed"] is True

        def certificate_writes() -> list[tuple[str, str]]:  # the reports leader renews its Lease
            return [w for w in fake.writes if "snapshot-webhook-reports" not in w[1]]

        writes = len(certificate_writes())
        time.sleep(2.0)  # four sync rounds of two replicas: nothing is right to write
        assert len(certificate_writes()) == writes
        wiped = time.monotonic()
        fake.store(ADMISSION, VWC, shipped_configuration())  # kubectl apply again
        wait_for(lambda: bundles(fake) == [secrets[0]["data"]["ca.crt"]] * ENTRIES, 30, "restored")
        record_figure(
            "managed_certificates.wiped_bundle_restored_seconds", f"{time.monotonic() - wiped:.1f}"
        )
        assert len(fake.stored_objects("", "secrets")) == 1


def test_probes_answer_plain_http_on_their_own_port(fake: FakeAPIServer, tmp_path: Path) -> None:
    probe_port = free_port()
    with ExitStack() as stack:
        start(stack, fake, tmp_path, 0, "--probe-port", str(probe_port))
        with httpx.Client(base_url=f"http://127.0.0.1:{probe_port}", timeout=5.0) as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            wait_for(lambda: http.get("/readyz").status_code == 200, 20, "ready")
            assert "snapshot_webhook_admissions_total" in http.get("/metrics").text
            assert http.post("/validate", content=b"{}").status_code in (404, 405)


def test_rotation_under_load_fails_no_handshake(fake: FakeAPIServer, tmp_path: Path) -> None:
    """Short lifetimes make the CA and the serving certificate rotate several times
    while a client that trusts exactly what the configuration's caBundle says keeps
    opening new connections to both replicas."""
    lifetimes = (
        # renewals come a third of a lifetime early: 3 s of slack for a busy machine
        "--ca-lifetime-seconds", "21",
        "--certificate-lifetime-seconds", "9",
        "--ca-overlap-seconds", "2",
        "--certificate-sync-seconds", "0.25",
    )  # fmt: skip
    failures: list[str] = []
    signers: set[bytes] = set()
    served: set[bytes] = set()
    done = threading.Event()
    requests = 0
    with ExitStack() as stack:
        replicas = [start(stack, fake, tmp_path, n, *lifetimes) for n in range(2)]

        def load() -> None:
            nonlocal requests
            n = 0
            while not done.is_set():
                bundle = trusted_bundle(fake)
                assert bundle is not None
                replica = replicas[n % 2]
                n += 1
                try:
                    context = ssl.create_default_context(cadata=bundle.decode())
                    with httpx.Client(base_url=replica.url, verify=context, timeout=5.0) as http:
                        body = review(snapshot_class("g", driver="x"), dry_run=True)
                        answer = http.post(
                            "/validate", content=json.dumps(body), headers=JSON_HEADERS
                        )
                        assert answer.status_code == 200
                    pem = ssl.get_server_certificate(("127.0.0.1", replica.port), timeout=5)
                    cert = x509.load_pem_x509_certificate(pem.encode())
                    served.add(cert.fingerprint(hashes.SHA256()))
                    issuer = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
                    signers.add(issuer.value.key_identifier or b"")
                except Exception as err:
                    failures.append(f"{type(err).__name__}: {err}")
                requests += 1

        thread = threading.Thread(target=load)
        thread.start()
        deadline = time.monotonic() + 60
        while len(signers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3.0)  # and past the old CA leaving the bundle
        done.set()
        thread.join(timeout=15)
    record_figure("managed_certificates.rotation_requests", str(requests))
    record_figure("managed_certificates.rotation_serving_certificates", str(len(served)))
    assert failures == []
    assert len(signers) >= 2, "no CA rotation happened within the time allowed"
    assert len(served) >= 3


def test_an_unreachable_apiserver_at_start_is_a_clear_error(tmp_path: Path) -> None:
    with fake_apiserver() as gone:
        kubeconfig = gone.kubeconfig(tmp_path / "kubeconfig")  # closed from here on
    result = cli(
        "serve",
        "--kubeconfig",
        str(kubeconfig),
        *managed("--certificate-start-timeout-seconds", "1"),
        "--probe-port",
        "0",
        "--port",
        str(free_port()),
    )
    assert result.returncode == 2
    assert "snapshot-webhook serve: cannot keep the certificate Secret snapshot-webhook/" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
