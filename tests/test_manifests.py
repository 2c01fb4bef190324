"""Manifest reading: YAML streams, JSON, Lists, directories, and honest errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.manifests import ManifestError, documents, read


def test_timestamps_stay_strings_as_the_apiserver_sends_them() -> None:
    data = b"kind: VolumeSnapshot\nmetadata:\n  deletionTimestamp: 2026-11-21T12:00:00Z\n"
    (doc,) = documents("x.yaml", data)
    assert doc.raw["metadata"]["deletionTimestamp"] == "2026-11-21T12:00:00Z"


def test_empty_documents_are_skipped_and_numbered_by_position() -> None:
    docs = list(documents("x.yaml", b"---\n---\nkind: A\n---\nkind: B\n"))
    assert [d.source for d in docs] == ["x.yaml:2", "x.yaml:3"]


def test_directories_are_read_recursively_in_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.yml").write_text("kind: B\n")
    (tmp_path / "1.json").write_text('{"kind": "A"}')
    (tmp_path / "notes.txt").write_text("ignored")
    assert [d.kind for d in read([str(tmp_path)])] == ["A", "B"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"kind: List\nitems: 3\n", "x.yaml:1: items must be a list"),
        (b"kind: List\nitems: [3]\n", "x.yaml:1.1: expected an object"),
        (b"a: [" * 5 + b"\n", "invalid YAML"),
    ],
)
def test_bad_documents_name_file_and_position(data: bytes, needle: str) -> None:
    with pytest.raises(ManifestError) as err:
        list(documents("x.yaml", data))
    assert needle in str(err.value)


@pytest.mark.parametrize("data", [b"[" * 100_000, b"a: " + b"[" * 200 + b"]" * 200])
def test_deeply_nested_yaml_is_an_error_not_a_crash(data: bytes) -> None:
    with pytest.raises(ManifestError) as err:
        list(documents("x.yaml", data))
    assert str(err.value).startswith("x.yaml: ")


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    with pytest.raises(ManifestError) as err:
        list(documents("x.json", b"[" * 100_000 + b"]" * 100_000))
    assert "x.json: invalid JSON" in str(err.value)
