"""Pydantic twins of the msgspec views, generated from them so the two never drift.

The views (`webhook.model.objects`, the admission envelope) are what the webhook
decodes and judges. A twin has the same fields, wire names, defaults and
strictness; it serves what msgspec does not: the JSON Schema documents in
`schemas/`, and the field-by-field error message when a value does not read
(`webhook.reading.describe`).

Pure: no I/O.
"""

from __future__ import annotations

import functools
import types
from typing import Any, Union, get_args, get_origin

import msgspec
from pydantic import BaseModel, ConfigDict, Field, create_model

# strict as the decoder is; unknown fields ignored; wire names only (a
# snake_case key is an unknown field to the apiserver, so it is one here too)
CONFIG = ConfigDict(strict=True, frozen=True, extra="ignore")


@functools.cache
def twin(view: type[msgspec.Struct]) -> type[BaseModel]:
    """The pydantic model that reads what `view` reads, with the same names."""
    fields: dict[str, Any] = {}
    for info in msgspec.structs.fields(view):
        factory = info.default_factory
        field: Any
        if isinstance(factory, type) and issubclass(factory, msgspec.Struct):
            # an empty view as the default (metadata): an empty twin, which the
            # schema shows as the default
            field = Field(default=twin(factory)(), alias=info.encode_name)
        elif factory is not msgspec.NODEFAULT:
            field = Field(default_factory=factory, alias=info.encode_name)
        elif info.default is not msgspec.NODEFAULT:
            default = None if isinstance(info.default, msgspec.Raw) else info.default
            field = Field(default=default, alias=info.encode_name)
        else:
            field = Field(alias=info.encode_name)
        fields[info.name] = (_annotation(info.type), field)
    model: type[BaseModel] = create_model(
        view.__name__,
        __config__=CONFIG,
        __doc__=view.__doc__ if view.__doc__ != msgspec.Struct.__doc__ else None,
        __module__=view.__module__,
        **fields,
    )
    return model


def _annotation(hint: Any) -> Any:
    """`hint` with every view in it replaced by its twin (raw JSON reads as Any)."""
    if hint is msgspec.Raw:
        return Any
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return twin(hint)
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return functools.reduce(lambda a, b: a | b, (_annotation(arg) for arg in args))
    if origin is list:
        return list.__class_getitem__(_annotation(args[0]))
    if origin is dict:
        return dict.__class_getitem__((args[0], _annotation(args[1])))
    return hint
