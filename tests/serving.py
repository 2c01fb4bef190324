"""Start the real server in a subprocess on 127.0.0.1, wait for it, always stop it."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0
JSON_HEADERS = {"Content-Type": "application/json"}


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """`snapshot-webhook ARGS...` as a user runs it, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "webhook", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    ca_file: Path
    process: subprocess.Popen[bytes]
    log_file: Path
    client_cert: tuple[Path, Path] | None = None  # for servers that require one

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def tls(self, *, anonymous: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if self.client_cert is not None and not anonymous:
            context.load_cert_chain(*self.client_cert)
        return context

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.tls(), timeout=10.0)

    def log(self) -> str:
        return self.log_file.read_text()

    def log_records(self) -> list[dict[str, object]]:
        """Complete JSON log lines so far (the last one may still be being written)."""
        text = self.log()
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.startswith("{")]

    def wait_for_log(
        self, wanted: Callable[[dict[str, object]], bool], timeout: float = 10.0
    ) -> dict[str, object]:
        """The first log record for which `wanted` is true, waiting for it at most `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            found = [record for record in self.log_records() if wanted(record)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no such log record after {timeout}s:\n{self.log()}")
            time.sleep(0.05)


def wait_for(check: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `check` until it is true, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)


def wait_until_healthy(
    url: str, context: ssl.SSLContext, process: subprocess.Popen[bytes], log_file: Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_file.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", verify=context, timeout=1.0).status_code == 200:
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not healthy after {START_TIMEOUT}s:\n{log_file.read_text()}")


@contextmanager
def running_server(
    workdir: Path,
    *args: str,
    ca_file: Path | None = None,
    env: dict[str, str] | None = None,
    client_cert: tuple[Path, Path] | None = None,
    fetch_ca: Callable[[], bytes | None] | None = None,
) -> Iterator[Server]:
    """`snapshot-webhook serve` on a free loopback port, certificates in `workdir/certs`
    (or, with `fetch_ca`, a CA the server publishes elsewhere, written to `ca_file`)."""
    port = free_port()
    log_file = workdir / f"server-{port}.log"
    command = [
        sys.executable,
        "-m",
        "webhook",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    if "--tls-cert-file" not in args and "--manage-certificates" not in args:
        command += ["--cert-dir", str(workdir / "certs")]
    if "--probe-port" not in args:
        command += ["--probe-port", str(free_port())]
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
    server = Server(port, ca_file or workdir / "certs" / "ca.crt", process, log_file, client_cert)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.ca_file.exists() and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            published = fetch_ca() if fetch_ca is not None else None
            if published:
                server.ca_file.write_bytes(published)
            time.sleep(0.05)
        wait_until_healthy(server.url, server.tls(), process, log_file)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
