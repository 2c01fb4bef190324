"""JSON values as the Kubernetes API sees them: depth, equality, and how a value
reads in a message. Pure: no I/O.

Nothing here recurses on the input: a value nested a thousand levels deep, or
a YAML alias bomb that expands to millions of nodes, costs no more than the
bound each function is given.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
import orjson

# Far deeper than any real object (a review of a snapshot object nests about 20
# levels, managedFields included) and far below where anything could fail:
# nothing here recurses on a value. It is also above the number of brackets in
# a real review (under 150), which lets `json_too_deep` prove a body shallow by
# counting them, at C speed.
MAX_DEPTH = 256
MAX_VALUE_CHARS = 80


class TooDeepError(ValueError):
    def __init__(self, where: str = "the value") -> None:
        super().__init__(f"{where} is nested deeper than {MAX_DEPTH} levels")


def type_name(value: object) -> str:
    """A value's type in the API's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping | msgspec.Struct):
        return "object"
    return type(value).__name__


def _children(value: object) -> Iterator[object]:
    if isinstance(value, Mapping):
        yield from value.values()
    elif isinstance(value, list | tuple):
        yield from value
    elif isinstance(value, msgspec.Struct):
        yield from msgspec.structs.astuple(value)


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """True when `value` nests more than `limit` objects and arrays deep.

    Each node is visited once, so a structure that shares a node (a YAML alias)
    is walked as often as it is referenced: the caller bounds its size first."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Mapping | list | tuple | msgspec.Struct):
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in _children(node))
    return False


_NOT_OPENINGS = bytes(c for c in range(256) if c not in b"{[")
_NOT_BRACKETS_OR_QUOTES = bytes(c for c in range(256) if c not in b'{}[]"')
_STRING = re.compile(rb'"[^"]*"')
_OPENINGS = re.compile(rb"\{+")
_ONE_KIND = bytes.maketrans(b"[]", b"{}")


def _brackets_outside_strings(raw: bytes) -> bytes:
    """The brackets of a JSON document that are not inside its strings.

    Escaped backslashes and quotes are removed first (backslashes pair from the
    left), so every quote left delimits a string. Then only brackets and quotes
    are kept, and the empty strings that leaves (`""`, most of them) dropped:
    nothing lay between two adjacent quotes, so no bracket changes sides. What
    remains are the few strings with brackets in them (JSON in an annotation),
    cut out by a regular expression over a short text. All of it in C."""
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = raw.translate(None, _NOT_BRACKETS_OR_QUOTES).replace(b'""', b"")
    return _STRING.sub(b"", kept) if b'"' in kept else kept


def json_too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether a JSON text nests deeper than `limit`, read from its bytes.

    A body with no more opening brackets than the limit is proved shallow by
    counting them (each level of depth opens one; those inside strings only add
    to the count). Otherwise strings are cut out and the brackets kept, and
    innermost pairs are removed a level at a time: all of it in C, never a loop
    per byte."""
    if len(raw.translate(None, _NOT_OPENINGS)) <= limit:  # one pass, in C
        return False
    brackets = _brackets_outside_strings(raw)
    if len(brackets) <= limit:  # the rest were inside strings (JSON in an annotation)
        return False
    # In valid JSON brackets nest properly, so both kinds can be one: then one
    # `replace` removes exactly the innermost pairs, a level per pass (two
    # passes, one for `{}` and one for `[]`, would peel `[{}]` at once)
    brackets = brackets.translate(_ONE_KIND)
    for level in range(limit + 1):
        shallower = brackets.replace(b"{}", b"")
        if shallower == brackets:
            # nothing left to peel: what remains is unclosed (not JSON, which
            # orjson says next), deep only if a run of openings makes it so
            runs = _OPENINGS.findall(brackets)
            return level + max(map(len, runs), default=0) > limit
        brackets = shallower
    return True


def _plain(value: object) -> object:
    """A view as the mapping of its set fields (by wire name); anything else as it is."""
    if isinstance(value, msgspec.Struct):
        return {
            wire: getattr(value, name)
            for name, wire in wire_names(type(value))
            if getattr(value, name) is not None
        }
    return value


