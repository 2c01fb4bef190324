"""ValidatingAdmissionPolicies for the one-object and transition rules that CEL
can express and the shipped CRDs do not enforce. Pure: renders objects.

When the webhook is down (a rollout gone wrong, `failurePolicy: Ignore`, the
namespace opt-out), the apiserver still enforces these: the policies hold the
one-object floor, the webhook adds the cross-object rules. Their semantics are
the webhook's: absent and null are the same (`has()` on both sides), an update
that leaves the judged field as it was passes (cleanup is never blocked), a
one-object rule that the old object already broke with the same value only
passes on (ratcheting), and every group version is matched through
`matchPolicy: Equivalent`. Only rules in `deny` mode are rendered: the
apiserver runs the policies before the webhook, so a policy in warn mode would
only repeat the webhook's warning. Each message is the webhook's own, word for
word (`messageExpression`), so a user sees one wording whichever layer
answers; the one exception is a change of several map keys at once, which CEL
can only count.

Needs admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy (Kubernetes
v1.30 or newer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.model.kinds import GROUP, KINDS, VOLUME, Family
from webhook.rules import BY_ID, Policy
from webhook.rules.base import Mode


def _has(root: str, path: str) -> str:
    """`has()` of every step of a dotted path, so a missing parent reads as absent."""
    parts = path.split(".")
    return " && ".join(f"has({root}.{'.'.join(parts[: n + 1])})" for n in range(len(parts)))


def unchanged(path: str) -> str:
    """The field is as it was: both absent, or both present and equal."""
    new, old = _has("object", path), _has("oldObject", path)
    return f"(({new}) == ({old})) && (!({new}) || object.{path} == oldObject.{path})"


def set_once(path: str) -> str:
    """Absent before, or present and equal now (an empty string counts as set)."""
    new, old = _has("object", path), _has("oldObject", path)
    return f"!({old}) || (({new}) && object.{path} == oldObject.{path})"


def _shown(root: str, path: str) -> str:
    return f"(({_has(root, path)}) ? '\"' + {root}.{path} + '\"' : 'absent')"


def was_now(rule_id: str, path: str, shown_path: str, said: str = "is immutable") -> str:
    """A message expression naming the rule, the field, and both values, in the
    webhook's words (`webhook.rules.base.immutable`)."""
    return (
        f"'{rule_id}: {shown_path} {said}: was ' + {_shown('oldObject', path)} + "
        f"', now ' + {_shown('object', path)}"
    )


def _map_shown(m: str) -> str:
    """A map of strings as `webhook.values.show` writes it: `{}`, or its one key and
    value; CEL has no order to write more keys in, so those are counted."""
    key = f"{m}.map(k, k)[0]"
    return (
        f"(size({m}) == 0 ? '{{}}' : size({m}) == 1 ? "
        f"'{{\"' + {key} + '\":\"' + {m}[{key}] + '\"}}' : string(size({m})) + ' keys')"
    )


def map_was_now(rule_id: str, field: str) -> str:
    """The webhook's `map_changes` words for a map field of strings: was/now when a
    side is absent or both are empty, else the one key that changed, was added or
    was removed (several keys are counted: CEL has no order to name them in)."""
    new, old = f"object.{field}", f"oldObject.{field}"
    differing = (
        f"({new}.filter(k, !(k in {old}) || {old}[k] != {new}[k]) + {old}.filter(k, !(k in {new})))"
    )
    key = f"{differing}[0]"
    one_key = (
        f"({key} in {old} && {key} in {new}) ? {key} + ' changed from \"' + {old}[{key}] + "
        f"'\" to \"' + {new}[{key}] + '\"' : ({key} in {new}) ? {key} + ' added (\"' + "
        f"{new}[{key}] + '\")' : {key} + ' removed (was \"' + {old}[{key}] + '\")'"
    )
    both = f"size({differing}) == 1 ? ({one_key}) : string(size({differing})) + ' keys changed'"
    return (
        f"'{rule_id}: {field} is immutable: ' + (!has({old}) || !has({new}) || "
        f"(size({old}) == 0 && size({new}) == 0) ? 'was ' + "
        f"(has({old}) ? {_map_shown(old)} : 'absent') + ', now ' + "
        f"(has({new}) ? {_map_shown(new)} : 'absent') : ({both}))"
    )


def annotation_valid(family: Family) -> str:
    key = family.default_annotation
    annotations = "object.metadata.annotations"
    old_annotations = "oldObject.metadata.annotations"
    return (
        f"!has(object.metadata.annotations) || !('{key}' in {annotations}) || "
        f"{annotations}['{key}'] in ['true', 'false'] || "
        # ratchet: an update keeping the same value the old object had
        f"(request.operation == 'UPDATE' && has(oldObject.metadata.annotations) && "
        f"'{key}' in {old_annotations} && {old_annotations}['{key}'] == {annotations}['{key}'])"
    )


def _served_versions(api_group: str, resource: str) -> list[str]:
    (info,) = [i for i in KINDS if (i.api_group, i.plural) == (api_group, resource)]
    return list(info.served_versions)


@dataclass(frozen=True)
class Check:
    expression: str
    message: str
    message_expression: str = ""


@dataclass(frozen=True)
class Rendered:
    rule_id: str
    api_group: str
    resource: str
    operations: tuple[str, ...]
    checks: tuple[Check, ...]


