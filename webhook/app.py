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

from webhook import __version__
from webhook.admission import BadReviewError, Review, read_review, response
from webhook.health import Readiness
from webhook.metrics import Metrics
from webhook.service import Webhook

ADMISSION_PATHS = ("/validate", "/volumesnapshot", "/volumegroupsnapshot")
JSON = "application/json"

log = logging.getLogger("snapshot_webhook.admission")


class BodyTooLargeError(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status, media_type=JSON)


@dataclass
class Edge:
    """What the HTTP edge needs besides the webhook itself."""

    metrics: Metrics
    readiness: Readiness
    max_body_bytes: int
    background: Sequence[Callable[[], Coroutine[None, None, None]]] = field(default_factory=tuple)


def _log_admission(
    review: Review, verdict_allowed: bool, code: int, rules: Sequence[str], seconds: float
) -> None:
    request = review.request
    name = (
        ""
        if request is None
        else (f"{request.namespace}/{request.name}" if request.namespace else request.name or "")
    )
    log.info(
        "admission",
        extra={
            "uid": review.uid,
            "kind": request.kind.kind if request else "",
            "object": name,
            "operation": request.operation if request else "",
            "dry_run": bool(request.dry_run) if request else False,
            "allowed": verdict_allowed,
            "code": code,
            "rules": list(rules),
            "duration_ms": round(seconds * 1000, 3),
        },
    )


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

    async def validate(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() != JSON:
            edge.metrics.bad_requests.labels("415").inc()
            return error(415, f"Content-Type must be {JSON}, got {content_type or 'none'!r}")
        try:
            body = await read_body(request, edge.max_body_bytes)
        except BodyTooLargeError:
            edge.metrics.bad_requests.labels("413").inc()
            return error(413, f"body is larger than the limit of {edge.max_body_bytes} bytes")
        started = time.perf_counter()
        try:
            review = read_review(orjson.loads(body))
        except orjson.JSONDecodeError as err:
            edge.metrics.bad_requests.labels("400").inc()
            return error(400, f"body is not valid JSON: {err}")
        except BadReviewError as err:
            edge.metrics.bad_requests.labels("400").inc()
            return error(400, str(err))
        verdict = await webhook.judge_live(review)
        answer = orjson.dumps(response(review.api_version, review.uid, verdict))
        seconds = time.perf_counter() - started
        request_ = review.request
        kind = request_.kind.kind if request_ else ""
        operation = request_.operation if request_ else ""
        edge.metrics.record(kind, operation, verdict, seconds)
        _log_admission(review, verdict.allowed, verdict.code, verdict.rule_ids, seconds)
        return Response(answer, media_type=JSON)

    for path in ADMISSION_PATHS:
        app.add_api_route(
            path,
            validate,
            methods=["POST"],
            response_class=Response,
            summary="Answer an AdmissionReview",
        )

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
