"""The webhook as a service: judge a readable review against the state, and in
embedded mode apply what was admitted, as a cluster of one would.

This is the one place an unexpected failure inside the rules becomes an
answer: a well-formed review, `allowed: false` with code 500 and the uid, so
that the apiserver reports it and nothing crashes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from webhook.admission import Review, Verdict, errored
from webhook.decide import decide
from webhook.rules import Policy
from webhook.state.fixtures import apply_admitted
from webhook.state.index import StateIndex

log = logging.getLogger("snapshot_webhook.admission")


@dataclass
class Webhook:
    state: StateIndex
    policy: Policy
    embedded: bool  # apply admitted requests to the state (no cluster to watch)

    def judge(self, review: Review) -> Verdict:
        if review.request is None:
            return errored(400, review.error or "request is unreadable")
        try:
            verdict = decide(review.request, self.state, self.policy)
        except Exception:  # a bug, not the caller's fault: answer, log, keep serving
            log.exception("internal error judging review %s", review.uid)
            return errored(500, "internal error in snapshot-webhook; see its log")
        if verdict.allowed and self.embedded:
            apply_admitted(self.state, review.request)
        return verdict
