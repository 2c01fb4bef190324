"""Label selectors, as Kubernetes evaluates them (metav1.LabelSelectorAsSelector).
Pure.

- `matchLabels` and every `matchExpressions` requirement must all hold.
- `In`: the key is present and its value is one of `values`; `NotIn`: the key
  is absent, or its value is none of `values`; `Exists`: present;
  `DoesNotExist`: absent.
- An empty selector (`{}`) selects everything; a missing one, nothing.
- A selector Kubernetes refuses (an unknown operator, `In`/`NotIn` with no
  values, `Exists`/`DoesNotExist` with values, a value that is not a string)
  is reported as invalid, never guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class InvalidSelectorError(ValueError):
    pass


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether `labels` are selected. Raises InvalidSelectorError, naming the field."""
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise InvalidSelectorError("matchLabels must be an object")
    for key, value in match_labels.items():
        if not isinstance(value, str):
            raise InvalidSelectorError(f"matchLabels[{key}] must be a string")
    selected = all(labels.get(key) == value for key, value in match_labels.items())
    expressions = selector.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise InvalidSelectorError("matchExpressions must be an array")
    for n, requirement in enumerate(expressions):
        selected = _holds(requirement, labels, f"matchExpressions[{n}]") and selected
    return selected


def _holds(requirement: object, labels: Mapping[str, str], where: str) -> bool:
    if not isinstance(requirement, Mapping):
        raise InvalidSelectorError(f"{where} must be an object")
    key, operator = requirement.get("key"), requirement.get("operator")
    values = requirement.get("values") or []
    if not isinstance(key, str) or not key:
        raise InvalidSelectorError(f"{where}.key must be a non-empty string")
    if operator not in OPERATORS:
        raise InvalidSelectorError(
            f"{where}.operator must be one of {', '.join(OPERATORS)}, got {operator!r}"
        )
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidSelectorError(f"{where}.values must be an array of strings")
    if operator in ("In", "NotIn") and not values:
        raise InvalidSelectorError(f"{where}.values must be non-empty for {operator}")
    if operator in ("Exists", "DoesNotExist") and values:
        raise InvalidSelectorError(f"{where}.values must be empty for {operator}")
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    return key not in labels
