"""Manifest reading: YAML streams, JSON, Lists, directories, and honest errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.model.manifests import ManifestError, documents, read


def test_timestamps_stay_strings_as_the_apiserver_sends_them() -> None:
    data = b"kind: VolumeSnapshot\nmetadata:\n  deletionTimestamp: 2026-11-21T12:00:00Z\n"
    (doc,) = documents("x.yaml", data)
    assert doc.raw["metadata"]["deletionTimestamp"] == "2026-11-21T12:00:00Z"


def test_empty_documents_are_skipped_and_numbered_by_position() -> None:
    docs = list(documents("x.yaml", b"---\n---\nkind: A\n---\nkind: B\n"))
    assert [d.source for d in docs] == ["x.yaml (document 2)", "x.yaml (document 3)"]


def test_directories_are_read_recursively_in_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.yml").write_text("kind: B\n")
    (tmp_path / "1.json").write_text('{"kind": "A"}')
    (tmp_path / "notes.txt").write_text("ignored")
    assert [d.kind for d in read([str(tmp_path)])] == ["A", "B"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"kind: List\nitems: 3\n", "x.yaml (document 1): items must be an array, got integer"),
        (b"kind: List\nitems: [3]\n", "x.yaml (document 1, item 1): expected an object"),
        (b"a: [" * 5 + b"\n", "invalid YAML"),
    ],
)
def test_bad_documents_name_file_and_position(data: bytes, needle: str) -> None:
    with pytest.raises(ManifestError) as err:
        list(documents("x.yaml", data))
    assert needle in str(err.value)


@pytest.mark.parametrize("data", [b"[" * 100_000, b"a: " + b"[" * 300 + b"]" * 300])
def test_deeply_nested_yaml_is_an_error_not_a_crash(data: bytes) -> None:
    with pytest.raises(ManifestError) as err:
        list(documents("x.yaml", data))
    assert str(err.value).startswith("x.yaml: ")


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    with pytest.raises(ManifestError) as err:
        list(documents("x.json", b"[" * 100_000 + b"]" * 100_000))
    assert "x.json: nested deeper than 256 levels" in str(err.value)


BOMB = b"""apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotClass
metadata: {name: bomb}
driver: x
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
parameters: {x: *f}
"""


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    """330 bytes that expand to millions of nodes: refused as kubectl refuses it."""
    with pytest.raises(ManifestError) as err:
        list(documents("bomb.yaml", BOMB))
    assert str(err.value) == (
        "bomb.yaml: excessive aliasing: aliases expand to more than 10000 nodes"
    )


def test_ordinary_aliases_are_fine() -> None:
    data = b"""apiVersion: v1
kind: List
items:
- &class {apiVersion: snapshot.storage.k8s.io/v1, kind: VolumeSnapshotClass,
          metadata: {name: a}, driver: x, deletionPolicy: Delete}
- *class
"""
    docs = list(documents("x.yaml", data))
    assert [d.source for d in docs] == [
        "x.yaml (document 1, item 1)",
        "x.yaml (document 1, item 2)",
    ]
