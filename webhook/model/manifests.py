"""Reading Kubernetes manifests: YAML or JSON files, directories, stdin.

Multi-document YAML and `kind: List` are unrolled into one `Document` per
object, each labelled `FILE (document N)` (or `FILE (document N, item M)`
inside a List) so that a message can point at it; no editor mistakes that for
a line number. Anything unreadable raises `ManifestError` naming the file and
the reason; nothing is skipped silently.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import yaml

from webhook.model.values import MAX_DEPTH, json_too_deep, type_name

MAX_FILE_BYTES = 64 * 1024 * 1024  # far above any real manifest; stops a runaway read
# libyaml's C composer recurses without a bound and crashes the process on deep
# input, and aliases let a few hundred bytes expand to billions of nodes, so both
# are checked first on the parser's event stream, which neither recurses nor
# expands aliases. Like kubectl, a document whose aliases add more nodes than
# this (or than the document has itself) is refused as excessive aliasing.
MAX_ALIAS_NODES = 10_000
SUFFIXES = (".yaml", ".yml", ".json")

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe YAML that keeps timestamps as strings, as the apiserver's decoder does."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Document:
    source: str  # FILE:DOC or FILE:DOC.ITEM
    raw: dict[str, Any]

    @property
    def api_version(self) -> str:
        value = self.raw.get("apiVersion")
        return value if isinstance(value, str) else ""

    @property
    def kind(self) -> str:
        value = self.raw.get("kind")
        return value if isinstance(value, str) else ""


def expand(paths: Sequence[str], suffixes: Sequence[str] = SUFFIXES) -> Iterator[str]:
    """Files named, and the files below each directory named with one of `suffixes`,
    in sorted order."""
    for name in paths:
        path = Path(name)
        if name != "-" and path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in suffixes)
            yield from (str(p) for p in found)
        else:
            yield name


def read_bytes(name: str, stdin: IO[bytes] | None = None) -> bytes:
    try:
        if name == "-":
            stream = stdin if stdin is not None else sys.stdin.buffer
            data = stream.read(MAX_FILE_BYTES + 1)
        else:
            with open(name, "rb") as handle:
                data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ManifestError(f"{name}: cannot read: {err.strerror or err}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ManifestError(f"{name}: larger than {MAX_FILE_BYTES} bytes")
    return data


def parse_documents(name: str, data: bytes) -> list[object]:
    """Every document in a file: one JSON value, or a YAML stream."""
    if name.endswith(".json"):
        # the same limit as YAML and as a review body: one reader, one limit
        if json_too_deep(data):
            raise ManifestError(f"{name}: nested deeper than {MAX_DEPTH} levels")
        try:
            return [orjson.loads(data)]
        except orjson.JSONDecodeError as err:
            raise ManifestError(f"{name}: invalid JSON: {err}") from None
    try:
        _check_depth(name, data)
        return list(yaml.load_all(data, Loader=_Loader))
    except yaml.YAMLError as err:
        text = str(err).replace("\n", " ").replace('"<byte string>"', "the file")
        raise ManifestError(f"{name}: invalid YAML: {text}") from None
    except RecursionError:
        raise ManifestError(f"{name}: invalid YAML: nested too deeply") from None


def _check_depth(name: str, data: bytes) -> None:
    """Refuse deep nesting and excessive aliasing before anything is composed."""
    open_sizes: list[tuple[str | None, int]] = []  # (anchor, nodes so far) per open collection
    sizes: dict[str, int] = {}  # expanded nodes under each anchor
    literal = through_aliases = 0
    for event in yaml.parse(data, Loader=_Loader):
        if isinstance(event, yaml.DocumentStartEvent):
            literal = through_aliases = 0
        elif isinstance(event, yaml.CollectionStartEvent):
            if len(open_sizes) >= MAX_DEPTH:
                raise ManifestError(f"{name}: nested deeper than {MAX_DEPTH} levels")
            open_sizes.append((event.anchor, 0))
        elif isinstance(event, yaml.CollectionEndEvent | yaml.ScalarEvent | yaml.AliasEvent):
            if isinstance(event, yaml.AliasEvent):
                if any(anchor == event.anchor for anchor, _ in open_sizes):
                    raise ManifestError(
                        f"{name}: recursive alias *{event.anchor}: it refers to a collection "
                        "that contains it, which no Kubernetes object can"
                    )
                nodes = sizes.get(event.anchor or "", 1)
                through_aliases += nodes
                if through_aliases > max(MAX_ALIAS_NODES, literal):
                    raise ManifestError(
                        f"{name}: excessive aliasing: aliases expand to more than "
                        f"{max(MAX_ALIAS_NODES, literal)} nodes"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                anchor, inside = open_sizes.pop()
                nodes = inside + 1
                literal += 1
                if anchor:
                    sizes[anchor] = nodes
            else:
                nodes = 1
                literal += 1
                if event.anchor:
                    sizes[event.anchor] = 1
            if open_sizes:
                anchor, inside = open_sizes[-1]
                open_sizes[-1] = (anchor, inside + nodes)


def documents(name: str, data: bytes) -> Iterator[Document]:
    label = "<stdin>" if name == "-" else name
    for number, doc in enumerate(parse_documents(name, data), start=1):
        if doc is None:
            continue  # an empty document between `---` separators
        where = f"{label} (document {number})"
        if not isinstance(doc, dict):
            raise ManifestError(
                f"{where}: expected an object with apiVersion and kind, got {type_name(doc)}"
            )
        if doc.get("kind") == "List" or str(doc.get("kind", "")).endswith("List"):
            items = doc.get("items")
            if not isinstance(items, list):
                raise ManifestError(f"{where}: items must be an array, got {type_name(items)}")
            for index, item in enumerate(items, start=1):
                at = f"{label} (document {number}, item {index})"
                if not isinstance(item, dict):
                    raise ManifestError(f"{at}: expected an object, got {type_name(item)}")
                yield Document(at, item)
        else:
            yield Document(where, doc)


def read(paths: Sequence[str], stdin: IO[bytes] | None = None) -> Iterator[Document]:
    for name in expand(paths):
        yield from documents(name, read_bytes(name, stdin))
