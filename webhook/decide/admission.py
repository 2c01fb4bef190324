"""AdmissionReview in and out: the envelope, the verdict, and the response.

Two families of error, by whose fault they are:
- `BadReviewError`: the webhook request itself is unusable (not JSON, not an
  AdmissionReview, no uid). There is nobody to answer by uid, so the HTTP edge
  answers 400.
- an unreadable object or an unhandled resource inside a readable review: the
  answer is an AdmissionReview with `allowed: false` and code 400, so the
  apiserver shows the user which field is wrong.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from webhook.model.objects import Model
from webhook.model.reading import UnreadableObjectError, decoder, read
from webhook.model.values import MAX_DEPTH, fit, json_too_deep, show, type_name
from webhook.rules.base import Finding

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
MAX_WARNING_CHARS = 255  # the apiserver drops longer warnings; keep each under 256
# A denial's message reaches kubectl and the audit log; past this it is cut, so
# that an object with enormous names cannot make an enormous answer.
MAX_MESSAGE_CHARS = 4096


class BadReviewError(ValueError):
    """The request body is not an AdmissionReview this webhook can answer."""


class NotJSONError(BadReviewError):
    """The request body is not JSON at all."""


class GroupVersionKind(Model, frozen=True, kw_only=True):
    group: str = ""
    version: str = ""
    kind: str


class GroupVersionResource(Model, frozen=True, kw_only=True):
    group: str = ""
    version: str = ""
    resource: str


class UserInfo(Model, frozen=True):
    """Who made the request, as the apiserver authenticated them."""

    username: str | None = None
    uid: str | None = None
    groups: list[str] | None = None
    extra: dict[str, list[str]] | None = None


class AdmissionRequest(Model, frozen=True, kw_only=True):
    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource | None = None
    sub_resource: str | None = None
    name: str | None = None
    namespace: str | None = None
    operation: str
    dry_run: bool | None = None
    user_info: UserInfo | None = None
    object: Any = None
    old_object: Any = None


class AdmissionReviewRequest(Model, frozen=True):
    """The envelope, as JSON Schema documents it; `read_review` does the checking."""

    api_version: str
    kind: str
    request: AdmissionRequest


class _WireRequest(AdmissionRequest, frozen=True, kw_only=True):
    """A request read from the wire: its objects kept as raw JSON, read later as
    their kind, so that nothing the rules do not read is ever built."""

    object: msgspec.Raw = msgspec.Raw(b"null")
    old_object: msgspec.Raw = msgspec.Raw(b"null")


class _WireReview(Model, frozen=True):
    api_version: str
    kind: str
    request: _WireRequest


@dataclass(frozen=True)
class Review:
    """A readable review: its apiVersion and uid, and the request or why it is unreadable."""

    api_version: str
    uid: str
    request: AdmissionRequest | None
    error: str | None = None


def read_review_json(body: bytes) -> Review:
    """Read an AdmissionReview from the wire.

    A well-formed review is decoded in one pass that skips what no rule reads.
    Anything else is read again as a whole, by `read_review`, so that every
    fault is named exactly as it always is (and invalid JSON raises orjson's
    JSONDecodeError, whose message names the place)."""
    if body.isascii() or _is_utf8(body):  # the decoder does not check skipped strings
        try:
            wire = decoder(_WireReview).decode(body)
        except (msgspec.DecodeError, RecursionError):  # the whole read names the fault
            pass
        else:
            request = wire.request
            if wire.kind == "AdmissionReview" and wire.api_version in API_VERSIONS and request.uid:
                return Review(wire.api_version, request.uid, request)
    return read_review(orjson.loads(body))


def review_from_bytes(body: bytes) -> Review:
    """The one reader of an AdmissionReview body, for the server and `review`
    alike, so that one body gets one answer: the nesting limit, then JSON,
    then the envelope. Raises BadReviewError naming what is wrong."""
    if json_too_deep(body):
        raise BadReviewError(f"body is nested deeper than {MAX_DEPTH} levels")
    try:
        return read_review_json(body)
    except orjson.JSONDecodeError as err:
        raise NotJSONError(f"body is not valid JSON: {err}") from None


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def read_review(body: object) -> Review:
    """Check the envelope of a decoded AdmissionReview body."""
    if not isinstance(body, dict):
        raise BadReviewError(f"body must be a JSON object (an AdmissionReview), got {_type(body)}")
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if kind != "AdmissionReview":
        raise BadReviewError(f'kind must be "AdmissionReview", got {_json(kind)}')
    if api_version not in API_VERSIONS:
        raise BadReviewError(
            f"apiVersion {_json(api_version)} is not supported; use one of "
            f"{', '.join(API_VERSIONS)}"
        )
    request = body.get("request")
    if not isinstance(request, dict):
        raise BadReviewError(f"request must be an object, got {_type(request)}")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReviewError(f"request.uid must be a non-empty string, got {_json(uid)}")
    try:
        parsed = read(AdmissionRequest, request, "request")
    except UnreadableObjectError as err:
        return Review(api_version, uid, None, str(err))
    return Review(api_version, uid, parsed)


def _json(value: object) -> str:
    return "null" if value is None else show(value)


def _type(value: object) -> str:
    name = type_name(value)
    return name if name == "null" else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


# --- verdicts ---------------------------------------------------------------


class Verdict(msgspec.Struct, frozen=True):
    allowed: bool
    code: int = 200
    reason: str = ""
    message: str = ""
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.rule_id for f in self.findings))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _warning(finding: Finding) -> str:
    return fit(str(finding), MAX_WARNING_CHARS)


def allowed(findings: Sequence[Finding] = ()) -> Verdict:
    return Verdict(True, warnings=tuple(_warning(f) for f in findings), findings=tuple(findings))


def denied(findings: Iterable[Finding]) -> Verdict:
    """Deny for every denying finding; every other finding is still a warning."""
    found = tuple(findings)
    denials = [f for f in found if f.denies]
    return Verdict(
        False,
        code=403,
        reason="Forbidden",
        message=_shorten("; ".join(str(f) for f in denials), MAX_MESSAGE_CHARS),
        warnings=tuple(_warning(f) for f in found if not f.denies),
        findings=found,
    )


def errored(code: int, message: str) -> Verdict:
    reason = {400: "BadRequest", 500: "InternalError"}.get(code, "BadRequest")
    return Verdict(False, code=code, reason=reason, message=_shorten(message, MAX_MESSAGE_CHARS))


def response(api_version: str, uid: str, verdict: Verdict) -> dict[str, Any]:
    """The AdmissionReview answer: the one place the request's uid is echoed."""
    body: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if not verdict.allowed:
        body["status"] = {
            "code": verdict.code,
            "reason": verdict.reason,
            "message": verdict.message,
        }
    if verdict.warnings:
        body["warnings"] = list(verdict.warnings)
    return {"apiVersion": api_version, "kind": "AdmissionReview", "response": body}
