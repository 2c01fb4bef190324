"""Imports run down the layers only: every package of `webhook` may import what
this table names, and nothing else of the project. A wrong import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "webhook"

# package -> the packages (and top-level modules) of `webhook` it may import
ALLOWED: dict[str, set[str]] = {
    "model": set(),  # typed views, kinds, records, values, reading: the floor
    "state": {"model"},
    "rules": {"model", "state"},  # pure rule functions
    "cluster": {"model", "state", "settings"},  # never decide, render, serving, cli
    "tls": {"cluster"},  # the Secret is kept through cluster.api
    "decide": {"model", "state", "rules", "cluster"},  # never serving, cli
    "render": {"model", "rules", "decide"},
    "settings": set(),
}
# the HTTPS server may import every package but the command line, which may import all
ALLOWED["serving"] = {p for p in ALLOWED if p != "serving"} | {"__version__"}
ALLOWED["cli"] = ALLOWED["serving"] | {"serving"}


def package_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported(path: Path) -> set[str]:
    """The packages (or top-level names) of `webhook` a module imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("webhook"):
            if node.module == "webhook":
                names = [f"webhook.{alias.name}" for alias in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("webhook")]
        for name in names:
            parts = name.split(".")
            if len(parts) > 1:
                found.add(parts[1])
    return found - {package_of(path)}


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if package_of(p) not in ("__init__", "__main__"))


def test_every_package_is_in_the_table() -> None:
    packages = {package_of(p) for p in MODULES}
    assert packages == set(ALLOWED)
    for package in packages - {"settings"}:
        docstring = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
        assert docstring, f"webhook/{package}/__init__.py says what it owns and may import"


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_imports_follow_the_table(path: Path) -> None:
    package = package_of(path)
    assert imported(path) <= ALLOWED[package], (
        f"{path.relative_to(PACKAGE)} imports {sorted(imported(path) - ALLOWED[package])}, "
        f"which {package} may not"
    )


def test_the_table_has_no_cycle() -> None:
    seen: dict[str, int] = {}

    def depth(package: str, trail: tuple[str, ...] = ()) -> int:
        assert package not in trail, f"import cycle: {' -> '.join((*trail, package))}"
        if package not in seen:
            below = [p for p in ALLOWED.get(package, ()) if p in ALLOWED]
            seen[package] = 1 + max((depth(p, (*trail, package)) for p in below), default=0)
        return seen[package]

    assert depth("cli") == max(depth(p) for p in ALLOWED)
