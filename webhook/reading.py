"""Reading JSON as the typed views of the objects, and saying what is wrong
when it does not read: each bad field named with its value, in the API's
words. Used by the decision and by everything that feeds the state.
"""

from __future__ import annotations

from pydantic import ValidationError

from webhook import objects
from webhook.kinds import KindInfo
from webhook.values import show, type_name

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


def parse_object(info: KindInfo, raw: object, path: str) -> objects.KubeObject:
    """Read `raw` as `info`'s kind, or say which field is wrong and how."""
    if not isinstance(raw, dict):
        raise UnreadableObjectError(f"{path} must be a {info.kind} object, got {type_name(raw)}")
    declared = raw.get("kind")
    if declared is not None and declared != info.kind:
        raise UnreadableObjectError(
            f"{path}.kind is {show(declared)}, but the request is for {info.kind}"
        )
    try:
        return info.model.model_validate(raw)
    except ValidationError as err:
        raise UnreadableObjectError(describe(err, path)) from None


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
