"""The ValidatingAdmissionPolicies: shipped as rendered, valid CEL, and in
agreement with the webhook on every row of the rule tables, evaluated with a
real CEL implementation."""

from __future__ import annotations

from typing import Any

import celpy
import pytest
import test_rules_class
import test_rules_content
from builders import changed, judge, review, snapshot_class
from serving import ROOT, cli

from webhook.render.policies import CATALOG, Rendered, render
from webhook.rules import BY_ID, Policy
from webhook.rules.base import Mode
from webhook.state.index import StateIndex

Obj = dict[str, Any]
SHIPPED = ROOT / "deploy" / "policies" / "policies.yaml"
ENVIRONMENT = celpy.Environment()
DEFAULT = "snapshot.storage.kubernetes.io/is-default-class"
GROUP_DEFAULT = "groupsnapshot.storage.kubernetes.io/is-default-class"


def test_the_shipped_policies_are_the_rendered_ones() -> None:
    result = cli("policies")
    assert result.returncode == 0, result.stderr
    assert SHIPPED.read_text() == result.stdout, "stale: snapshot-webhook policies > " + str(
        SHIPPED.relative_to(ROOT)
    )


def test_only_deny_rules_are_rendered_so_nothing_warns_twice() -> None:
    """The policies run before the webhook: a warn-mode policy would repeat the
    webhook's warning in other words, so warn and off rules are left out."""
    docs = list(
        render(
            Policy.parse(
                [
                    "class.driver.immutable=warn",
                    "class.parameters.immutable=off",
                    "group-class.default.annotation=deny",
                ]
            )
        )
    )
    bindings = {d["spec"]["policyName"]: d for d in docs if d["kind"].endswith("Binding")}
    assert "snapshot-webhook.class.driver.immutable" not in bindings
    assert "snapshot-webhook.class.parameters.immutable" not in bindings
    assert "snapshot-webhook.class.default.annotation" not in bindings  # warn by default
    promoted = bindings["snapshot-webhook.group-class.default.annotation"]
    assert promoted["spec"]["validationActions"] == ["Deny"]
    (policy,) = [
        d
        for d in docs
        if d["kind"] == "ValidatingAdmissionPolicy"
        and d["metadata"]["name"] == "snapshot-webhook.group-class.default.annotation"
    ]
    # every group version is matched, v1beta1 and v1beta2 included
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiVersions"] == ["v1", "v1beta2", "v1beta1"]
    required = {
        "class.driver.immutable",
        "class.parameters.immutable",
        "class.deletion-policy.immutable",
        "content.ref.immutable",
        "content.driver.immutable",
    }
    assert required <= {r.rule_id for r in CATALOG}
    for doc in render(Policy()):
        if doc["kind"] == "ValidatingAdmissionPolicy":
            assert doc["spec"]["matchConstraints"]["matchPolicy"] == "Equivalent"
            for validation in doc["spec"]["validations"]:
                rule_id = doc["metadata"]["annotations"]["snapshot-webhook.io/rule"]
                assert validation["message"].startswith(f"{rule_id}: ")


def program(expression: str) -> Any:
    return ENVIRONMENT.program(ENVIRONMENT.compile(expression))


@pytest.mark.parametrize("rendered", CATALOG, ids=[r.rule_id for r in CATALOG])
def test_every_expression_compiles(rendered: Rendered) -> None:
    for check in rendered.checks:
        program(check.expression)
        if check.message_expression:
            program(check.message_expression)


def policy_message(rendered: Rendered, obj: Obj, old: Obj | None, operation: str) -> str | None:
    """What the policy says of this request: None when it passes."""
    activation = {
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(old),
        "request": celpy.json_to_cel({"operation": operation}),
    }
    for check in rendered.checks:
        result = program(check.expression).evaluate(activation)
        assert isinstance(result, celpy.celtypes.BoolType), (check.expression, result)
        if not result:
            if check.message_expression:
                return str(program(check.message_expression).evaluate(activation))
            return check.message
    return None


def policy_fails(rendered: Rendered, obj: Obj, old: Obj | None, operation: str) -> bool:
    return policy_message(rendered, obj, old, operation) is not None


