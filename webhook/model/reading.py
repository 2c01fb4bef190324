"""Reading JSON as the typed views, and saying what is wrong when it does not
read: each bad field named with its value, in the API's words. Used by the
decision and by everything that feeds the state.

A value is read by msgspec, straight from its bytes (or from a decoded value,
for YAML and watch events). Only when that fails is it read again by the
view's pydantic twin, whose errors name each bad field: the slow path is
taken by unreadable input alone.

Pure: no I/O.
"""

from __future__ import annotations

import functools
from typing import TypeVar

import msgspec
import orjson
from pydantic import ValidationError

from webhook.model import objects
from webhook.model.kinds import KindInfo
from webhook.model.twins import twin
from webhook.model.values import TooDeepError, json_too_deep, show, type_name

V = TypeVar("V", bound=msgspec.Struct)

_UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}
_EXPECTED = {
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "string_type": "must be a string",
    "list_type": "must be an array",
    "bool_type": "must be a boolean",
    "int_type": "must be an integer",
}


class UnreadableObjectError(ValueError):
    pass


@functools.cache
def decoder(view: type[V]) -> msgspec.json.Decoder[V]:
    return msgspec.json.Decoder(view)


def value_of(raw: object, path: str = "the value") -> object:
    """A decoded value: raw JSON bytes decoded, anything else as it is."""
    if isinstance(raw, msgspec.Raw | bytes):
        try:
            return orjson.loads(bytes(raw))
        except orjson.JSONDecodeError as err:
            # raw JSON here was scanned once already: what fails now is its depth,
            # or a value no decoder holds (a number out of range, 1e400)
            if json_too_deep(bytes(raw)):
                raise TooDeepError(path) from None
            raise UnreadableObjectError(f"{path} does not read as JSON: {err}") from None
    return raw


def read(view: type[V], raw: object, path: str) -> V:
    """`raw` (JSON bytes, or a decoded value) read as `view`, or
    UnreadableObjectError naming every bad field under `path`."""
    try:
        found: V
        if isinstance(raw, msgspec.Raw | bytes):
            found = decoder(view).decode(raw)
        else:
            found = msgspec.convert(raw, view)
        return found
    except msgspec.DecodeError as err:
        refused = err
    except RecursionError:  # msgspec's own bound, far past any real object
        raise TooDeepError(path) from None
    try:
        twin(view).model_validate(value_of(raw, path))
    except ValidationError as err:
        raise UnreadableObjectError(describe(err, path)) from None
    # the twin accepts what msgspec refused: never seen (a test keeps it so),
    # but the request still gets an answer that says why
    raise UnreadableObjectError(f"{path} does not read: {refused}")


def parse_object(info: KindInfo, raw: object, path: str) -> objects.KubeObject:
    """Read `raw` as `info`'s kind, or say which field is wrong and how."""
    if isinstance(raw, msgspec.Raw | bytes):
        try:
            obj: objects.KubeObject = decoder(info.model).decode(raw)
        except RecursionError:
            raise TooDeepError(path) from None
        except msgspec.DecodeError:
            raw = value_of(raw, path)  # the slow path names the fault, in the words below
        else:
            if obj.kind is not None and obj.kind != info.kind:
                raise UnreadableObjectError(
                    f"{path}.kind is {show(obj.kind)}, but the request is for {info.kind}"
                )
            return obj
    if not isinstance(raw, dict):
        raise UnreadableObjectError(f"{path} must be a {info.kind} object, got {type_name(raw)}")
    declared = raw.get("kind")
    if declared is not None and declared != info.kind:
        raise UnreadableObjectError(
            f"{path}.kind is {show(declared)}, but the request is for {info.kind}"
        )
    return read(info.model, raw, path)


def describe(err: ValidationError, prefix: str) -> str:
    """Name each bad field and its value, as `prefix.path must be a string, got 5`."""
    parts = []
    for error in err.errors(include_url=False)[:5]:
        loc = [prefix]
        for item in error["loc"]:
            if isinstance(item, int):
                loc[-1] += f"[{item}]"
            elif item not in _UNION_TAGS:
                loc.append(str(item))
        path = ".".join(loc)
        if error["type"] == "missing":
            parts.append(f"{path} is required")
            continue
        expected = _EXPECTED.get(error["type"], error["msg"].removeprefix("Value error, "))
        value = error.get("input")
        parts.append(f"{path} {expected}, got {'null' if value is None else show(value)}")
    return "; ".join(dict.fromkeys(parts))
