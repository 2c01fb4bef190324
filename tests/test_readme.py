"""The README shows what the code does: its rule table and its worked example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from serving import cli

from webhook.render.catalog import rule_table
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


def readme_commands() -> list[list[str]]:
    """Every `snapshot-webhook ...` command in the README's code blocks."""
    import shlex

    found = []
    for block in re.findall(r"```(?:sh|console)\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.removeprefix("$ ").split(" > ")[0].split(" | ")[0].strip()
            if line.startswith("snapshot-webhook "):
                found.append(shlex.split(line)[1:])
    return found


COMMANDS = readme_commands()
READ_ONLY = ("check", "review", "audit", "rules", "policies", "webhook-configuration")


def test_the_readme_shows_commands() -> None:
    assert {c[0] for c in COMMANDS} >= {"check", "review", "audit", "certs"}


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_the_readme_shows_parses_and_names_files_that_ship(
    args: list[str],
) -> None:
    from webhook.cli.main import build_parser

    build_parser().parse_args(args)  # exits (SystemExit) on a flag that does not exist
    for arg in args[1:]:
        if "/" in arg and not arg.startswith(("-", "~", "http")) and "=" not in arg:
            assert (ROOT / arg).exists(), f"the README names {arg}, which does not ship"
    if args[0] in READ_ONLY and "--kubeconfig" not in args and "--kube" not in args:
        result = cli(*args)
        assert result.returncode in (0, 1), result.stderr
        assert "Traceback" not in result.stderr
