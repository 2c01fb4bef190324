"""Equality, depth and message values, as the API sees JSON values."""

from __future__ import annotations

import time

import pytest

from webhook.model.values import (
    MAX_DEPTH,
    TooDeepError,
    cel_equal,
    json_too_deep,
    map_changes,
    show,
    too_deep,
    type_name,
)


def nested(depth: int, leaf: object = "x") -> object:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1, True, False),  # Python says 1 == True; CEL does not
        ([1], [True], False),
        ({"a": 0}, {"a": False}, False),
        (1, 1.0, True),
        ("1", 1, False),
        ({"a": None}, {}, True),  # absent and null are the same ...
        ({"x": {"a": None, "b": 1}}, {"x": {"b": 1}}, True),  # ... at every depth
        ([None], [], False),  # but a list keeps its length
        ({"a": []}, {}, False),  # an empty list is a value
        ({"a": ""}, {}, False),
        (None, None, True),
    ],
)
def test_equality_is_cel_equality(a: object, b: object, equal: bool) -> None:
    assert cel_equal(a, b) is equal
    assert cel_equal(b, a) is equal


def test_equality_past_the_depth_limit_is_refused_not_a_crash() -> None:
    with pytest.raises(TooDeepError, match=f"deeper than {MAX_DEPTH} levels"):
        cel_equal(nested(5000), nested(5000))
    assert cel_equal(nested(MAX_DEPTH - 1), nested(MAX_DEPTH - 1))


def test_show_is_bounded_for_deep_and_exploding_values() -> None:
    assert len(show(nested(100_000))) <= 80
    # a YAML alias bomb's shape: nine references to the same list, nine levels deep
    bomb: object = ["lol"] * 9
    for _ in range(9):
        bomb = [bomb] * 9
    started = time.perf_counter()
    text = show(bomb)
    assert time.perf_counter() - started < 0.5
    assert len(text) == 80 and text.endswith("...")
    assert show(None) == "absent"
    assert show({"b": 1, "a": [True, None]}) == '{"a":[true,null],"b":1}'


def test_depth_of_parsed_values_and_of_raw_json() -> None:
    assert too_deep(nested(MAX_DEPTH + 1))
    assert not too_deep(nested(MAX_DEPTH - 1))
    deep = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    assert json_too_deep(deep)
    # brackets inside strings do not nest
    many_in_strings = b'{"a": "' + b"[" * 500 + b'"}'
    assert not json_too_deep(many_in_strings)
    escaped = b'{"a": "\\"' + b"{" * 300 + b'"}'
    assert not json_too_deep(escaped)


def test_types_are_named_in_the_api_words() -> None:
    assert [type_name(v) for v in (None, True, 1, 1.5, "s", [], {})] == [
        "null",
        "boolean",
        "integer",
        "number",
        "string",
        "array",
        "object",
    ]


def test_map_changes_name_every_key_that_changed() -> None:
    old = {f"key-{n:02d}": "v" * 30 for n in range(20)}
    new = {**old, "key-19": "changed", "key-20": "new"}
    del new["key-00"]
    assert map_changes(old, new) == (
        'key-00 removed (was "' + "v" * 30 + '"), '
        'key-19 changed from "' + "v" * 30 + '" to "changed", key-20 added ("new")'
    )