def rows() -> list[tuple[str, Obj, Obj | None, str]]:
    """(id, object, old object, operation): every row of the class and content
    rule tables, and the cases where these rules are subtle."""
    found: list[tuple[str, Obj, Obj | None, str]] = []
    for module in (test_rules_class, test_rules_content):
        for name, body, *_ in module.CASES:
            request = body["request"]
            found.append((name, request["object"], request.get("oldObject"), request["operation"]))
    for name, old, updates, _ in test_rules_class.UPDATES:
        found.append((name, changed(old, **updates), old, "UPDATE"))
    fresh = test_rules_content.FRESH
    for name, updates, _ in test_rules_content.UPDATES:
        found.append((name, changed(fresh, **updates), fresh, "UPDATE"))
    for old_uid, new_uid in ((None, "u"), ("u", "u"), ("u", "v"), ("u", None), ("", "u")):
        found.append(
            (
                f"ref uid {old_uid!r} to {new_uid!r}",
                changed(fresh, **{"spec.volumeSnapshotRef.uid": new_uid}),
                changed(fresh, **{"spec.volumeSnapshotRef.uid": old_uid}),
                "UPDATE",
            )
        )
    no_mode = changed(fresh, **{"spec.sourceVolumeMode": None})
    found.append(("volume mode added", fresh, no_mode, "UPDATE"))
    found.append(
        ("ref removed", changed(fresh, **{"spec.volumeSnapshotRef": None}), fresh, "UPDATE")
    )
    found.append(
        ("finalizer removed", changed(fresh, **{"metadata.finalizers": None}), fresh, "UPDATE")
    )
    for group, key in ((False, DEFAULT), (True, GROUP_DEFAULT)):
        odd = snapshot_class("odd", group=group, default="True")
        plain = snapshot_class("odd", group=group)
        found += [
            (f"default annotation True (group={group})", odd, None, "CREATE"),
            (
                f"default annotation true (group={group})",
                changed(odd, **{"metadata.annotations": {key: "true"}}),
                None,
                "CREATE",
            ),
            (
                f"kept True on update (group={group})",
                changed(odd, **{"metadata.labels": {"a": "b"}}),
                odd,
                "UPDATE",
            ),
            (f"True added on update (group={group})", odd, plain, "UPDATE"),
            (
                f"True changed to yes (group={group})",
                changed(odd, **{"metadata.annotations": {key: "yes"}}),
                odd,
                "UPDATE",
            ),
            (f"parameters emptied (group={group})", changed(plain, parameters={}), plain, "UPDATE"),
        ]
    return found


ROWS = rows()


def kind_matches(rendered: Rendered, obj: Obj) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    plural = {
        "VolumeSnapshotClass": "volumesnapshotclasses",
        "VolumeSnapshotContent": "volumesnapshotcontents",
        "VolumeGroupSnapshotClass": "volumegroupsnapshotclasses",
    }.get(obj["kind"])
    return (group, plural) == (rendered.api_group, rendered.resource)


@pytest.mark.parametrize(("name", "obj", "old", "operation"), ROWS, ids=[r[0] for r in ROWS])
def test_the_policies_agree_with_the_webhook(
    state: StateIndex, name: str, obj: Obj, old: Obj | None, operation: str
) -> None:
    body = review(obj, operation=operation, old=old)
    verdict = judge(state, body)
    if verdict.code == 400:
        pytest.skip("the webhook cannot read this object; the schema refuses it first")
    checked = 0
    for rendered in CATALOG:
        if not kind_matches(rendered, obj) or operation not in rendered.operations:
            continue
        said = [
            str(f)
            for f in verdict.findings
            if f.rule_id == rendered.rule_id and not f.message.startswith("already so")
        ]
        message = policy_message(rendered, obj, old, operation)
        assert (message is not None) is bool(said), (rendered.rule_id, name)
        if message is not None:  # one wording, whichever layer answers
            assert message in said, (message, said)
        checked += 1
    if obj["kind"] in ("VolumeSnapshotClass", "VolumeSnapshotContent") and operation == "UPDATE":
        assert checked >= 3


def test_rows_cover_both_outcomes_of_every_policy(state: StateIndex) -> None:
    outcomes: dict[str, set[bool]] = {r.rule_id: set() for r in CATALOG}
    for _, obj, old, operation in ROWS:
        for rendered in CATALOG:
            if kind_matches(rendered, obj) and operation in rendered.operations:
                outcomes[rendered.rule_id].add(policy_fails(rendered, obj, old, operation))
    assert all(seen == {True, False} for seen in outcomes.values()), outcomes


def test_the_deny_rules_policies_are_in_the_install() -> None:
    install = (ROOT / "deploy" / "install.yaml").read_text()
    for rendered in CATALOG:
        deny = Policy().mode(BY_ID[rendered.rule_id]) is Mode.DENY
        assert (f"name: snapshot-webhook.{rendered.rule_id}\n" in install) is deny