def _catalog() -> list[Rendered]:
    """What CEL can express of the rules the CRDs leave out (checked against the
    CRDs shipped upstream: VolumeSnapshotClass has no CEL rules at all; the v1
    VolumeSnapshotContent lacks driver and ref immutability and lets a volume
    mode be added; the group CRDs lack only the default-annotation check)."""
    classes, contents = "volumesnapshotclasses", "volumesnapshotcontents"
    group = VOLUME.api_group
    ref = "spec.volumeSnapshotRef"
    rendered = [
        Rendered(
            rule_id,
            group,
            classes,
            ("UPDATE",),
            (
                Check(
                    unchanged(field),
                    f"{rule_id}: {field} is immutable",
                    was_now(rule_id, field, field)
                    if field != "parameters"
                    else map_was_now(rule_id, field),
                ),
            ),
        )
        for rule_id, field in (
            ("class.driver.immutable", "driver"),
            ("class.parameters.immutable", "parameters"),
            ("class.deletion-policy.immutable", "deletionPolicy"),
        )
    ]
    rendered += [
        Rendered(
            "content.driver.immutable",
            group,
            contents,
            ("UPDATE",),
            (
                Check(
                    unchanged("spec.driver"),
                    "content.driver.immutable: spec.driver is immutable",
                    was_now("content.driver.immutable", "spec.driver", "spec.driver"),
                ),
            ),
        ),
        Rendered(
            "content.ref.immutable",
            group,
            contents,
            ("UPDATE",),
            (
                *(
                    Check(
                        unchanged(f"{ref}.{field}"),
                        f"content.ref.immutable: {ref}.{field} is immutable",
                        was_now("content.ref.immutable", f"{ref}.{field}", f"{ref}.{field}"),
                    )
                    for field in ("name", "namespace")
                ),
                Check(
                    set_once(f"{ref}.uid"),
                    f"content.ref.immutable: {ref}.uid may be set once and never changed or "
                    "removed",
                    was_now(
                        "content.ref.immutable",
                        f"{ref}.uid",
                        f"{ref}.uid",
                        "may be set once and never changed or removed",
                    ),
                ),
            ),
        ),
        Rendered(
            "content.volume-mode.immutable",
            group,
            contents,
            ("UPDATE",),
            (
                Check(
                    unchanged("spec.sourceVolumeMode"),
                    "content.volume-mode.immutable: spec.sourceVolumeMode is never added, "
                    "changed or removed",
                    was_now(
                        "content.volume-mode.immutable",
                        "spec.sourceVolumeMode",
                        "spec.sourceVolumeMode",
                    ),
                ),
            ),
        ),
    ]
    for family, resource in ((VOLUME, classes), (GROUP, "volumegroupsnapshotclasses")):
        rule_id = family.rule_id("class.default.annotation")
        rendered.append(
            Rendered(
                rule_id,
                family.api_group,
                resource,
                ("CREATE", "UPDATE"),
                (
                    Check(
                        annotation_valid(family),
                        f'{rule_id}: {family.default_annotation_path} is neither "true" nor '
                        '"false": only "true" marks a default',
                        f"'{rule_id}: {family.default_annotation_path} is \"' + "
                        f"object.metadata.annotations['{family.default_annotation}'] + "
                        '\'": only "true" marks a default, so the snapshot controller '
                        "treats this class as not default'",
                    ),
                ),
            )
        )
    return rendered


CATALOG: tuple[Rendered, ...] = tuple(_catalog())
POLICY_PREFIX = "snapshot-webhook."


def _policy(rendered: Rendered) -> dict[str, Any]:
    validations = []
    for check in rendered.checks:
        validation: dict[str, Any] = {"expression": check.expression, "message": check.message}
        if check.message_expression:
            validation["messageExpression"] = check.message_expression
        validation["reason"] = "Invalid"
        validations.append(validation)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {
            "name": POLICY_PREFIX + rendered.rule_id,
            "annotations": {"snapshot-webhook.io/rule": rendered.rule_id},
        },
        "spec": {
            "failurePolicy": "Fail",
            # every field the apiserver would default is set, so that a second
            # `kubectl apply` finds nothing to change
            "matchConstraints": {
                "matchPolicy": "Equivalent",
                "namespaceSelector": {},
                "objectSelector": {},
                "resourceRules": [
                    {
                        "apiGroups": [rendered.api_group],
                        # every version served, so a cluster that serves no v1 yet
                        # (group snapshots before v8.6) is matched too
                        "apiVersions": _served_versions(rendered.api_group, rendered.resource),
                        "operations": list(rendered.operations),
                        "resources": [rendered.resource],
                        "scope": "*",
                    }
                ],
            },
            "validations": validations,
        },
    }


def _binding(rendered: Rendered) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_PREFIX + rendered.rule_id},
        "spec": {"policyName": POLICY_PREFIX + rendered.rule_id, "validationActions": ["Deny"]},
    }


def render(policy: Policy, only: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """A policy and its binding for every rendered rule in deny mode. A rule in
    warn mode is left to the webhook: the policy runs first, and its warning
    would say the webhook's again, once more."""
    for rendered in CATALOG:
        if only and rendered.rule_id not in only:
            continue
        mode = policy.mode(BY_ID[rendered.rule_id])
        if mode is not Mode.DENY:
            continue
        yield _policy(rendered)
        yield _binding(rendered)
