"""JSON Schema documents of every view the webhook reads, generated from their
pydantic twins.

`snapshot-webhook schemas --out schemas/` rewrites them; a test fails when the
committed files differ from what the models generate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from webhook.decide.admission import AdmissionReviewRequest
from webhook.model.kinds import KINDS
from webhook.model.twins import twin


def generate() -> dict[str, dict[str, Any]]:
    """File name -> schema document."""
    documents = {
        "AdmissionReview.json": twin(AdmissionReviewRequest).model_json_schema(by_alias=True)
    }
    for info in KINDS:
        schema = twin(info.model).model_json_schema(by_alias=True)
        schema["x-kubernetes-group-version-kinds"] = [
            {"group": info.api_group, "version": version, "kind": info.kind}
            for version in info.versions
        ]
        documents[f"{info.kind}.json"] = schema
    return documents


def render(schema: dict[str, Any]) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write_schemas(out: str) -> list[str]:
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate().items():
        path = directory / name
        path.write_bytes(render(schema))
        written.append(str(path))
    return written