@functools.cache
def wire_names(view: type[msgspec.Struct]) -> tuple[tuple[str, str], ...]:
    """(attribute, wire name) of each field of a view."""
    return tuple((f.name, f.encode_name) for f in msgspec.structs.fields(view))


def cel_equal(a: object, b: object) -> bool:
    """Equality as CEL's `==` on Kubernetes objects: values of different types
    differ (`1` is not `true`), numbers compare by value (`1 == 1.0`), and an
    absent field equals a null one at every depth, inside maps too.

    Raises TooDeepError past MAX_DEPTH."""
    stack: list[tuple[object, object, int]] = [(a, b, 0)]
    while stack:
        left, right, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise TooDeepError
        left, right = _plain(left), _plain(right)
        if left is None or right is None:
            if left is not right:
                return False
            continue
        if isinstance(left, bool) or isinstance(right, bool):
            if not (isinstance(left, bool) and isinstance(right, bool) and left == right):
                return False
        elif isinstance(left, int | float) and isinstance(right, int | float):
            if left != right and not (math.isnan(left) and math.isnan(right)):
                return False
        elif isinstance(left, str) or isinstance(right, str):
            if not (isinstance(left, str) and isinstance(right, str) and left == right):
                return False
        elif isinstance(left, Mapping) and isinstance(right, Mapping):
            keys = {k for k, v in left.items() if v is not None}
            if keys != {k for k, v in right.items() if v is not None}:
                return False
            # in the map's own order, never the set's: which difference (or which
            # too-deep branch) is met first must not depend on the hash seed
            stack.extend((left[k], right[k], depth + 1) for k in left if k in keys)
        elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
            if len(left) != len(right):
                return False
            stack.extend((x, y, depth + 1) for x, y in zip(left, right, strict=True))
        elif left != right or type(left) is not type(right):
            return False
    return True


def show(value: object, limit: int = MAX_VALUE_CHARS) -> str:
    """A value as it reads in a message: JSON with sorted keys, `absent` for None,
    cut at `limit` characters. Written by a walk that stops at the limit, so its
    cost does not grow with the value."""
    if value is None:
        return "absent"
    out: list[str] = []
    size = 0
    # items: a value to write, or a literal piece of text (tagged)
    stack: list[tuple[bool, object]] = [(False, value)]
    while stack and size <= limit:
        literal, item = stack.pop()
        if literal:
            piece = str(item)
        else:
            item = _plain(item)
            if isinstance(item, Mapping):
                keys = sorted(item, key=str)
                parts: list[tuple[bool, object]] = [(True, "{")]
                for n, key in enumerate(keys):
                    parts.append((True, ("," if n else "") + _scalar(str(key)) + ":"))
                    parts.append((False, item[key]))
                parts.append((True, "}"))
                stack.extend(reversed(parts))
                continue
            if isinstance(item, list | tuple):
                parts = [(True, "[")]
                for n, element in enumerate(item):
                    if n:
                        parts.append((True, ","))
                    parts.append((False, element))
                parts.append((True, "]"))
                stack.extend(reversed(parts))
                continue
            piece = _scalar(item)
        out.append(piece)
        size += len(piece)
    text = "".join(out)
    if stack or len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _scalar(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # not JSON (a YAML date, say): its text
        return orjson.dumps(str(value)).decode()


def show_pair(was: object, now: object, limit: int = MAX_VALUE_CHARS) -> tuple[str, str]:
    """Two values as they read side by side: as `show` writes them, except that
    two different values never read the same. When cutting both at `limit`
    would hide their difference, each is shown around the first place they
    differ."""
    a, b = show(was, limit), show(now, limit)
    if a != b or was is None or now is None or cel_equal(was, now):
        return a, b
    wide = 64 * limit  # bounded: the difference of two cut texts is sought this far
    full_a, full_b = show(was, wide), show(now, wide)
    at = next(
        (n for n, (x, y) in enumerate(zip(full_a, full_b, strict=False)) if x != y),
        min(len(full_a), len(full_b)),
    )
    start = max(0, at - limit // 3)
    size = limit - 6

    def window(text: str) -> str:
        part = text[start : start + size]
        return ("..." if start else "") + part + ("..." if start + size < len(text) else "")

    return window(full_a), window(full_b)


def map_changes(old: Mapping[Any, Any] | None, new: Mapping[Any, Any] | None) -> str:
    """The keys that changed, were added or were removed, with their values; an
    absent map and an empty one are different values, and say so."""
    if old is None or new is None or not (old or new):
        shown_old, shown_new = show_pair(old, new)
        return f"was {shown_old}, now {shown_new}"
    said = []
    for key in sorted(set(old) | set(new), key=str):
        was, now = old.get(key), new.get(key)
        if cel_equal(was, now):
            continue
        if was is None:
            said.append(f"{key} added ({show(now)})")
        elif now is None:
            said.append(f"{key} removed (was {show(was)})")
        else:
            shown_was, shown_now = show_pair(was, now)
            said.append(f"{key} changed from {shown_was} to {shown_now}")
    return ", ".join(said) or f"was {show(old)}, now {show(new)}"


# What names a Kubernetes object or a user, never shortened in a message: names,
# namespaces and uids (at most 253 characters), drivers, label keys, user names.
_IDENTIFIER = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._:@/+-]{0,314}[A-Za-z0-9])?")
_CLAUSE_BREAKS = re.compile(r"(: |; |, | but | which | that )")


