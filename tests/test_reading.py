"""The two ways a review is read agree, whatever the body holds.

A body is decoded straight from its bytes (msgspec, skipping what no rule
reads) and, when that fails, read again as a whole (orjson, then each view's
pydantic twin, whose errors name the field). These properties change one value
anywhere in a real review and check that both ways give the same review, the
same subject, the same objects and the same words.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from builders import json_paths, replaced
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from webhook.decide.admission import (
    AdmissionRequest,
    BadReviewError,
    GroupVersionKind,
    Review,
    Verdict,
    read_review,
    read_review_json,
)
from webhook.decide.judge import Subject, read_subject
from webhook.model import kinds
from webhook.model.reading import UnreadableObjectError, parse_object, read
from webhook.model.twins import twin

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = [
    json.loads(p.read_text()) for p in sorted((ROOT / "examples" / "reviews").glob("*.json"))
]
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# what a lax reader would take for another type, besides anything at all
tricky = st.sampled_from(["5", "1.5", "true", "false", "", 0, 1, 1.0, 2**64, -1, [], {}, ["a"]])
values = tricky | st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3)
    ),
    max_leaves=8,
)


def _outcome(read: Any, body: bytes) -> Any:
    try:
        return read(body)
    except (BadReviewError, orjson.JSONDecodeError) as err:
        return (type(err).__name__, str(err))


def _plain(review: Review) -> Any:
    """A review with its objects as decoded values, whichever way it was read."""
    request = review.request
    if request is None:
        return (review.api_version, review.uid, review.error)
    fields = msgspec.structs.asdict(request)
    for key in ("object", "old_object"):
        raw = fields[key]
        fields[key] = orjson.loads(bytes(raw)) if isinstance(raw, msgspec.Raw) else raw
    return (review.api_version, review.uid, fields)


def _subject(review: Any) -> Any:
    if not isinstance(review, Review) or review.request is None:
        return None
    found = read_subject(review.request)
    if isinstance(found, Subject):
        return (found.info.kind, found.operation, found.new, found.old)
    return found


@SETTINGS
@given(st.sampled_from(REVIEWS), st.data(), values)
def test_fast_and_whole_reads_agree(review: dict[str, Any], data: Any, value: Any) -> None:
    path = data.draw(st.sampled_from(json_paths(review)))
    body = json.dumps(replaced(review, path, value)).encode()  # big integers too
    fast = _outcome(read_review_json, body)
    whole = _outcome(lambda b: read_review(orjson.loads(b)), body)
    if isinstance(fast, Review) and isinstance(whole, Review):
        assert _plain(fast) == _plain(whole)
        assert _subject(fast) == _subject(whole)
    else:
        assert fast == whole


@pytest.mark.parametrize("review", REVIEWS, ids=lambda r: r["request"]["name"])
def test_every_example_reads_the_fast_way(review: dict[str, Any]) -> None:
    """The examples are what the apiserver sends: none may need the slow path."""
    body = orjson.dumps(review)
    fast = read_review_json(body)
    assert isinstance(fast.request, AdmissionRequest)
    assert isinstance(fast.request.object, msgspec.Raw)
    assert _plain(fast) == _plain(read_review(orjson.loads(body)))


@SETTINGS
@given(st.sampled_from(REVIEWS), st.data(), values)
def test_views_and_twins_accept_the_same_objects(
    review: dict[str, Any], data: Any, value: Any
) -> None:
    request = review["request"]
    obj = request["object"] or request["oldObject"]
    info = kinds.by_group_kind(request["kind"]["group"], request["kind"]["kind"])
    assert info is not None
    path = data.draw(st.sampled_from(json_paths(obj)))
    changed = replaced(obj, path, value)
    try:
        view: Any = msgspec.convert(changed, info.model)
    except msgspec.ValidationError:
        view = None
    try:
        model: Any = twin(info.model).model_validate(changed)
    except ValidationError:
        model = None
    assert (view is None) == (model is None), (path, value)
    if view is not None:
        assert msgspec.to_builtins(view) == model.model_dump(by_alias=True)
        # and from bytes, as a request's object is read
        assert read(info.model, msgspec.Raw(json.dumps(changed).encode()), "o") == view


def test_an_unreadable_object_names_the_field_either_way() -> None:
    review = next(r for r in REVIEWS if r["request"]["kind"]["kind"] == "VolumeSnapshotContent")
    info = kinds.by_group_kind("snapshot.storage.k8s.io", "VolumeSnapshotContent")
    assert info is not None
    broken = replaced(review["request"]["object"], ("spec", "driver"), 5)
    expected = "o.spec.driver must be a string, got 5"
    for raw in (broken, msgspec.Raw(orjson.dumps(broken))):
        with pytest.raises(UnreadableObjectError, match="^" + expected + "$"):
            parse_object(info, raw, "o")


def test_a_body_with_invalid_utf8_is_refused_as_before() -> None:
    """The decoder does not check strings it skips; the body is checked first."""
    body = orjson.dumps(REVIEWS[0]).replace(b'"uid"', b'"x":"\xff\xfe","uid"', 1)
    with pytest.raises(orjson.JSONDecodeError, match="UTF-8"):
        read_review_json(body)


def test_an_object_nested_past_every_parser_is_a_400_not_a_crash() -> None:
    """Callers that skip the body's nesting check (none on the HTTP path) still
    get an answer: past msgspec's and orjson's own bounds, the object is too deep."""
    deep = b'{"kind":"VolumeSnapshot","spec":{"source":' + b"[" * 3000 + b"]" * 3000 + b"}}"
    request = AdmissionRequest(
        uid="u",
        kind=GroupVersionKind(group="snapshot.storage.k8s.io", version="v1", kind="VolumeSnapshot"),
        operation="CREATE",
        object=msgspec.Raw(deep),
    )
    verdict = read_subject(request)
    assert isinstance(verdict, Verdict)
    assert verdict.code == 400
    assert "nested deeper than 256 levels" in verdict.message
