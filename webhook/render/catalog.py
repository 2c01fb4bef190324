"""The rule table as Markdown, generated from the catalogue so the README cannot drift."""

from __future__ import annotations

from webhook.render.policies import CATALOG as POLICIES
from webhook.rules import CATALOG


def rule_table() -> str:
    """Every rule; the last column says which the apiserver also enforces with a
    ValidatingAdmissionPolicy (deploy/policies/) while the webhook is down."""
    backed = {rendered.rule_id for rendered in POLICIES}
    lines = [
        "| rule id | kind | operations | default | meaning | policy |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rule in CATALOG:
        lines.append(
            f"| `{rule.id}` | {rule.kind} | {rule.operations} | {rule.default.value} "
            f"| {rule.meaning} | {'yes' if rule.id in backed else ''} |"
        )
    return "\n".join(lines)