def fit(text: str, limit: int) -> str:
    """`text` within `limit` characters. Free-form quoted values are shortened
    first, longest first, keeping both ends and never so that two different
    values read the same; a name, namespace, uid or user is never shortened.
    What is still too long loses its last clauses (`...` says so), never a
    quoted value's middle."""
    while len(text) > limit:
        spans = [(m.start(), m.end()) for m in _QUOTED.finditer(text)]
        inners = [text[start + 1 : end - 1] for start, end in spans]
        candidates = sorted(
            (
                (end - start, start, end)
                for (start, end), inner in zip(spans, inners, strict=True)
                if end - start > 16 and not _IDENTIFIER.fullmatch(inner)
            ),
            reverse=True,
        )
        for size, start, end in candidates:
            inner = text[start + 1 : end - 1]
            inner_size = max(14, size - (len(text) - limit)) - 2
            head = (inner_size - 3) // 2
            tail = inner_size - 3 - head
            short = f"{inner[:head]}...{inner[len(inner) - tail :]}"
            if any(
                other != inner and other.endswith(short[-tail:]) and other.startswith(short[:head])
                for other in inners
            ):
                continue  # it would read like another value
            text = f'{text[:start]}"{short}"{text[end:]}'
            break
        else:
            return _drop_clauses(text, limit, spans)
    return text


def _drop_clauses(text: str, limit: int, quoted: list[tuple[int, int]]) -> str:
    """`text` made to fit by what says least: first its asides in parentheses,
    then its last clauses (cut at a clause break outside every quoted value,
    after the first one, so the subject stays). Only a text whose first clause
    alone is too long (a name near its 253-character maximum) has its longest
    quoted value shortened, keeping both ends."""
    outside = [m for m in _ASIDE.finditer(text) if not any(s < m.start() < e for s, e in quoted)]
    if outside:
        for m in reversed(outside):
            text = text[: m.start()] + text[m.end() :]
        if len(text) <= limit:
            return text
        quoted = [(m.start(), m.end()) for m in _QUOTED.finditer(text)]
    first_end = quoted[0][1] if quoted else 0
    breaks = [
        m.start()
        for m in _CLAUSE_BREAKS.finditer(text)
        if first_end <= m.start() <= limit - 4 and not any(s < m.start() < e for s, e in quoted)
    ]
    if breaks:
        return text[: breaks[-1]] + " ..."
    while len(text) > limit:  # last resort
        longest = max(((e - s, s, e) for s, e in _quoted_spans(text)), default=None)
        if longest is None or longest[0] <= 16:
            return text[: limit - 3] + "..."
        size, start, end = longest
        inner = text[start + 1 : end - 1]
        inner_size = max(14, size - (len(text) - limit)) - 2
        head = (inner_size - 3) // 2
        tail = inner_size - 3 - head
        text = f'{text[:start]}"{inner[:head]}...{inner[len(inner) - tail :]}"{text[end:]}'
    return text


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _QUOTED.finditer(text)]


_ASIDE = re.compile(r" \([^()\"]*\)")
_QUOTED = re.compile(r'"[^"]*"')
