"""What the rules forbid but the cluster already has.

The cross-object rules are run over every stored object, as if each were
created now: two default classes for one driver, a content claimed by two
snapshots, driver mismatches, references to missing objects. Admission can
only stop new problems; this finds the old ones (and any that slipped between
replicas, which each hold their own reservations).

Pure: reads the state, changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from webhook.model.kinds import FAMILIES, Role, for_role
from webhook.rules import Policy, rules_for
from webhook.rules.base import CrossContext, Mode, Operation, Stage
from webhook.state.index import StateIndex


@dataclass(frozen=True)
class AuditFinding:
    kind: str
    name: str  # namespace/name, or name
    rule_id: str
    path: str
    message: str
    denies: bool  # what admission would do with it today
    # the object's reference, for reports
    api_version: str = ""
    namespace: str = ""
    object_name: str = ""
    uid: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "object": self.name,
            "rule": self.rule_id,
            "path": self.path,
            "message": self.message,
            "severity": "violation" if self.denies else "warning",
        }


def audit(state: StateIndex, policy: Policy) -> list[AuditFinding]:
    return sorted(_findings(state, policy), key=lambda f: (f.rule_id, f.kind, f.name, f.message))


def _findings(state: StateIndex, policy: Policy) -> Iterator[AuditFinding]:
    for family in FAMILIES:
        view = state.family(family)
        for role in (Role.SNAPSHOT, Role.CONTENT, Role.CLASS):
            info = for_role(family, role)
            rules = [
                r for r in rules_for(family, role, Stage.CROSS) if policy.mode(r) is not Mode.OFF
            ]
            for record in state.records(info):
                if getattr(record, "deleting", False):
                    continue
                ctx = CrossContext(family, Operation.CREATE, record, None, view, state)
                for rule in rules:
                    for problem in rule.check(ctx):
                        yield AuditFinding(
                            info.kind,
                            record.id.display,
                            rule.id,
                            problem.path,
                            problem.message,
                            policy.mode(rule) is Mode.DENY and not problem.soft,
                            f"{info.api_group}/{info.served_versions[0]}",
                            record.id.namespace,
                            record.id.name,
                            record.id.uid,
                        )


def by_rule(findings: list[AuditFinding]) -> Counter[str]:
    return Counter(f.rule_id for f in findings)
