"""The rule catalogue and the policy that sets each rule's mode.

Rule ids are part of the interface: they appear in every message, in metrics
and in `--rule` overrides, and never change meaning.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhook.model.kinds import Family, Role
from webhook.rules import content, deletion, restore, snapshot, snapshot_class
from webhook.rules.base import Mode, Rule, Stage

CATALOG: tuple[Rule[Any], ...] = tuple(
    sorted(
        (
            *snapshot.RULES,
            *content.RULES,
            *snapshot_class.RULES,
            *restore.RULES,
            *deletion.RULES,
        ),
        key=lambda rule: (
            rule.family.prefix,
            list(Role).index(rule.role),
            list(Stage).index(rule.stage),
            rule.id,
        ),
    )
)
BY_ID: Mapping[str, Rule[Any]] = {rule.id: rule for rule in CATALOG}

_BY_TARGET: dict[tuple[str, Role, Stage], tuple[Rule[Any], ...]] = {}
for _rule in CATALOG:
    _key = (_rule.family.prefix, _rule.role, _rule.stage)
    _BY_TARGET[_key] = (*_BY_TARGET.get(_key, ()), _rule)


def rules_for(family: Family, role: Role, stage: Stage) -> tuple[Rule[Any], ...]:
    return _BY_TARGET.get((family.prefix, role, stage), ())


class UnknownRuleError(ValueError):
    pass


Step = tuple[str, Any, bool]  # rule id, its check, whether it may deny


@dataclass(frozen=True)
class Plan:
    """What one kind's admission runs under a policy, resolved once: for each
    stage, the checks of the rules that are on, in catalogue order."""

    transition: tuple[Step, ...]
    object: tuple[Step, ...]
    cross: tuple[Step, ...]
    authorization: tuple[Step, ...]
    deletion: tuple[Step, ...]


@dataclass(frozen=True)
class Policy:
    """Each rule's mode: its default unless overridden."""

    overrides: Mapping[str, Mode] = field(default_factory=dict)
    _plans: dict[str, Plan] = field(default_factory=dict, compare=False, repr=False)

    def mode(self, rule: Rule[Any]) -> Mode:
        return self.overrides.get(rule.id, rule.default)

    def plan(self, kind: str, family: Family, role: Role) -> Plan:
        """The plan for a kind (memoized by its name: one dictionary lookup per
        admission, no enum hashed, nothing filtered)."""
        found = self._plans.get(kind)
        if found is None:
            found = self._plans[kind] = Plan(
                *(
                    tuple(
                        (rule.id, rule.check, self.mode(rule) is Mode.DENY)
                        for rule in rules_for(family, role, stage)
                        if self.mode(rule) is not Mode.OFF
                    )
                    for stage in (
                        Stage.TRANSITION,
                        Stage.OBJECT,
                        Stage.CROSS,
                        Stage.AUTHORIZATION,
                        Stage.DELETION,
                    )
                )
            )
        return found

    @classmethod
    def parse(cls, specs: Iterable[str]) -> Policy:
        """Build a policy from `RULE_ID=deny|warn|off` strings, naming what is wrong."""
        overrides: dict[str, Mode] = {}
        for spec in specs:
            rule_id, sep, mode = spec.partition("=")
            rule_id, mode = rule_id.strip(), mode.strip()
            if not sep:
                raise UnknownRuleError(f"--rule {spec!r}: expected RULE_ID=deny|warn|off")
            if rule_id not in BY_ID:
                raise UnknownRuleError(
                    f"--rule {spec!r}: unknown rule id {rule_id!r}; valid ids: "
                    + ", ".join(sorted(BY_ID))
                )
            try:
                overrides[rule_id] = Mode(mode)
            except ValueError:
                raise UnknownRuleError(
                    f"--rule {spec!r}: unknown mode {mode!r}; valid modes: deny, warn, off"
                ) from None
            if overrides[rule_id] is Mode.DENY and BY_ID[rule_id].stage is Stage.DELETION:
                raise UnknownRuleError(
                    f"--rule {spec!r}: {rule_id} judges deletes, which are never denied; "
                    "valid modes: warn, off"
                )
        return cls(overrides)
