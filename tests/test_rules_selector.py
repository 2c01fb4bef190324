"""A group snapshot's selector, judged against the claims in its namespace:
label selectors exactly as Kubernetes evaluates them, then the three rules."""

from __future__ import annotations

from typing import Any

import pytest
from builders import (
    add,
    assert_outcome,
    changed,
    claim,
    group_snapshot,
    judge,
    review,
    table,
)

from webhook.model import kinds
from webhook.model.selectors import InvalidSelectorError, matches
from webhook.state.index import StateIndex

LABELS = {"app": "db", "tier": "gold"}
SELECTORS = [
    ("empty selects everything", {}, {}, True),
    ("empty selects a claim with labels", {}, LABELS, True),
    ("matchLabels subset", {"matchLabels": {"app": "db"}}, LABELS, True),
    ("matchLabels other value", {"matchLabels": {"app": "web"}}, LABELS, False),
    ("matchLabels missing key", {"matchLabels": {"zone": "a"}}, LABELS, False),
    ("empty matchLabels", {"matchLabels": {}}, {}, True),
    (
        "In",
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "x"]}]},
        LABELS,
        True,
    ),
    (
        "In, key absent",
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
        LABELS,
        False,
    ),
    (
        "NotIn",
        {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]},
        LABELS,
        False,
    ),
    (
        "NotIn, key absent",
        {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]},
        LABELS,
        True,
    ),
    ("Exists", {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, LABELS, True),
    (
        "Exists, absent",
        {"matchExpressions": [{"key": "zone", "operator": "Exists"}]},
        LABELS,
        False,
    ),
    (
        "DoesNotExist",
        {"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]},
        LABELS,
        True,
    ),
    (
        "DoesNotExist, present",
        {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]},
        LABELS,
        False,
    ),
    (
        "two requirements on one key: both hold",
        {
            "matchExpressions": [
                {"key": "app", "operator": "In", "values": ["db", "web"]},
                {"key": "app", "operator": "NotIn", "values": ["web"]},
            ]
        },
        LABELS,
        True,
    ),
    (
        "two requirements on one key: one fails",
        {
            "matchExpressions": [
                {"key": "app", "operator": "In", "values": ["db"]},
                {"key": "app", "operator": "NotIn", "values": ["db"]},
            ]
        },
        LABELS,
        False,
    ),
    (
        "matchLabels and matchExpressions together",
        {
            "matchLabels": {"app": "db"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["silver"]}],
        },
        LABELS,
        False,
    ),
    ("an empty-string value is a value", {"matchLabels": {"app": ""}}, {"app": ""}, True),
]


@pytest.mark.parametrize(*table(SELECTORS, ("selector", "labels", "selected")))
def test_label_selectors_as_kubernetes_evaluates_them(
    selector: dict[str, Any], labels: dict[str, str], selected: bool
) -> None:
    assert matches(selector, labels) is selected


@pytest.mark.parametrize(
    ("requirement", "needle"),
    [
        ({"key": "app", "operator": "In", "values": []}, "values must be non-empty for In"),
        ({"key": "app", "operator": "NotIn"}, "values must be non-empty for NotIn"),
        ({"key": "app", "operator": "Exists", "values": ["x"]}, "values must be empty for Exists"),
        ({"key": "app", "operator": "Equals", "values": ["x"]}, "operator must be one of"),
        ({"key": "", "operator": "Exists"}, "key must be a non-empty string"),
        ({"key": "app", "operator": "In", "values": [1]}, "values must be an array of strings"),
    ],
)
def test_a_selector_kubernetes_refuses_is_invalid_not_guessed(
    requirement: dict[str, Any], needle: str
) -> None:
    with pytest.raises(InvalidSelectorError, match=needle):
        matches({"matchExpressions": [requirement]}, LABELS)


# --- the rules, against the fixture cluster -------------------------------------
# In namespace "ledger" (no claims there in the fixture): claims of two drivers.


def labelled(name: str, labels: dict[str, str], volume: str | None) -> dict[str, Any]:
    obj = changed(claim(name, "ledger"), **{"metadata.labels": labels})
    obj["spec"]["volumeName"] = volume
    return obj


def volume(name: str, driver: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "uid": f"uid-{name}"},
        "spec": {"csi": {"driver": driver, "volumeHandle": f"h-{name}"}},
    }


