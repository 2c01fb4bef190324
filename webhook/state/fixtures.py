"""Feeding the state index from manifests.

Used where there is no cluster to watch: the offline `check` and `review`
commands and the embedded server, which is its own cluster of one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from webhook.model import kinds
from webhook.model.kinds import KindInfo
from webhook.model.manifests import Document, ManifestError, read
from webhook.model.objects import KubeObject
from webhook.model.reading import UnreadableObjectError, parse_object
from webhook.state.index import StateIndex

DEFAULT_NAMESPACE = "default"
ObjectKey = tuple[str, str, str, str]  # group, kind, namespace, name


def with_namespace(info: KindInfo, raw: dict[str, Any]) -> dict[str, Any]:
    """A namespaced manifest without a namespace lands in "default", as with kubectl."""
    metadata = raw.get("metadata")
    if not info.namespaced or not isinstance(metadata, dict) or metadata.get("namespace"):
        return raw
    return {**raw, "metadata": {**metadata, "namespace": DEFAULT_NAMESPACE}}


def object_key(info: KindInfo, obj: KubeObject) -> ObjectKey:
    return (info.api_group, info.kind, obj.namespace, obj.name)


@dataclass
class ObjectStore:
    """The state index, plus (for `check`, which turns a repeated object into an
    UPDATE) each object as written. A server keeps only the compact records."""

    index: StateIndex = field(default_factory=StateIndex)
    keep_raw: bool = False
    raw: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)

    def put(self, info: KindInfo, obj: KubeObject, raw: dict[str, Any]) -> None:
        self.index.put_object(info, obj)
        if self.keep_raw:
            self.raw[object_key(info, obj)] = raw

    def load(self, paths: Sequence[str], stdin: IO[bytes] | None = None) -> int:
        """Load every object of a kind the rules read; other kinds are ignored."""
        count = 0
        for doc in read(paths, stdin):
            info = kinds.by_api_version(doc.api_version, doc.kind)
            if info is None:
                continue
            raw = with_namespace(info, doc.raw)
            self.put(info, read_object(info, raw, doc), raw)
            count += 1
        return count


def read_object(info: KindInfo, raw: dict[str, Any], doc: Document) -> KubeObject:
    try:
        return parse_object(info, raw, "object")
    except UnreadableObjectError as err:
        raise ManifestError(f"{doc.source}: {info.kind}: {err}") from None
