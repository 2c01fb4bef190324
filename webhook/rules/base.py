"""What a rule is, what it reports, and the helpers every rule shares.

A rule is a pure function. One-object rules see the object; transition rules
see the old and the new object; cross-object rules see records and a read-only
view of the state. Each yields `Problem`s that name the field path and the
values. The rule's id and mode are attached by the engine, so one function can
serve both snapshot families.

Pure: no I/O, no globals read at call time, no logging.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from webhook.model.kinds import FAMILIES, Family, Role
from webhook.model.records import Record
from webhook.model.values import cel_equal, map_changes, show, show_pair, wire_names
from webhook.state.view import FamilyView, VolumeView

__all__ = ["show"]  # rules format values with it


class Mode(enum.StrEnum):
    DENY = "deny"
    WARN = "warn"
    OFF = "off"


class Stage(enum.Enum):
    OBJECT = "one-object"
    TRANSITION = "transition"
    CROSS = "cross-object"
    # Who may make a change. Judged on every CREATE and UPDATE that makes it,
    # whatever the object's lifecycle (an object being deleted included), never
    # ratcheted (the rule itself compares old and new), never audited (who set
    # what, once, is not in the stored object).
    AUTHORIZATION = "authorization"
    # What a delete will break. Judged on DELETE, from the object as stored and
    # the state; never denies (a delete is never blocked), only warns.
    DELETION = "deletion"


class Operation(enum.StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class Problem(msgspec.Struct, frozen=True, gc=False):
    """One thing wrong, as a rule sees it. `soft` problems only ever warn.

    A problem is identified (for ratcheting) by its rule, its path and `key`,
    the values it is about compared as CEL compares them; a rule that sets no
    key is identified by its message, which names those values."""

    path: str
    message: str
    soft: bool = False
    key: object = None

    def same_as(self, other: Problem) -> bool:
        if self.path != other.path:
            return False
        if self.key is None and other.key is None:
            return self.message == other.message
        return cel_equal(self.key, other.key)


class Finding(msgspec.Struct, frozen=True, gc=False):
    """A problem attributed to a rule, with the verdict it carries."""

    rule_id: str
    path: str
    message: str
    denies: bool

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.message}"


class CrossContext(msgspec.Struct, frozen=True):
    family: Family
    operation: Operation
    record: Record
    old_record: Record | None
    state: FamilyView
    volumes: VolumeView


ObjectCheck = Callable[[Family, Any], Iterable[Problem]]
TransitionCheck = Callable[[Family, Any, Any], Iterable[Problem]]
CrossCheck = Callable[[CrossContext], Iterable[Problem]]
C = TypeVar("C", ObjectCheck, TransitionCheck, CrossCheck)


@dataclass(frozen=True)
class Rule(Generic[C]):
    id: str
    family: Family
    role: Role
    stage: Stage
    default: Mode
    meaning: str
    check: C

    @property
    def kind(self) -> str:
        return {
            Role.SNAPSHOT: self.family.snapshot_kind,
            Role.CONTENT: self.family.content_kind,
            Role.CLASS: self.family.class_kind,
            Role.PVC: "PersistentVolumeClaim",
        }[self.role]

    @property
    def operations(self) -> str:
        if self.role is Role.PVC:
            return "CREATE"
        if self.stage is Stage.DELETION:
            return "DELETE"
        return "UPDATE" if self.stage is Stage.TRANSITION else "CREATE, UPDATE"


def define(
    base_id: str,
    role: Role,
    stage: Stage,
    check: C,
    meaning: str,
    *,
    default: Mode = Mode.DENY,
    families: Sequence[Family] = FAMILIES,
) -> list[Rule[C]]:
    """One rule per family: `base_id` for single volumes, `group-base_id` for groups."""
    return [
        Rule(family.rule_id(base_id), family, role, stage, default, meaning, check)
        for family in families
    ]


# --- formatting -------------------------------------------------------------


def listed(records: Sequence[Any], most: int = 5, note: Callable[[Any], str] | None = None) -> str:
    """Names of records, quoted (namespace/name when namespaced), each followed by
    `note(record)` in parentheses when given: the first `most` of them and how
    many more."""
    shown = ", ".join(
        f'"{r.id.display}"' + (f" ({note(r)})" if note is not None else "") for r in records[:most]
    )
    return shown + (f" and {len(records) - most} more" if len(records) > most else "")


def pending_note(record: object) -> str:
    """Says so when a conflicting record is a claim admitted here but not yet stored."""
    if getattr(record, "pending", False):
        return " (a pending claim: admitted moments ago, not yet stored by the apiserver)"
    return ""


# --- comparison ---------------------------------------------------------------


def changes(path: str, old: object, new: object) -> list[tuple[str, object, object]]:
    """Leaf-level differences between two values, with their field paths.

    Values compare as the CRDs' CEL `self == oldSelf` rules compare them
    (`values.cel_equal`): absent and null are the same at every depth, values of
    different types differ, an empty string, list or map is a value.
    """
    if cel_equal(old, new):
        return []
    view = type(new) if isinstance(new, msgspec.Struct) else type(old)
    if (
        isinstance(old, msgspec.Struct | None)
        and isinstance(new, msgspec.Struct | None)
        and issubclass(view, msgspec.Struct)
    ):
        found: list[tuple[str, object, object]] = []
        for name, wire in wire_names(view):
            found += changes(f"{path}.{wire}", getattr(old, name, None), getattr(new, name, None))
        if found:
            return found
    return [(path, old, new)]


def immutable(path: str, old: object, new: object) -> Iterator[Problem]:
    for field_path, was, now in changes(path, old, new):
        if isinstance(was, dict | None) and isinstance(now, dict | None):
            # a map: name the keys that changed, so none falls off a cut value
            said = map_changes(was, now)
            yield Problem(field_path, f"{field_path} is immutable: {said}")
        else:
            shown_was, shown_now = show_pair(was, now)
            yield Problem(
                field_path, f"{field_path} is immutable: was {shown_was}, now {shown_now}"
            )


# --- presence -------------------------------------------------------------------

Validator = Callable[[object], str | None]
Option = tuple[str, object, Validator]  # field, value, validator


def non_empty_string(value: object) -> str | None:
    return None if isinstance(value, str) and value else "must be a non-empty string"


def any_value(value: object) -> str | None:
    return None


def exactly_one(parent: str, parent_present: bool, options: Sequence[Option]) -> Iterator[Problem]:
    """Exactly one of `options` (field, value, validator) is present and valid."""
    paths = " and ".join(f"{parent}.{field}" for field, _, _ in options)
    present = [(field, value, valid) for field, value, valid in options if value is not None]
    # what the problem is about: which options are set and valid. A source that
    # is missing, empty or absent is one problem ("none valid"), however it reads.
    key = [[field, value] for field, value, valid in present if valid(value) is None]
    if not parent_present:
        yield Problem(parent, f"{parent} is missing: exactly one of {paths} must be set", key=key)
    elif not present:
        yield Problem(parent, f"exactly one of {paths} must be set, found neither", key=key)
    elif len(present) > 1:
        found = ", ".join(f"{parent}.{field}={show(value)}" for field, value, _ in present)
        yield Problem(
            parent,
            f"exactly one of {paths} must be set, found {found}",
            key=[[field, value] for field, value, _ in present],
        )
    else:
        field, value, valid = present[0]
        error = valid(value)
        if error is not None:
            yield Problem(parent, f"{parent}.{field} {error}, got {show(value)}", key=key)