@pytest.fixture
def ledger(state: StateIndex) -> StateIndex:
    add(
        state,
        volume("pv-ebs-1", "ebs.csi.aws.com"),
        volume("pv-ebs-2", "ebs.csi.aws.com"),
        volume("pv-gce-1", "pd.csi.storage.gke.io"),
        labelled("wal", {"app": "ledger", "part": "wal"}, "pv-ebs-1"),
        labelled("data", {"app": "ledger", "part": "data"}, "pv-ebs-2"),
        labelled("archive", {"app": "ledger-archive"}, "pv-gce-1"),
        labelled("scratch", {"app": "ledger", "part": "scratch"}, None),
    )
    return state


def group(selector: dict[str, Any], cls: str | None = "ebs-groupsnapclass") -> dict[str, Any]:
    return group_snapshot("ledger-group", "ledger", selector=selector, cls=cls)


IN_PARTS = {
    "matchLabels": {"app": "ledger"},
    "matchExpressions": [{"key": "part", "operator": "In", "values": ["wal", "data"]}],
}
RULES = [
    ("bound claims of the class's driver", review(group(IN_PARTS)), set(), set()),
    (
        "no claim matches",
        review(group({"matchLabels": {"app": "nothing"}})),
        set(),
        {"group-snapshot.selector.matches"},
    ),
    (
        "a matching claim is unbound",
        review(group({"matchLabels": {"app": "ledger"}})),
        set(),
        {"group-snapshot.selector.bound"},
    ),
    (
        "bound claims of two drivers",
        review(
            group(
                {
                    "matchExpressions": [
                        {"key": "app", "operator": "In", "values": ["ledger", "ledger-archive"]},
                        {"key": "part", "operator": "NotIn", "values": ["scratch"]},
                    ]
                }
            )
        ),
        {"group-snapshot.selector.driver-match"},
        set(),
    ),
    (
        "bound claims of another driver than the class's",
        review(group(IN_PARTS, cls="gce-pd-groupsnapclass")),
        {"group-snapshot.selector.driver-match"},
        set(),
    ),
    (
        "no class named: only the claims are compared",
        review(group(IN_PARTS, cls=None)),
        set(),
        set(),
    ),
    (
        "a selector Kubernetes refuses is left to the CRD",
        review(group({"matchExpressions": [{"key": "app", "operator": "Equals"}]})),
        set(),
        set(),
    ),
]


@pytest.mark.parametrize(*table(RULES))
def test_selector_rules(ledger: StateIndex, body: dict, denied: set, warned: set) -> None:
    verdict = judge(ledger, body)
    selector_findings = {f.rule_id for f in verdict.findings if ".selector." in f.rule_id}
    assert selector_findings == denied | warned, verdict.message or verdict.warnings
    assert {f.rule_id for f in verdict.findings if f.denies and ".selector." in f.rule_id} == denied


def test_the_messages_name_the_claims_and_the_drivers(ledger: StateIndex) -> None:
    two = RULES[3][1]
    message = judge(ledger, two).message
    assert '"ebs.csi.aws.com" ("data", "wal")' in message
    assert '"pd.csi.storage.gke.io" ("archive")' in message
    unbound = judge(ledger, RULES[2][1]).warnings
    assert any('PersistentVolumeClaims "scratch" that are not bound' in w for w in unbound)


def test_claims_of_other_namespaces_are_not_taken(ledger: StateIndex) -> None:
    elsewhere = group_snapshot("g", "shop", selector={"matchLabels": {"app": "ledger"}})
    verdict = judge(ledger, review(elsewhere))
    assert "group-snapshot.selector.matches" in {f.rule_id for f in verdict.findings}


def test_the_namespace_index_follows_removals(state: StateIndex) -> None:
    info = kinds.by_api_version("v1", "PersistentVolumeClaim")
    assert info is not None
    add(state, labelled("wal", {"app": "ledger"}, None))
    assert [c.id.name for c in state.claims_in("ledger")] == ["wal"]
    state.remove(info, "ledger", "wal")
    assert state.claims_in("ledger") == []
    assert_outcome(judge(state, review(group({"matchLabels": {"app": "ledger"}}))), set())
