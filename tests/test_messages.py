"""Messages say every value: an empty map is a value, names are never shortened,
two different values never read the same, and a problem is the same problem
when its values are, however they print."""

from __future__ import annotations

import pytest
from builders import (
    changed,
    claim,
    denied_ids,
    group_content,
    group_snapshot,
    judge,
    review,
    snapshot_class,
)

from webhook.model.values import fit, show_pair
from webhook.state.index import StateIndex

NAMESPACE_A, NAMESPACE_B = "payments-production", "analytics-staging"
SNAP = "postgres-data-snap-1"  # in the fixture cluster's "shop" namespace


@pytest.mark.parametrize("group", [False, True])
@pytest.mark.parametrize(
    ("was", "now", "said"), [({}, None, "was {}, now absent"), (None, {}, "was absent, now {}")]
)
def test_an_empty_map_is_a_value(
    state: StateIndex, group: bool, was: dict | None, now: dict | None, said: str
) -> None:
    old = snapshot_class("c", group=group)
    old["parameters"] = was
    new = changed(old, parameters=now)
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    prefix = "group-class" if group else "class"
    assert verdict.message == f"{prefix}.parameters.immutable: parameters is immutable: {said}"


def test_an_empty_selector_added_to_a_group_snapshot_says_so(state: StateIndex) -> None:
    old = group_snapshot("g", content="gc-1")
    new = changed(old, **{"spec.source.selector": {}})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    assert not verdict.allowed
    assert "spec.source.selector is immutable: was absent, now {}" in verdict.message


def test_warnings_keep_namespaces_whole(state: StateIndex) -> None:
    body = review(
        claim(
            "restored",
            NAMESPACE_B,
            snapshot=SNAP,
            via="dataSourceRef",
            snapshot_namespace=NAMESPACE_A,
        )
    )
    warnings = judge(state, body).warnings
    (warning,) = [w for w in warnings if w.startswith("restore.cross-namespace")]
    assert len(warning) <= 255
    assert f'"{NAMESPACE_A}"' in warning and f'"{NAMESPACE_B}"' in warning
    for name in (NAMESPACE_A, NAMESPACE_B):
        assert f"{name[:4]}...{name[-5:]}" not in warning


@pytest.mark.parametrize(
    "value",
    [
        "a3100000-a1b2-4c3d-9e8f-2e4243dae8f0",  # a uid
        "alice@example.com",  # a user
        "x" * 253,  # the longest name
        "snapshot.storage.kubernetes.io/is-default-class",
    ],
)
def test_fit_never_shortens_an_identifier(value: str) -> None:
    text = f'rule.id: the field is "{value}", and a long explanation follows ' + "word " * 40
    fitted = fit(text, 255 if len(value) < 180 else 400)
    assert f'"{value}"' in fitted
    assert len(fitted) <= (255 if len(value) < 180 else 400)
    assert fitted.endswith(" ...")


def test_fit_never_makes_two_different_values_read_the_same() -> None:
    was = "{" + "k" * 100 + "-one}"
    now = "{" + "k" * 100 + "-two}"
    text = f'rule.id: p changed from "{was}" to "{now}", and more ' + "words " * 20
    fitted = fit(text, 200)
    quoted = [q for q in fitted.split('"')[1::2]]
    assert len(quoted) == 2 and quoted[0] != quoted[1]


def test_long_values_that_differ_at_the_end_read_differently(state: StateIndex) -> None:
    head = "arn:aws:kms:eu-west-1:123456789012:key/" + "0" * 60
    old = snapshot_class("c", parameters={"kmsKeyId": head + "-a"})
    new = changed(old, parameters={"kmsKeyId": head + "-b"})
    message = judge(state, review(new, operation="UPDATE", old=old)).message
    shown = message.split("changed from ", 1)[1]
    before, after = shown.split(" to ", 1)
    assert before != after
    a, b = show_pair(head + "-a", head + "-b")
    assert a != b and a.endswith('-a"') and b.endswith('-b"')


def test_a_problem_is_identified_by_its_values_not_its_words(state: StateIndex) -> None:
    """Member handles going from [] to absent: still no valid source, the same
    problem the old object had; it warns (ratcheting) rather than deny."""
    old = group_content(
        "gc",
        group_handles={"volumeGroupSnapshotHandle": "g-1", "volumeSnapshotHandles": []},
        ref=("billing", "g"),
    )
    new = changed(old, **{"spec.source.groupSnapshotHandles.volumeSnapshotHandles": None})
    verdict = judge(state, review(new, operation="UPDATE", old=old))
    # the source is immutable, so the update is still denied, but not for one-of
    assert denied_ids(verdict) == {"group-content.source.immutable"}
    assert any(
        w.startswith("group-content.source.one-of: already so before this update")
        for w in verdict.warnings
    )
    # a valid source made invalid is a new problem
    fine = group_content(
        "gc",
        group_handles={"volumeGroupSnapshotHandle": "g-1", "volumeSnapshotHandles": ["s"]},
        ref=("billing", "g"),
    )
    broken = changed(fine, **{"spec.source.groupSnapshotHandles.volumeSnapshotHandles": []})
    assert "group-content.source.one-of" in denied_ids(
        judge(state, review(broken, operation="UPDATE", old=fine))
    )
