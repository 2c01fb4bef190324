"""The HTTP edge: read a bounded body, hand it to the webhook, write the answer.

Endpoints: POST /validate (with /volumesnapshot and /volumegroupsnapshot as
aliases, the upstream webhook's Service paths), GET /healthz, /readyz and
/metrics. Transport problems are answered here with a JSON error naming the
problem; no path answers 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from webhook import __version__
from webhook.admission import BadReviewError, read_review, response
from webhook.health import Readiness
from webhook.logs import AdmissionLog
from webhook.metrics import Metrics
from webhook.service import Webhook

ADMISSION_PATHS = ("/validate", "/volumesnapshot", "/volumegroupsnapshot")
JSON = "application/json"

log = logging.getLogger("snapshot_webhook.admission")


class BodyTooLargeError(Exception):
    pass


class ClientGoneError(Exception):
    pass


async def read_limited(declared: str | None, chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, refused as soon as it is known to exceed `limit` bytes."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        parts.append(chunk)
    return b"".join(parts)


def error(status: int, message: str) -> tuple[int, bytes]:
    return status, orjson.dumps({"error": message})


@dataclass
class Edge:
    """What the HTTP edge needs besides the webhook itself."""

    metrics: Metrics
    readiness: Readiness
    max_body_bytes: int
    background: Sequence[Callable[[], Coroutine[None, None, None]]] = field(default_factory=tuple)
    admission_log: AdmissionLog = field(default_factory=lambda: AdmissionLog(enabled=False))


@dataclass
class AdmissionEndpoint:
    """POST /validate, from headers and body chunks to (HTTP status, JSON body)."""

    webhook: Webhook
    edge: Edge

    async def answer(
        self, content_type: str | None, declared_length: str | None, chunks: AsyncIterator[bytes]
    ) -> tuple[int, bytes]:
        metrics = self.edge.metrics
        if (content_type or "").split(";", 1)[0].strip().lower() != JSON:
            metrics.bad_request("415")
            return error(415, f"Content-Type must be {JSON}, got {content_type or 'none'!r}")
        limit = self.edge.max_body_bytes
        try:
            body = await read_limited(declared_length, chunks, limit)
        except BodyTooLargeError:
            metrics.bad_request("413")
            return error(413, f"body is larger than the limit of {limit} bytes")
        started = time.perf_counter()
        try:
            review = read_review(orjson.loads(body))
        except orjson.JSONDecodeError as err:
            metrics.bad_request("400")
            return error(400, f"body is not valid JSON: {err}")
        except BadReviewError as err:
            metrics.bad_request("400")
            return error(400, str(err))
        verdict = await self.webhook.judge_live(review)
        answer = orjson.dumps(response(review.api_version, review.uid, verdict))
        seconds = time.perf_counter() - started
        request = review.request
        kind = request.kind.kind if request else ""
        operation = request.operation if request else ""
        metrics.record(kind, operation, verdict, seconds)
        name = ""
        if request is not None:
            name = (
                f"{request.namespace}/{request.name}" if request.namespace else (request.name or "")
            )
        self.edge.admission_log.write(
            time.time(),
            review.uid,
            kind,
            name,
            operation,
            bool(request.dry_run) if request else False,
            verdict.allowed,
            verdict.code,
            verdict.rule_ids,
            seconds,
        )
        return 200, answer


class AdmissionFastPath:
    """ASGI layer in front of the routes: admission requests skip routing, request
    objects and dependency resolution, and go straight to the endpoint."""

    def __init__(self, app: ASGIApp, endpoint: AdmissionEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or (scope["path"] not in ADMISSION_PATHS)
        ):
            await self.app(scope, receive, send)
            return
        content_type = length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"content-length":
                length = value.decode("latin-1")

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGoneError
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        try:
            status, body = await self.endpoint.answer(content_type, length, chunks())
        except ClientGoneError:
            return  # nobody is left to answer
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


def create_app(webhook: Webhook, edge: Edge) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(job()) for job in edge.background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()

    app = FastAPI(title="snapshot-webhook", version=__version__, lifespan=lifespan)

    endpoint = AdmissionEndpoint(webhook, edge)

    async def validate(request: Request) -> Response:
        # Served by AdmissionFastPath; the route documents the endpoint and
        # answers the same way should a request ever reach the router.
        status, body = await endpoint.answer(
            request.headers.get("content-type"),
            request.headers.get("content-length"),
            request.stream(),
        )
        return Response(body, status_code=status, media_type=JSON)

    for path in ADMISSION_PATHS:
        app.add_api_route(
            path,
            validate,
            methods=["POST"],
            response_class=Response,
            summary="Answer an AdmissionReview",
        )

    app.add_middleware(AdmissionFastPath, endpoint=endpoint)

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(orjson.dumps({"status": "ok"}), media_type=JSON)

    @app.get("/readyz")
    async def readyz() -> Response:
        problems = edge.readiness.problems()
        body = orjson.dumps({"ready": not problems, "problems": problems})
        return Response(body, status_code=503 if problems else 200, media_type=JSON)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(edge.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
