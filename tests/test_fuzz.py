"""Property-based fuzzing of the admission endpoint, in process (the same ASGI app
the server runs): raw bytes, the AdmissionReview envelope, and each kind's
object. Every reply is a JSON error (400/413/415) or a well-formed
AdmissionReview with the request's uid, never a 500 or an exception.

SNAPSHOT_WEBHOOK_FUZZ_EXAMPLES raises the budget for long runs (default 200 per
property; `scripts/reliability` runs 5,000).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from builders import json_paths, replaced
from figures import record_figure
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webhook.decide.service import Webhook
from webhook.rules import Policy
from webhook.serving.app import Edge, create_app
from webhook.serving.health import Readiness
from webhook.serving.metrics import Metrics
from webhook.state.fixtures import ObjectStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("SNAPSHOT_WEBHOOK_FUZZ_EXAMPLES", "200"))
REVIEWS = [
    json.loads(p.read_text())
    for p in sorted((ROOT / "examples" / "reviews").glob("*.json"))
    if json.loads(p.read_text())["request"]["operation"] != "DELETE"
]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
tried: dict[str, int] = {}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=20,
)


class Endpoint:
    """The app over an in-process ASGI transport, on one event loop."""

    def __init__(self) -> None:
        store = ObjectStore()
        store.load([str(ROOT / "tests" / "fixtures" / "cluster.yaml")])
        edge = Edge(Metrics(), Readiness(state_loaded=True), max_body_bytes=256 * 1024)
        app = create_app(Webhook(store.index, Policy(), embedded=False), edge)
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://webhook.test"
        )

    def post(self, content: bytes, content_type: str = "application/json") -> httpx.Response:
        return self.loop.run_until_complete(
            self.client.post("/validate", content=content, headers={"Content-Type": content_type})
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    running = Endpoint()
    yield running
    running.close()
    for name, count in tried.items():
        record_figure(f"fuzzed: {name}", f"{count} inputs, 0 failures")


def check(answer: httpx.Response, uid: object) -> None:
    assert answer.status_code in (200, 400, 413, 415), answer.text[:200]
    body = answer.json()
    if answer.status_code != 200:
        assert isinstance(body["error"], str) and body["error"]
        return
    response = body["response"]
    assert body["kind"] == "AdmissionReview"
    if isinstance(uid, str) and uid:
        assert response["uid"] == uid
    assert isinstance(response["allowed"], bool)
    if not response["allowed"]:
        assert response["status"]["code"] in (400, 403), response["status"]


def count(name: str) -> None:
    tried[name] = tried.get(name, 0) + 1


@FUZZ
@given(raw=st.binary(max_size=4096))
def test_raw_bytes(endpoint: Endpoint, raw: bytes) -> None:
    count("raw bodies")
    check(endpoint.post(raw), None)


@FUZZ
@given(data=st.data(), value=json_values)
def test_envelope_with_any_value_anywhere(
    endpoint: Endpoint, data: st.DataObject, value: Any
) -> None:
    base = data.draw(st.sampled_from(REVIEWS))
    path = data.draw(
        st.sampled_from(
            [p for p in json_paths(base, items=2) if "object" not in p and "oldObject" not in p]
        )
    )
    body = replaced(base, path, value)
    count("envelopes")
    uid = (
        body.get("request", {}).get("uid")
        if isinstance(body, dict) and isinstance(body.get("request"), dict)
        else None
    )
    check(endpoint.post(json.dumps(body).encode()), uid)


@FUZZ
@given(data=st.data(), value=json_values)
def test_objects_with_any_value_anywhere(
    endpoint: Endpoint, data: st.DataObject, value: Any
) -> None:
    base = data.draw(st.sampled_from(REVIEWS))
    key = data.draw(st.sampled_from([k for k in ("object", "oldObject") if base["request"].get(k)]))
    path = data.draw(st.sampled_from(json_paths(base["request"][key], items=2)))
    body = copy.deepcopy(base)
    body["request"][key] = replaced(base["request"][key], path, value)
    count("objects")
    check(endpoint.post(json.dumps(body).encode()), base["request"]["uid"])
