"""Reading Kubernetes manifests: YAML or JSON files, directories, stdin.

Multi-document YAML and `kind: List` are unrolled into one `Document` per
object, each labelled `FILE:DOC` (or `FILE:DOC.ITEM` inside a List) so that a
message can point at it. Anything unreadable raises `ManifestError` naming the
file and the reason; nothing is skipped silently.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson
import yaml

MAX_FILE_BYTES = 64 * 1024 * 1024  # far above any real manifest; stops a runaway read
# Kubernetes objects nest about 15 levels (managedFields included). libyaml's C
# composer recurses without a bound and crashes the process on deep input, so
# depth is checked first on the parser's event stream, which does not recurse.
MAX_DEPTH = 128
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


def expand(paths: Sequence[str]) -> Iterator[str]:
    """Files named, and the manifest files below each directory named, in sorted order."""
    for name in paths:
        path = Path(name)
        if name != "-" and path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
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
        try:
            return [orjson.loads(data)]
        except orjson.JSONDecodeError as err:
            raise ManifestError(f"{name}: invalid JSON: {err}") from None
    try:
        _check_depth(name, data)
        return list(yaml.load_all(data, Loader=_Loader))
    except yaml.YAMLError as err:
        raise ManifestError(f"{name}: invalid YAML: {err}".replace("\n", " ")) from None
    except RecursionError:
        raise ManifestError(f"{name}: invalid YAML: nested too deeply") from None


def _check_depth(name: str, data: bytes) -> None:
    depth = 0
    for event in yaml.parse(data, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ManifestError(f"{name}: nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def documents(name: str, data: bytes) -> Iterator[Document]:
    label = "<stdin>" if name == "-" else name
    for number, doc in enumerate(parse_documents(name, data), start=1):
        if doc is None:
            continue  # an empty document between `---` separators
        if not isinstance(doc, dict):
            raise ManifestError(
                f"{label}:{number}: expected an object with apiVersion and kind, got "
                f"{type(doc).__name__}"
            )
        if doc.get("kind") == "List" or str(doc.get("kind", "")).endswith("List"):
            items = doc.get("items")
            if not isinstance(items, list):
                raise ManifestError(f"{label}:{number}: items must be a list")
            for index, item in enumerate(items, start=1):
                if not isinstance(item, dict):
                    raise ManifestError(f"{label}:{number}.{index}: expected an object")
                yield Document(f"{label}:{number}.{index}", item)
        else:
            yield Document(f"{label}:{number}", doc)


def read(paths: Sequence[str], stdin: IO[bytes] | None = None) -> Iterator[Document]:
    for name in expand(paths):
        yield from documents(name, read_bytes(name, stdin))
