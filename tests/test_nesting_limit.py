"""The nesting limit (256 levels) is exact for every mix of objects and arrays,
in every input format and at every entry point: a review body (the server's
reader and `review`), a `.json` or `.yaml` manifest for `check`, and a state
file. 256 levels pass; 257 are refused, naming the limit."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from builders import review, snapshot_class

from webhook.cli.offline import run_check, run_review
from webhook.decide.admission import BadReviewError, review_from_bytes
from webhook.model.manifests import ManifestError, parse_documents
from webhook.model.values import MAX_DEPTH, json_too_deep, too_deep
from webhook.rules import Policy
from webhook.state.fixtures import ObjectStore

SHAPES: dict[str, Callable[[int], str]] = {
    "objects": lambda level: "o",
    "arrays": lambda level: "a",
    "alternating": lambda level: "o" if level % 2 else "a",
    "pairs": lambda level: "o" if (level // 2) % 2 else "a",
    "object then arrays": lambda level: "o" if level < 3 else "a",
}


def chain(levels: int, shape: Callable[[int], str]) -> str:
    """JSON text of `levels` nested containers (written out: json.dumps recurses)."""
    opening, closing = [], []
    for level in range(levels):
        if shape(level) == "o":
            opening.append('{"k": ')
            closing.append("}")
        else:
            opening.append("[")
            closing.append("]")
    return "".join(opening) + "1" + "".join(reversed(closing))


def value(levels: int, shape: Callable[[int], str]) -> object:
    node: object = 1
    for level in reversed(range(levels)):
        node = {"k": node} if shape(level) == "o" else [node]
    return node


def deep_class() -> dict:
    """A VolumeSnapshotClass with a placeholder where nesting is free-form: the
    fieldsV1 of its managedFields entry (class 1, metadata 2, managedFields 3,
    the entry 4, fieldsV1 5)."""
    obj = snapshot_class("deep", driver="deep.csi.example.com")
    obj["metadata"]["managedFields"][0]["fieldsV1"] = {"f:deep": "CHAIN"}
    return obj


def document_text(total: int, shape: Callable[[int], str]) -> str:
    """A manifest exactly `total` levels deep."""
    return json.dumps(deep_class()).replace('"CHAIN"', chain(total - 5, shape))


def review_text(total: int, shape: Callable[[int], str]) -> str:
    """A review body exactly `total` levels deep (the envelope and request add 2)."""
    return json.dumps(review(deep_class())).replace('"CHAIN"', chain(total - 7, shape))


CASES = [
    pytest.param(name, total, id=f"{name}-{total}")
    for name in SHAPES
    for total in (MAX_DEPTH, MAX_DEPTH + 1)
]


@pytest.mark.parametrize(("shape", "total"), CASES)
def test_values_and_texts_count_the_same(shape: str, total: int) -> None:
    deep = total > MAX_DEPTH
    assert len(json.dumps(value(3, SHAPES[shape]))) > 0
    assert json.loads(chain(3, SHAPES[shape])) == value(3, SHAPES[shape])
    assert json_too_deep(chain(total, SHAPES[shape]).encode()) is deep
    assert too_deep(json.loads(chain(total, SHAPES[shape]))) is deep


@pytest.mark.parametrize(("shape", "total"), CASES)
def test_a_review_body(shape: str, total: int) -> None:
    body = review_text(total, SHAPES[shape]).encode()
    if total > MAX_DEPTH:
        with pytest.raises(BadReviewError, match=f"nested deeper than {MAX_DEPTH} levels"):
            review_from_bytes(body)
    else:
        assert review_from_bytes(body).request is not None


@pytest.mark.parametrize(("shape", "total"), CASES)
def test_review_files(
    tmp_path: Path, shape: str, total: int, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "review.json"
    path.write_text(review_text(total, SHAPES[shape]))
    out = io.StringIO()
    status = run_review([str(path)], [], Policy(), None, out)
    if total > MAX_DEPTH:
        assert status == 2 and out.getvalue() == ""
        assert f"nested deeper than {MAX_DEPTH} levels" in capsys.readouterr().err
    else:
        assert status == 0 and '"allowed":true' in out.getvalue()


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
@pytest.mark.parametrize(("shape", "total"), CASES)
def test_manifests_and_state_files(tmp_path: Path, shape: str, total: int, suffix: str) -> None:
    text = document_text(total, SHAPES[shape])
    if suffix == ".yaml":  # the same document in YAML's flow style (JSON is YAML)
        text = "# a manifest\n" + text
    path = tmp_path / f"class{suffix}"
    path.write_text(text)
    if total > MAX_DEPTH:
        with pytest.raises(ManifestError, match=f"nested deeper than {MAX_DEPTH} levels"):
            parse_documents(str(path), path.read_bytes())
        with pytest.raises(ManifestError, match=str(path)):
            ObjectStore().load([str(path)])
        assert run_check([str(path)], [], Policy(), None, io.StringIO()) == 2
    else:
        (document,) = parse_documents(str(path), path.read_bytes())
        assert isinstance(document, dict)
        assert ObjectStore().load([str(path)]) == 1
        assert run_check([str(path)], [], Policy(), None, io.StringIO()) == 0


def test_a_recursive_alias_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "group.yaml"
    path.write_text(
        "apiVersion: groupsnapshot.storage.k8s.io/v1\n"
        "kind: VolumeGroupSnapshot\n"
        "metadata: {name: g, namespace: shop}\n"
        "spec:\n"
        "  source:\n"
        "    selector: &sel {matchLabels: {app: db}, nested: *sel}\n"
    )
    with pytest.raises(ManifestError, match=rf"{path}: recursive alias \*sel"):
        ObjectStore().load([str(path)])
    assert run_check([str(path)], [], Policy(), None, io.StringIO()) == 2
    # an ordinary alias of a finished collection is fine
    fine = tmp_path / "fine.yaml"
    fine.write_text("a: &x {k: v}\nb: *x\n")
    assert parse_documents(str(fine), fine.read_bytes()) == [{"a": {"k": "v"}, "b": {"k": "v"}}]
    assert yaml.safe_load(fine.read_text())["b"] == {"k": "v"}
