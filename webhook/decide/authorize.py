"""Who may set the allow-volume-mode-change annotation.

The rule `content.volume-mode-change.authorized` only flags a request that sets
the annotation; whether its user may is decided here:
- in cluster mode by the cluster's own RBAC: a SubjectAccessReview for the
  request's user, groups, uid and extra, for the verb `change-volume-mode` on
  `volumesnapshotcontents` in `snapshot.storage.k8s.io` (the ClusterRole
  `snapshot-webhook:volume-mode-change` in deploy/ grants it). Decisions are
  cached for a few seconds; an authorizer that cannot be asked is an error,
  which the rule reports (deny, or warn in warn mode), never an allow;
- offline and in embedded mode by an allow-list of users and groups (default:
  the group `system:masters`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.cluster.api import APIStatusError, KubeAPI, status_message
from webhook.decide.admission import UserInfo, Verdict, allowed, denied
from webhook.rules.base import Finding
from webhook.rules.content import (
    VOLUME_MODE_CHANGE_PATH,
    VOLUME_MODE_CHANGE_ROLE,
    VOLUME_MODE_CHANGE_RULE,
    VOLUME_MODE_CHANGE_VERB,
)

ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
DEFAULT_GROUPS = ("system:masters",)


@dataclass(frozen=True)
class Requester:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(cls, user: UserInfo | None) -> Requester:
        if user is None:
            return cls("")
        extra = tuple(sorted((k, tuple(v)) for k, v in (user.extra or {}).items()))
        return cls(user.username or "", user.uid or "", tuple(user.groups or ()), extra)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    error: str = ""  # the authorizer could not be asked


Authorizer = Callable[[Requester], Decision]


@dataclass(frozen=True)
class AllowList:
    users: Sequence[str] = ()
    groups: Sequence[str] = DEFAULT_GROUPS

    def __call__(self, requester: Requester) -> Decision:
        return Decision(
            requester.username in self.users or any(g in self.groups for g in requester.groups)
        )


@dataclass
class AccessReviews:
    """SubjectAccessReviews through the apiserver, with a short cache."""

    api: KubeAPI
    cache_seconds: float = 10.0
    timeout: float = 2.0
    max_entries: int = 1024
    clock: Callable[[], float] = time.monotonic
    count: Callable[[str], None] = lambda result: None  # allowed | denied | failed
    _cache: OrderedDict[Requester, tuple[float, bool]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, requester: Requester) -> Decision:
        decision = self._decide(requester)
        self.count("failed" if decision.error else "allowed" if decision.allowed else "denied")
        return decision

    def _decide(self, requester: Requester) -> Decision:
        now = self.clock()
        with self._lock:
            cached = self._cache.get(requester)
            if cached is not None and cached[0] > now:
                return Decision(cached[1])
        try:
            allowed_now = self._ask(requester)
        except (APIStatusError, OSError, ValueError) as err:
            return Decision(False, str(err))
        except Exception as err:  # urllib3 and client errors: the apiserver is unreachable
            return Decision(False, f"{type(err).__name__}: {err}")
        with self._lock:
            self._cache[requester] = (now + self.cache_seconds, allowed_now)
            self._cache.move_to_end(requester)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return Decision(allowed_now)

    def _ask(self, requester: Requester) -> bool:
        spec: dict[str, Any] = {
            "user": requester.username,
            "groups": list(requester.groups),
            "resourceAttributes": {
                "group": "snapshot.storage.k8s.io",
                "resource": "volumesnapshotcontents",
                "verb": VOLUME_MODE_CHANGE_VERB,
            },
        }
        if requester.uid:
            spec["uid"] = requester.uid
        if requester.extra:
            spec["extra"] = {k: list(v) for k, v in requester.extra}
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }
        status, answer = self.api.request_json(
            "POST", ACCESS_REVIEWS, body, timeout=(self.timeout, self.timeout)
        )
        if status not in (200, 201) or not isinstance(answer, dict):
            raise APIStatusError(status, "create", ACCESS_REVIEWS, status_message(answer))
        return bool((answer.get("status") or {}).get("allowed"))


def needs_authorization(verdict: Verdict) -> bool:
    return any(f.rule_id == VOLUME_MODE_CHANGE_RULE for f in verdict.findings)


def settle(verdict: Verdict, requester: Requester, authorizer: Authorizer) -> Verdict:
    """The verdict once the requester is asked about: the rule's finding is dropped
    for an authorized user, and names the user, the verb and the role otherwise."""
    findings: list[Finding] = []
    decision: Decision | None = None
    for finding in verdict.findings:
        if finding.rule_id != VOLUME_MODE_CHANGE_RULE:
            findings.append(finding)
            continue
        decision = decision or authorizer(requester)
        if decision.allowed:
            continue
        who = f'user "{requester.username}"' if requester.username else "an unknown user"
        if decision.error:
            why = f"whether {who} may could not be asked ({decision.error}): retry"
        else:
            why = (
                f'{who} may not: that takes the verb "{VOLUME_MODE_CHANGE_VERB}" on '
                "volumesnapshotcontents.snapshot.storage.k8s.io, which the ClusterRole "
                f"{VOLUME_MODE_CHANGE_ROLE} grants"
            )
        message = f'{VOLUME_MODE_CHANGE_PATH} is "true", but {why}'
        findings.append(Finding(finding.rule_id, finding.path, message, finding.denies))
    if any(f.denies for f in findings):
        return denied(findings)
    return allowed(findings)
