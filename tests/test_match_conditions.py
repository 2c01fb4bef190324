"""The webhook configuration's matchConditions never hide a verdict.

Evaluated for real with cel-python, as the apiserver evaluates them:
- whenever they keep a request from the webhook, the webhook's own answer to
  it is `allowed` with no warning (over the rule tests' requests, the shipped
  example reviews, and generated UPDATEs of every snapshot kind);
- every request of the rule tests that the webhook denies is sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import celpy
import pytest
import test_rules_class
import test_rules_content
import test_rules_group
import test_rules_restore
import test_rules_snapshot
from builders import (
    changed,
    claim,
    group_content,
    group_snapshot,
    judge,
    review,
    snapshot_class,
    snapshot_content,
    volume_snapshot,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving import ROOT

from webhook.model import kinds
from webhook.model.objects import ALLOW_VOLUME_MODE_CHANGE_ANNOTATION
from webhook.render.configuration import webhooks
from webhook.state.fixtures import ObjectStore
from webhook.state.index import StateIndex

Obj = dict[str, Any]
ENTRIES = webhooks("snapshot-webhook", "snapshot-webhook")
ENVIRONMENT = celpy.Environment()
PROGRAMS = {
    entry["name"]: [
        ENVIRONMENT.program(ENVIRONMENT.compile(c["expression"]))
        for c in entry.get("matchConditions", [])
    ]
    for entry in ENTRIES
}


def entry_for(request: Obj) -> Obj | None:
    """The entry whose rules match the request (matchPolicy Equivalent: any version)."""
    resource = request["resource"]
    for entry in ENTRIES:
        for rule in entry["rules"]:
            if (
                resource["group"] in rule["apiGroups"]
                and resource["resource"] in rule["resources"]
                and request["operation"] in rule["operations"]
            ):
                return entry
    return None


def sent(body: Obj) -> bool:
    """Whether the apiserver calls the webhook with this review."""
    request = body["request"]
    entry = entry_for(request)
    if entry is None or request.get("subResource"):
        return False  # not registered: the apiserver never sends it
    activation = {
        "object": celpy.json_to_cel(request.get("object")),
        "oldObject": celpy.json_to_cel(request.get("oldObject")),
        "request": celpy.json_to_cel(
            {k: v for k, v in request.items() if k not in ("object", "oldObject")}
        ),
    }
    results = [program.evaluate(activation) for program in PROGRAMS[entry["name"]]]
    for result in results:
        # an evaluation error would fail the request under failurePolicy Fail
        assert isinstance(result, celpy.celtypes.BoolType), (entry["name"], result)
    return all(bool(r) for r in results)


def cluster_state() -> StateIndex:
    store = ObjectStore()
    store.load([str(ROOT / "tests" / "fixtures" / "cluster.yaml")])
    return store.index


STATE = cluster_state()


def assert_never_hidden(body: Obj) -> None:
    if sent(body):
        return
    verdict = judge(STATE, body)
    assert verdict.allowed and not verdict.findings, (
        "the matchConditions keep from the webhook a request it would have judged: "
        f"{verdict.message or verdict.warnings}"
    )


def rule_test_requests() -> list[tuple[str, Obj, set[str]]]:
    """(case, review, denied rule ids) of every table in the rule tests."""
    found: list[tuple[str, Obj, set[str]]] = []
    for module in (
        test_rules_class,
        test_rules_content,
        test_rules_group,
        test_rules_restore,
        test_rules_snapshot,
    ):
        for name, body, denied, *_ in module.CASES:
            found.append((f"{module.__name__}:{name}", body, denied))
        for row in getattr(module, "UPDATES", []):
            if len(row) == 4:
                name, old, updates, denied = row
            else:
                (name, updates, denied), old = row, module.FRESH
            body = review(changed(old, **updates), operation="UPDATE", old=old)
            found.append((f"{module.__name__}:{name}", body, denied))
    return found


RULE_REQUESTS = rule_test_requests()


def test_the_tables_are_read() -> None:
    assert len(RULE_REQUESTS) > 80
    assert any(denied for _, _, denied in RULE_REQUESTS)
    assert any(b["request"]["operation"] == "UPDATE" for _, b, _ in RULE_REQUESTS)


@pytest.mark.parametrize(
    ("body", "denied"), [pytest.param(b, d, id=n) for n, b, d in RULE_REQUESTS]
)
def test_rule_test_requests_are_never_hidden_and_every_denial_is_sent(
    body: Obj, denied: set[str]
) -> None:
    assert_never_hidden(body)
    if denied:
        assert sent(body)


EXAMPLES = sorted((ROOT / "examples" / "reviews").glob("*.json"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_reviews_are_never_hidden(path: Path) -> None:
    assert_never_hidden(json.loads(path.read_text()))


def test_cleanup_is_not_sent_but_a_judged_annotation_is_even_while_deleting() -> None:
    live = snapshot_content("snapcontent-x", ref=("shop", "snap"))
    deleting = json.loads(json.dumps(live))
    deleting["metadata"]["deletionTimestamp"] = "2026-11-21T12:00:00Z"
    deleting["metadata"]["finalizers"] = ["snapshot.storage.kubernetes.io/bound-protection"]
    unfinalized = changed(deleting, **{"metadata.finalizers": []})
    assert not sent(review(unfinalized, operation="UPDATE", old=deleting))
    labelled = changed(live, **{"metadata.labels": {"tier": "gold"}})
    assert not sent(review(labelled, operation="UPDATE", old=live))
    annotated = changed(
        deleting, **{"metadata.annotations": {ALLOW_VOLUME_MODE_CHANGE_ANNOTATION: "true"}}
    )
    assert sent(review(annotated, operation="UPDATE", old=deleting))
    default = snapshot_class("c", default="false")
    assert sent(review(snapshot_class("c", default="true"), operation="UPDATE", old=default))
    assert sent(review(default))  # every CREATE


# --- generated UPDATEs -----------------------------------------------------------

BASES: list[Obj] = [
    snapshot_class("ebs-snapclass-retain", deletion_policy="Retain"),
    snapshot_class("ebs-snapclass", default="true"),
    snapshot_class("group-class", default="true", group=True),
    snapshot_content("snapcontent-x", ref=("shop", "snap")),
    volume_snapshot("snap", content="snapcontent-x"),
    volume_snapshot("from-claim", pvc="postgres-data"),
    group_snapshot("postgres-group-snap-1"),
    group_content("groupcontent-1"),
]
ANNOTATION_KEYS = [
    kinds.VOLUME.default_annotation,
    kinds.GROUP.default_annotation,
    ALLOW_VOLUME_MODE_CHANGE_ANNOTATION,
    "example.com/other",
]
VALUES = st.sampled_from(["true", "false", "", "True", "yes"]) | st.none()
TOP_LEVEL_CHANGES = [
    ("driver", "other.csi.example.com"),
    ("driver", None),
    ("parameters", {}),
    ("parameters", {"type": "gp3"}),
    ("parameters", None),
    ("deletionPolicy", "Delete"),
    ("deletionPolicy", "Retain"),
    ("deletionPolicy", None),
    ("spec", None),
]
SPEC_CHANGES = [
    ("driver", "other.csi.example.com"),
    ("volumeSnapshotClassName", "x"),
    ("volumeSnapshotClassName", ""),
    ("source", {"volumeHandle": "vol-1"}),
    ("source", {"snapshotHandle": "snap-2"}),
]


@st.composite
def updates(draw: st.DrawFn) -> tuple[Obj, Obj]:
    old = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    if draw(st.booleans()):
        old["metadata"]["annotations"][draw(st.sampled_from(ANNOTATION_KEYS))] = draw(
            st.sampled_from(["true", "false", "", "bogus"])
        )
    if draw(st.booleans()):
        old["metadata"]["deletionTimestamp"] = "2026-11-21T12:00:00Z"
        old["metadata"]["finalizers"] = ["snapshot.storage.kubernetes.io/bound-protection"]
    new = json.loads(json.dumps(old))
    meta = new["metadata"]
    for edit in draw(st.lists(st.integers(0, 6), max_size=4)):
        if edit == 0:
            meta.setdefault("labels", {})[draw(st.sampled_from(["a", "b"]))] = "x"
        elif edit == 1:
            meta["finalizers"] = draw(st.sampled_from([[], ["x/y"]]))
        elif edit == 2:
            key, value = draw(st.sampled_from(ANNOTATION_KEYS)), draw(VALUES)
            if value is None:
                meta.setdefault("annotations", {}).pop(key, None)
            else:
                meta.setdefault("annotations", {})[key] = value
        elif edit == 3:
            meta["managedFields"] = []
        elif edit == 4:
            # values of the schema's types: the apiserver validates an object
            # against its CRD schema before any validating webhook is called
            field, value = draw(st.sampled_from(TOP_LEVEL_CHANGES))
            if field not in new and field not in ("driver", "parameters", "deletionPolicy"):
                continue
            if value is None:
                new.pop(field, None)
            else:
                new[field] = value
        elif edit == 5 and isinstance(new.get("spec"), dict):
            field, value = draw(st.sampled_from(SPEC_CHANGES))
            new["spec"][field] = value
        elif edit == 6:
            meta.pop("annotations", None)
    return old, new


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(updates())
def test_generated_updates_are_never_hidden(pair: tuple[Obj, Obj]) -> None:
    old, new = pair
    assert_never_hidden(review(new, operation="UPDATE", old=old))


def test_a_claim_that_restores_nothing_is_not_sent() -> None:
    assert not sent(review(claim("plain")))


def test_every_delete_of_a_warned_kind_is_sent_and_no_other() -> None:
    content = snapshot_content("snapcontent-x", ref=("shop", "snap"))
    assert sent(review(None, operation="DELETE", old=content))
    assert sent(review(None, operation="DELETE", old=snapshot_class("c", group=True)))
    assert not sent(review(None, operation="DELETE", old=group_snapshot("g")))
    assert not sent(review(None, operation="DELETE", old=claim("data")))
