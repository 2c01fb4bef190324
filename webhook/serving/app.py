"""The HTTP edge: read a bounded body, hand it to the webhook, write the answer.

Endpoints: POST /validate (with /volumesnapshot and /volumegroupsnapshot as
aliases, the upstream webhook's Service paths), GET /healthz, /readyz and
/metrics (a trailing slash is the same path). Transport problems are answered
here with a JSON error naming the problem; no path answers 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from webhook import __version__
from webhook.decide.admission import BadReviewError, response, review_from_bytes
from webhook.decide.service import Webhook
from webhook.model.values import show
from webhook.serving.health import Readiness
from webhook.serving.logs import AdmissionLog
from webhook.serving.metrics import Metrics, verdict_label

ADMISSION_PATHS = ("/validate", "/volumesnapshot", "/volumegroupsnapshot")
JSON = "application/json"


class BodyTooLargeError(Exception):
    pass


class ClientGoneError(Exception):
    pass


class OverloadedError(Exception):
    pass


class InflightBudget:
    """Bytes of request bodies held at once, across every request.

    Each body is bounded by the body limit; this bounds their sum, so a flood
    of large requests is refused (503, which the apiserver retries or reports)
    instead of growing the process without limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        if self.used + size > self.limit:
            raise OverloadedError
        self.used += size

    def give(self, size: int) -> None:
        self.used -= size


async def read_limited(
    declared: str | None, receive: Receive, limit: int, budget: InflightBudget
) -> tuple[bytes, int]:
    """The whole body and the budget it holds, refused as soon as it is known to
    exceed `limit` bytes (or the shared budget). The caller gives back the budget.

    No timer here: the protocol (`webhook.serving.protocol`) answers 408 to a body that
    is late, and this read then ends with ClientGoneError."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGoneError
            chunk = message.get("body", b"")
            if size + len(chunk) > limit:
                raise BodyTooLargeError
            budget.take(len(chunk))
            size += len(chunk)
            if not message.get("more_body", False):
                if not parts:
                    return chunk, size  # the whole body in one message: no copy
                parts.append(chunk)
                return b"".join(parts), size
            parts.append(chunk)
    except BaseException:
        budget.give(size)
        raise


def error(status: int, message: str) -> tuple[int, bytes]:
    return status, orjson.dumps({"error": message})


@dataclass
class Edge:
    """What the HTTP edge needs besides the webhook itself."""

    metrics: Metrics
    readiness: Readiness
    max_body_bytes: int
    max_inflight_bytes: int = 64 * 1024 * 1024
    background: Sequence[Callable[[], Coroutine[None, None, None]]] = field(default_factory=tuple)
    admission_log: AdmissionLog = field(default_factory=lambda: AdmissionLog(enabled=False))

    def refused(self, status: int, message: str) -> None:
        """A request answered before any verdict, here or by the protocol (a late
        body): counted, and logged at a limited rate."""
        self.metrics.bad_request(str(status))
        self.admission_log.refused(status, message)


@dataclass
class AdmissionEndpoint:
    """POST /validate, from headers and body chunks to (HTTP status, JSON body)."""

    webhook: Webhook
    edge: Edge
    budget: InflightBudget = field(init=False)

    def __post_init__(self) -> None:
        self.budget = InflightBudget(self.edge.max_inflight_bytes)

    def refuse(self, status: int, message: str) -> tuple[int, bytes]:
        """A request answered before any verdict: counted, logged (rate-limited)."""
        self.edge.refused(status, message)
        return error(status, message)

    async def answer(
        self, content_type: str | None, declared_length: str | None, receive: Receive
    ) -> tuple[int, bytes]:
        metrics = self.edge.metrics
        metrics.in_flight += 1
        try:
            return await self._answer(content_type, declared_length, receive)
        finally:
            metrics.in_flight -= 1

    async def _answer(
        self, content_type: str | None, declared_length: str | None, receive: Receive
    ) -> tuple[int, bytes]:
        if content_type != JSON and ((content_type or "").split(";", 1)[0].strip().lower() != JSON):
            shown = show(content_type) if content_type else "none"
            return self.refuse(415, f"Content-Type must be {JSON}, got {shown}")
        limit = self.edge.max_body_bytes
        try:
            body, held = await read_limited(declared_length, receive, limit, self.budget)
        except BodyTooLargeError:
            return self.refuse(413, f"body is larger than the limit of {limit} bytes")
        except OverloadedError:
            return self.refuse(503, "too many request bodies in flight; retry shortly")
        try:
            return await self._judge(body)
        finally:
            self.budget.give(held)

    async def _judge(self, body: bytes) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            review = review_from_bytes(body)
        except BadReviewError as err:
            return self.refuse(400, str(err))
        verdict = await self.webhook.judge_live(review)
        answer = orjson.dumps(response(review.api_version, review.uid, verdict))
        seconds = time.perf_counter() - started
        request = review.request
        kind = request.kind.kind if request else ""
        operation = request.operation if request else ""
        self.edge.metrics.record(kind, operation, verdict, seconds)
        name = user = ""
        if request is not None:
            name = (
                f"{request.namespace}/{request.name}" if request.namespace else request.name or ""
            )
            user = (request.user_info.username if request.user_info else None) or ""
        findings = verdict.findings
        self.edge.admission_log.admission(
            review.uid,
            kind,
            name,
            operation,
            bool(request.dry_run) if request else False,
            user,
            verdict_label(verdict),
            verdict.code,
            tuple(dict.fromkeys(f.rule_id for f in findings if f.denies)),
            tuple(dict.fromkeys(f.rule_id for f in findings if not f.denies)),
            seconds,
        )
        return 200, answer


class AdmissionFastPath:
    """The outermost ASGI app: admission requests skip FastAPI (routing, its
    middleware stack, request objects, dependency resolution) and go straight
    to the endpoint; everything else, lifespan included, goes to FastAPI."""

    def __init__(self, app: ASGIApp, endpoint: AdmissionEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") not in ADMISSION_PATHS:
            await self.app(scope, receive, send)  # /validate/ is /validate
            return
        if scope["method"] != "POST":
            message = f"{scope['method']} is not allowed on {scope['path']}; {PATHS_NOTE}"
            await send_json(send, 405, orjson.dumps({"error": message}))
            return
        content_type = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                length = value.decode("latin-1")
            elif name == b"content-encoding" and value.strip().lower() != b"identity":
                # the apiserver never compresses a review; a compressed body would
                # read as bytes that are not JSON, and be refused for the wrong reason
                encoding = show(value.decode("latin-1"))
                status, body = self.endpoint.refuse(
                    415, f"Content-Encoding {encoding} is not supported: send the body as is"
                )
                await send_json(send, status, body)
                return
        try:
            status, body = await self.endpoint.answer(content_type, length, receive)
        except ClientGoneError:
            return  # nobody is left to answer
        await send_json(send, status, body)


async def send_json(send: Send, status: int, body: bytes) -> None:
    """One whole JSON response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


