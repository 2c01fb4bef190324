"""Requests captured from a real kube-apiserver, when a checkout has them beside it.

What these check runs everywhere through the project's own fixtures
(tests/wire.py and test_wire_requests.py, built to the same shape); this test
keeps those honest wherever the captures are available, and is skipped where
they are not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import judge
from conftest import CLUSTER

from webhook.decide.admission import read_review, response
from webhook.state.fixtures import ObjectStore

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
FILES = sorted(SAMPLES.glob("*.json")) if SAMPLES.is_dir() else []


@pytest.mark.skipif(not FILES, reason="no captured samples beside this checkout")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_captured_request_is_answered(path: Path) -> None:
    body = json.loads(path.read_bytes())
    store = ObjectStore()
    store.load([str(CLUSTER)])
    verdict = judge(store.index, body)
    review = read_review(body)
    answer = response(review.api_version, review.uid, verdict)
    assert answer["apiVersion"] == body["apiVersion"]
    assert answer["response"]["uid"] == body["request"]["uid"]
    # The fixture cluster already has a default class for ebs.csi.aws.com in both families.
    assert verdict.allowed is ("second-default" not in path.name), verdict.message
    assert verdict.code in (200, 403)
