"""The cost of claiming unique slots through the apiserver.

Two `serve --kube` replicas follow the project's fake apiserver (a real HTTP
server on 127.0.0.1 that answers Leases as the apiserver does): one with claims
on, one with `--no-claims`. Each answers the same slot-taking admissions (a new
default class for a new driver each time, so that every one claims), one at a
time over a keep-alive connection; the client-side p50 and p99 are compared.
Then snapshots are provisioned as the snapshot controller does it (a
VolumeSnapshot, then the VolumeSnapshotContent that binds it, stored so the
watch sees them) to count the apiserver writes that claims add per snapshot.

`python -m bench.claims` prints the section; `--write` puts it into
docs/performance.md between its claims markers (bench.run does so too).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.payloads import ROOT

sys.path.insert(0, str(ROOT / "tests"))
from builders import review, snapshot_class, snapshot_content, volume_snapshot
from fakeapi import FakeAPIServer, fake_apiserver

BEGIN, END = "<!-- claims:begin -->", "<!-- claims:end -->"
HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(fake: FakeAPIServer, workdir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    workdir.mkdir(parents=True)
    kubeconfig = fake.kubeconfig(workdir / "kubeconfig")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "webhook",
            "serve",
            "--kubeconfig",
            str(kubeconfig),
            "--port",
            str(port),
            "--probe-port",
            "0",
            "--cert-dir",
            str(workdir / "certs"),
            "--namespace",
            "snapshot-webhook",
            "--log-level",
            "warning",
            "--shutdown-delay-seconds",
            "0",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            ca = str(workdir / "certs" / "ca.crt")
            if httpx.get(f"{url}/readyz", verify=ca, timeout=1).status_code == 200:
                return process, url
        except (httpx.HTTPError, OSError):
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit("a replica did not become ready")
        time.sleep(0.1)


def latencies(url: str, ca: Path, count: int, tag: str) -> list[float]:
    seconds = []
    with httpx.Client(base_url=url, verify=str(ca), timeout=10) as http:
        for n in range(count + 20):
            obj = snapshot_class(f"{tag}-{n}", driver=f"{tag}-{n}.csi.example.com", default="true")
            body = json.dumps(review(obj))
            started = time.perf_counter()
            answer = http.post("/validate", content=body, headers=HEADERS)
            took = time.perf_counter() - started
            assert answer.json()["response"]["allowed"], answer.text
            if n >= 20:  # the first ones warm up connections and caches
                seconds.append(took)
    return seconds


def writes_per_snapshot(fake: FakeAPIServer, url: str, ca: Path, count: int) -> float:
    """Lease writes for `count` dynamically provisioned snapshots, once settled."""
    before = len([w for w in fake.writes if "/leases" in w[1]])
    with httpx.Client(base_url=url, verify=str(ca), timeout=10) as http:
        for n in range(count):
            snap = volume_snapshot(f"dyn-{n}", pvc=f"data-{n}")
            assert http.post("/validate", content=json.dumps(review(snap)), headers=HEADERS)
            fake.put(snap)
            uid = snap["metadata"]["uid"]
            content = snapshot_content(f"snapcontent-{n}", ref=("shop", f"dyn-{n}"), ref_uid=uid)
            answer = http.post("/validate", content=json.dumps(review(content)), headers=HEADERS)
            assert answer.json()["response"]["allowed"], answer.text
            fake.put(content)
    deadline = time.monotonic() + 60  # claims are released once the watch settles them
    while fake.stored_objects("coordination.k8s.io", "leases") and time.monotonic() < deadline:
        time.sleep(0.2)
    after = len([w for w in fake.writes if "/leases" in w[1]])
    return (after - before) / count


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[round(q * 1000) - 1]


def section(count: int = 300, snapshots: int = 50) -> str:
    workdir = Path(tempfile.mkdtemp(prefix="snapshot-webhook-claims-"))
    with fake_apiserver() as fake:
        on, on_url = start(fake, workdir / "on")
        off, off_url = start(fake, workdir / "off", "--no-claims")
        try:
            ca_on, ca_off = (
                workdir / "on" / "certs" / "ca.crt",
                workdir / "off" / "certs" / "ca.crt",
            )
            writes = writes_per_snapshot(fake, on_url, ca_on, snapshots)  # first, alone
            with_claims = latencies(on_url, ca_on, count, "on")
            without = latencies(off_url, ca_off, count, "off")
        finally:
            for process in (on, off):
                process.terminate()
                process.wait(timeout=30)

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q) * 1000:.2f} ms"

    rows = [
        ("p50", ms(without, 0.5), ms(with_claims, 0.5)),
        ("p99", ms(without, 0.99), ms(with_claims, 0.99)),
    ]
    lines = [
        BEGIN,
        "## The cost of a claim",
        "",
        "Measured by `python -m bench.claims` (also run by `scripts/bench`): two `serve --kube`",
        "replicas following the project's fake apiserver on 127.0.0.1, one with claims and one",
        f"with `--no-claims`, each answering {count} admissions that take a unique slot (a new",
        "default class for a new driver), one at a time over a keep-alive connection. A claim",
        "is one Lease create on the apiserver; a real apiserver adds its own write latency",
        "(an etcd round trip, typically a few milliseconds) to the figures below.",
        "",
        "| slot-taking admission | claims off | claims on |",
        "| --- | --- | --- |",
        *(f"| {name} | {off_value} | {on_value} |" for name, off_value, on_value in rows),
        "",
        f"Apiserver writes added per dynamically provisioned snapshot: {writes:.1f} ("
        "the content's claim on its snapshot: one Lease create, and one delete once the "
        f"watch shows the content bound; measured over {snapshots} snapshots). The snapshot "
        "itself takes no slot, and dry runs never claim.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_into(doc: Path, text: str) -> None:
    current = doc.read_text() if doc.exists() else ""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        current = head + text + ("\n" + tail if tail else "")
    else:
        current = current.rstrip("\n") + "\n\n" + text
    doc.write_text(current)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--snapshots", type=int, default=50)
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args(argv)
    text = section(args.count, args.snapshots)
    print(text)
    if args.write:
        write_into(ROOT / "docs" / "performance.md", text)


if __name__ == "__main__":
    main()
