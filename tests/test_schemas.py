"""The committed JSON Schemas are exactly what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from webhook.render.schemas import generate, render

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@pytest.mark.parametrize("name", sorted(generate()))
def test_committed_schema_is_current(name: str) -> None:
    committed = SCHEMAS / name
    assert committed.exists(), f"run `snapshot-webhook schemas --out schemas` ({name} missing)"
    assert committed.read_bytes() == render(generate()[name]), (
        f"schemas/{name} is stale: run `snapshot-webhook schemas --out schemas`"
    )


def test_no_stray_schema_files() -> None:
    assert {p.name for p in SCHEMAS.glob("*.json")} == set(generate())


def test_schema_uses_wire_field_names() -> None:
    schema = json.loads((SCHEMAS / "VolumeSnapshotContent.json").read_text())
    spec = schema["$defs"]["VolumeSnapshotContentSpec"]["properties"]
    assert {"volumeSnapshotRef", "sourceVolumeMode", "volumeSnapshotClassName"} <= set(spec)
