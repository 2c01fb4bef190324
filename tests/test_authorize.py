"""Who may set allow-volume-mode-change: the rule, the allow-list, and
SubjectAccessReviews through the real client against the fake apiserver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from builders import changed, judge, review, snapshot_content
from fakeapi import FakeAPIServer, fake_apiserver

from webhook.cluster.api import KubeAPI, api_client
from webhook.decide.admission import read_review
from webhook.decide.authorize import AccessReviews, AllowList, Decision, Requester, settle
from webhook.decide.service import Webhook
from webhook.model.objects import ALLOW_VOLUME_MODE_CHANGE_ANNOTATION as ANNOTATION
from webhook.rules import Policy
from webhook.state.index import StateIndex

RULE = "content.volume-mode-change.authorized"
PLAIN = snapshot_content("snapcontent-restore", ref=("shop", "restore"))
MARKED = changed(PLAIN, **{"metadata.annotations": {ANNOTATION: "true"}})
ALICE = {"username": "alice", "uid": "u-1", "groups": ["dev"], "extra": {"scope": ["x"]}}
BACKUP = {"username": "system:serviceaccount:velero:velero", "groups": ["system:serviceaccounts"]}
ADMIN = {"username": "admin", "groups": ["system:masters"]}


def as_user(body: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    body["request"]["userInfo"] = user
    return body


def verdict_for(state: StateIndex, body: dict[str, Any], authorizer: Any = None) -> Any:
    webhook = Webhook(state, Policy(), embedded=False, authorizer=authorizer or AllowList())
    return webhook.judge(read_review(body))


@pytest.mark.parametrize(
    ("body", "flagged"),
    [
        (review(MARKED), True),  # a CREATE that sets it
        (review(MARKED, operation="UPDATE", old=PLAIN), True),  # an UPDATE that adds it
        (
            review(
                MARKED,
                operation="UPDATE",
                old=changed(PLAIN, **{"metadata.annotations": {ANNOTATION: "false"}}),
            ),
            True,  # changes its value to "true"
        ),
        (review(PLAIN, operation="UPDATE", old=MARKED), False),  # removing it: always
        (
            review(
                changed(MARKED, **{"spec.deletionPolicy": "Retain"}), operation="UPDATE", old=MARKED
            ),
            False,
        ),
        (review(PLAIN), False),
    ],
)
def test_the_rule_flags_only_setting_the_annotation(
    state: StateIndex, body: dict[str, Any], flagged: bool
) -> None:
    verdict = judge(state, body)
    assert (RULE in [f.rule_id for f in verdict.findings if f.denies]) is flagged


def deleting(obj: dict[str, Any]) -> dict[str, Any]:
    """The object with a deletionTimestamp, still held by its bound-protection finalizer."""
    held = changed(obj, **{"metadata.deletionTimestamp": "2026-11-21T12:00:00Z"})
    held["metadata"]["finalizers"] = [
        "snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection"
    ]
    return held


def test_who_may_set_the_annotation_does_not_depend_on_the_lifecycle(state: StateIndex) -> None:
    """A content being deleted, still bound: adding the annotation is judged as on
    a live content, and an unauthorized user is denied."""
    body = as_user(review(deleting(MARKED), operation="UPDATE", old=deleting(PLAIN)), ALICE)
    denied = verdict_for(state, body)
    assert not denied.allowed and denied.message.startswith(f"{RULE}: ")
    assert verdict_for(
        state, as_user(review(deleting(MARKED), operation="UPDATE", old=deleting(PLAIN)), ADMIN)
    ).allowed
    # removing a finalizer of a deleting content that already has it: never asked
    unheld = deleting(MARKED)
    unheld["metadata"]["finalizers"] = []
    assert verdict_for(
        state, as_user(review(unheld, operation="UPDATE", old=deleting(MARKED)), ALICE)
    ).allowed


def test_the_audit_does_not_report_who_set_the_annotation(state: StateIndex) -> None:
    from builders import add

    from webhook.decide.audit import audit

    add(state, MARKED)
    assert RULE not in {f.rule_id for f in audit(state, Policy())}


def test_the_allow_list_decides_offline_and_the_denial_names_everything(
    state: StateIndex,
) -> None:
    denied = verdict_for(state, as_user(review(MARKED), ALICE))
    assert not denied.allowed
    assert denied.message == (
        f'{RULE}: metadata.annotations[{ANNOTATION}] is "true", but user "alice" may not: that '
        'takes the verb "change-volume-mode" on volumesnapshotcontents.snapshot.storage.k8s.io, '
        "which the ClusterRole snapshot-webhook:volume-mode-change grants"
    )
    assert verdict_for(state, as_user(review(MARKED), ADMIN)).allowed  # system:masters
    trusted = AllowList(users=["system:serviceaccount:velero:velero"])
    assert verdict_for(state, as_user(review(MARKED), BACKUP), trusted).allowed
    warn = Webhook(state, Policy.parse([f"{RULE}=warn"]), embedded=False)
    answer = warn.judge(read_review(as_user(review(MARKED), ALICE)))
    assert answer.allowed and answer.warnings[0].startswith(f"{RULE}: ")


@pytest.fixture
def fake() -> Iterator[FakeAPIServer]:
    with fake_apiserver() as api:
        yield api


def reviews(fake: FakeAPIServer, tmp_path: Path, **kwargs: Any) -> AccessReviews:
    return AccessReviews(KubeAPI(api_client(str(fake.kubeconfig(tmp_path / "k")))), **kwargs)


def test_access_reviews_ask_the_cluster_for_the_user_and_cache_the_answer(
    fake: FakeAPIServer, tmp_path: Path
) -> None:
    fake.authorize = lambda spec: spec["user"] == BACKUP["username"]
    now = [100.0]
    counted: list[str] = []
    ask = reviews(fake, tmp_path, clock=lambda: now[0], cache_seconds=10, count=counted.append)
    alice = Requester("alice", "u-1", ("dev",), (("scope", ("x",)),))
    assert ask(alice) == Decision(False)
    (spec,) = fake.reviews
    assert spec == {
        "user": "alice",
        "uid": "u-1",
        "groups": ["dev"],
        "extra": {"scope": ["x"]},
        "resourceAttributes": {
            "group": "snapshot.storage.k8s.io",
            "resource": "volumesnapshotcontents",
            "verb": "change-volume-mode",
        },
    }
    backup = Requester(BACKUP["username"], groups=("system:serviceaccounts",))
    assert ask(backup) == Decision(True)
    assert ask(backup) == Decision(True) and len(fake.reviews) == 2  # cached
    now[0] += 11
    assert ask(backup) == Decision(True) and len(fake.reviews) == 3  # asked again
    assert counted == ["denied", "allowed", "allowed", "allowed"]  # every decision counted


@pytest.mark.parametrize("fault", ["error", "slow"])
def test_an_authorizer_that_cannot_answer_denies_with_a_reason_never_a_500(
    state: StateIndex, fake: FakeAPIServer, tmp_path: Path, fault: str
) -> None:
    def authorize(spec: dict[str, Any]) -> bool:
        if fault == "slow":
            time.sleep(3)
            return True
        raise RuntimeError("authorizer webhook unavailable")

    fake.authorize = authorize
    counted: list[str] = []
    ask = reviews(fake, tmp_path, timeout=1.0, count=counted.append)
    verdict = verdict_for(state, as_user(review(MARKED), ALICE), ask)
    assert counted == ["failed"]  # what the authorization-failure alert watches
    assert (verdict.allowed, verdict.code) == (False, 403)
    assert 'whether user "alice" may could not be asked' in verdict.message
    assert verdict.message.endswith("retry")


def test_settle_leaves_other_findings_alone(state: StateIndex) -> None:
    both = changed(MARKED, **{"spec.source.volumeHandle": "vol-1"})  # two sources too
    verdict = judge(state, review(both))
    settled = settle(verdict, Requester("admin", groups=("system:masters",)), AllowList())
    assert [f.rule_id for f in settled.findings] == ["content.source.one-of"]
    assert not settled.allowed