PATHS_NOTE = (
    "the paths are POST "
    + ", ".join(ADMISSION_PATHS)
    + " (AdmissionReview), and GET /healthz, /readyz, /metrics"
)
PROBE_PATHS_NOTE = (
    "the paths of this port are GET /healthz, /readyz, /metrics; admission reviews go to "
    "the HTTPS port"
)
SERVICE_PATHS = ("/healthz", "/readyz", "/metrics")


def _service_app(
    edge: Edge,
    lifespan: Any = None,
    title: str = "snapshot-webhook",
    paths_note: str = PATHS_NOTE,
) -> FastAPI:
    """A FastAPI app with the health routes, no API docs (the admission port
    serves the apiserver, and Swagger UI would load scripts from the internet),
    no slash redirects, and a 404 that names the paths of this port. Every path
    answers with its trailing slash too, and HEAD where it answers GET."""
    app = FastAPI(
        title=title,
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )

    @app.exception_handler(404)
    async def not_found(request: Request, _: Exception) -> Response:
        body = orjson.dumps({"error": f"no such path {request.url.path}; {paths_note}"})
        return Response(body, status_code=404, media_type=JSON)

    @app.exception_handler(405)
    async def wrong_method(request: Request, _: Exception) -> Response:
        message = f"{request.method} is not allowed on {request.url.path}; {paths_note}"
        return Response(orjson.dumps({"error": message}), status_code=405, media_type=JSON)

    async def healthz() -> Response:
        return Response(orjson.dumps({"status": "ok"}), media_type=JSON)

    async def readyz() -> Response:
        problems = edge.readiness.problems()
        body = orjson.dumps({"ready": not problems, "problems": problems})
        return Response(body, status_code=503 if problems else 200, media_type=JSON)

    async def metrics() -> Response:
        return Response(generate_latest(edge.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for path, endpoint in zip(SERVICE_PATHS, (healthz, readyz, metrics), strict=True):
        for route in (path, f"{path}/"):
            app.add_api_route(route, endpoint, methods=["GET", "HEAD"], include_in_schema=False)
    return app


def create_app(webhook: Webhook, edge: Edge) -> ASGIApp:
    """The admission port's ASGI app."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(job()) for job in edge.background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            if tasks:  # let each finish its way out (the reports Lease is handed back)
                await asyncio.wait(tasks, timeout=2.0)

    return AdmissionFastPath(_service_app(edge, lifespan), AdmissionEndpoint(webhook, edge))


def create_probe_app(edge: Edge) -> ASGIApp:
    """The plain-HTTP probe and metrics port: kubelet and Prometheus present no
    client certificate, so they must never depend on the admission port's TLS."""
    return _service_app(edge, title="snapshot-webhook probes", paths_note=PROBE_PATHS_NOTE)
