"""Where one admission's time goes, measured in-process (no HTTP, no TLS)."""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from bench.payloads import SMALL_STATE
from webhook.decide.admission import read_review_json, response
from webhook.decide.judge import judge, read_subject
from webhook.decide.service import Webhook
from webhook.model.values import json_too_deep
from webhook.rules import Policy
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

    stages = [
        ("nesting check of the raw body", nesting),
        ("+ AdmissionReview envelope decoded (msgspec, objects kept raw)", envelope),
        ("+ object read as its kind (msgspec)", subject),
        ("+ rules", rules),
        ("+ answer built and serialized", whole),
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
