"""The rule table as Markdown, generated from the catalogue so the README cannot drift."""

from __future__ import annotations

from webhook.rules import CATALOG


def rule_table() -> str:
    lines = [
        "| rule id | kind | operations | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rule in CATALOG:
        lines.append(
            f"| `{rule.id}` | {rule.kind} | {rule.operations} | {rule.default.value} "
            f"| {rule.meaning} |"
        )
    return "\n".join(lines)
