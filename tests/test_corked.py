"""Each response's head and body leave in one write (one TLS record, one send),
and nothing is held that a client waits for: an interim 100 Continue, the head
of a response with no body (HEAD), a head written just before closing."""

from __future__ import annotations

import json
import time

import pytest
from builders import review, snapshot_class
from serving import Server, running_server
from test_hostile import tls_socket

from webhook.serving.protocol import CorkedTransport


class Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_a_head_leaves_with_its_body() -> None:
    inner = Recorder()
    corked = CorkedTransport(inner)
    corked.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert inner.writes == []
    corked.write(b"{}")
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    corked.write(b"more")  # anything else passes straight through
    assert inner.writes[-1] == b"more"
    assert corked.get_extra_info("socket") == "info:socket"  # the rest is the transport's


def test_an_interim_response_is_never_held() -> None:
    inner = Recorder()
    CorkedTransport(inner).write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert inner.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_a_held_head_goes_out_on_release_and_before_closing() -> None:
    inner = Recorder()
    corked = CorkedTransport(inner)
    corked.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    corked.release()  # the response completed without a body write (HEAD)
    assert inner.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]
    corked.release()
    assert len(inner.writes) == 1  # nothing twice
    corked.write(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    corked.close()
    assert inner.writes[-1] == b"HTTP/1.1 408 Request Timeout\r\n\r\n" and inner.closed


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    with running_server(tmp_path_factory.mktemp("corked")) as running:
        yield running


def read_until(sock: object, needle: bytes, count: int = 1, seconds: float = 10) -> bytes:
    received = b""
    deadline = time.monotonic() + seconds
    while received.count(needle) < count and time.monotonic() < deadline:
        chunk = sock.recv(65536)  # type: ignore[attr-defined]
        if not chunk:
            break
        received += chunk
    return received


def test_live_head_requests_and_keep_alive_are_answered(server: Server) -> None:
    with tls_socket(server) as sock:
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = read_until(sock, b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 "), first
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # the same connection
        assert read_until(sock, b"ok").startswith(b"HTTP/1.1 200")


def test_live_100_continue_is_sent_before_the_body_arrives(server: Server) -> None:
    body = json.dumps(review(snapshot_class("cont", driver="c.csi.example.com"), uid="c-1"))
    with tls_socket(server) as sock:
        sock.sendall(
            b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        assert read_until(sock, b"\r\n\r\n", seconds=5).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body.encode())
        answer = read_until(sock, b'"uid":"c-1"')
    assert answer.startswith(b"HTTP/1.1 200") and b'"uid":"c-1"' in answer


def test_live_a_response_is_one_tls_record(server: Server) -> None:
    """Read with a buffer larger than any response: head and body arrive in one
    read, because they were encrypted as one record."""
    body = json.dumps(review(snapshot_class("one", driver="o.csi.example.com"), uid="o-1"))
    with tls_socket(server) as sock:
        for _ in range(5):
            sock.sendall(
                b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
            )
            deadline = time.monotonic() + 10
            first = b""
            while not first and time.monotonic() < deadline:
                first = sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 200") and first.endswith(b"}"), first[-80:]
