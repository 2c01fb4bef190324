"""The README shows what the code does: its rule table and its worked example."""

from __future__ import annotations

import re
from pathlib import Path

from serving import cli

from webhook.catalog_doc import rule_table
from webhook.rules import CATALOG

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def between(begin: str, end: str) -> str:
    match = re.search(rf"<!-- {begin}[^>]*-->\n(.*?)\n<!-- {end} -->", README, re.S)
    assert match, f"README lacks the {begin} block"
    return match.group(1)


def test_rule_table_is_generated_from_the_catalogue() -> None:
    assert between("rules:begin", "rules:end") == rule_table()
    for rule in CATALOG:
        assert f"`{rule.id}`" in README


def test_quick_start_has_exactly_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert [c.split()[0] for c in commands] == ["scripts/serve", "scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test" in ci


def test_worked_check_example_matches_real_output() -> None:
    args = ["check", "--state", "examples/check/cluster", "examples/check/manifests"]
    result = cli(*args)
    assert result.returncode == 1
    shown = between("check-example:begin", "check-example:end").splitlines()
    assert shown[1].removeprefix("$ snapshot-webhook ").split() == args
    assert shown[2:] == [
        *result.stdout.splitlines(),
        result.stderr.strip(),
        "$ echo $?",
        "1",
        "```",
    ]
