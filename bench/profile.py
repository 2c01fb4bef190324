"""Where one admission's time goes, measured in-process (no HTTP, no TLS)."""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.payloads import SMALL_STATE
from webhook.decide.admission import read_review_json, response
from webhook.decide.judge import judge, read_subject
from webhook.decide.service import Webhook
from webhook.model.values import json_too_deep
from webhook.rules import Policy
from webhook.serving.app import AdmissionEndpoint, AdmissionFastPath, Edge
from webhook.serving.health import Readiness
from webhook.serving.logs import AdmissionLog
from webhook.serving.metrics import Metrics
from webhook.state.fixtures import ObjectStore

ROUNDS = 2000


def _per_call(work: Callable[[bytes], object], bodies: list[bytes]) -> float:
    """Microseconds per call: the best of five runs, so that noise from a shared
    machine does not pass for cost."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for n in range(ROUNDS):
            work(bodies[n % len(bodies)])
        best = min(best, time.perf_counter() - started)
    return best / ROUNDS * 1e6


async def _never(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("only admissions are sent")


def served_in_process(webhook: Webhook, log: AdmissionLog) -> Callable[[bytes], object]:
    """One admission through the server's own ASGI fast path (edge, decision,
    log line to `log`, metrics) as the live server runs it, minus the socket,
    TLS and uvicorn: the coroutine runs to its end in one step, since nothing
    in it waits when the whole body has arrived."""
    edge = Edge(
        metrics=Metrics(),
        readiness=Readiness(),
        max_body_bytes=3 * 1024 * 1024,
        admission_log=log,
    )
    app = AdmissionFastPath(_never, AdmissionEndpoint(webhook, edge))
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    def serve(body: bytes) -> object:
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/validate",
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        message = {"type": "http.request", "body": body, "more_body": False}

        async def receive() -> Any:
            return message

        sent.clear()
        running = app(scope, receive, send)
        try:
            running.send(None)
        except StopIteration:  # ran to its end in one step
            return sent[-1]
        running.close()
        raise RuntimeError("an admission waited (for a thread): it cannot be timed in one step")

    return serve


def decision_profile(paths: list[Path]) -> str:
    """Cumulative cost of each stage of an admission, and the hottest functions."""
    store = ObjectStore()
    store.load([str(SMALL_STATE)])
    policy = Policy()
    webhook = Webhook(store.index, policy, embedded=False)
    bodies = [p.read_bytes() for p in paths]

    def nesting(body: bytes) -> object:
        return json_too_deep(body)

    def envelope(body: bytes) -> object:
        json_too_deep(body)
        return read_review_json(body)

    def subject(body: bytes) -> object:
        json_too_deep(body)
        review = read_review_json(body)
        return read_subject(review.request) if review.request else None

    def rules(body: bytes) -> object:
        json_too_deep(body)
        review = read_review_json(body)
        found = read_subject(review.request) if review.request else None
        if found is None or not hasattr(found, "info"):
            return found
        return judge(found, store.index, policy)  # type: ignore[arg-type]

    def whole(body: bytes) -> object:
        json_too_deep(body)
        review = read_review_json(body)
        return orjson.dumps(response(review.api_version, review.uid, webhook.judge(review)))

    log_stream = open(os.devnull, "wb")  # noqa: SIM115 - closed below
    log = AdmissionLog(stream=log_stream)
    served = served_in_process(Webhook(store.index, policy, embedded=True), log)
    stages = [
        ("nesting check of the raw body", nesting),
        ("+ AdmissionReview envelope decoded (msgspec, objects kept raw)", envelope),
        ("+ object read as its kind (msgspec)", subject),
        ("+ rules", rules),
        ("+ answer built and serialized", whole),
        (
            "all the server does per admission, in process: the ASGI fast path, body read, "
            "decision, embedded state update, answer, log line and metrics",
            served,
        ),
    ]
    lines = [
        "Cumulative in-process cost per admission over the benchmark payloads "
        "(`bench/profile.py`):",
        "",
        "| stage | µs per admission |",
        "| --- | --- |",
    ]
    for label, work in stages:
        _per_call(work, bodies)  # warm
        lines.append(f"| {label} | {_per_call(work, bodies):.1f} |")
    log.close()
    log_stream.close()
    profiler = cProfile.Profile()
    profiler.enable()
    for n in range(ROUNDS):
        whole(bodies[n % len(bodies)])
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(12)
    top = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(top) if line.lstrip().startswith("ncalls"))
    lines += ["", "Hottest functions (cProfile, by own time):", "", "```"]
    lines += [line.replace(str(Path.cwd()) + "/", "") for line in top[start : start + 13]]
    lines += ["```"]
    return "\n".join(lines)
