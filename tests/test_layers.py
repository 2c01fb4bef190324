"""Imports run down the layers only: what feeds the state, and the pure rule and
value modules, never import the decision, the service or the HTTP edge."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "webhook"
UPPER = {
    "webhook.decide.judge",
    "webhook.decide.service",
    "webhook.serving.app",
    "webhook.serving.server",
    "webhook.cli.main",
}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


LOWER = sorted(
    [*PACKAGE.glob("state/*.py"), *PACKAGE.glob("rules/*.py")]
    + [PACKAGE / "model" / name for name in ("values.py", "reading.py", "records.py", "objects.py")]
)


@pytest.mark.parametrize("path", LOWER, ids=[str(p.relative_to(PACKAGE)) for p in LOWER])
def test_lower_layers_never_import_upper_ones(path: Path) -> None:
    assert not imports(path) & UPPER
