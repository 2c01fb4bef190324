"""The baseline: an ASGI app that reads the body and returns a fixed AdmissionReview,
served by the same uvicorn, TLS context and settings as the webhook.

python -m bench.null_app --port PORT --cert-dir DIR [--corked] [--busy-us N]

`--busy-us N` makes each admission first run Python work that takes N
microseconds when timed in process (small dicts and tuples made and dropped,
repeated as often as N needs, counted at startup): the calibration of what a
microsecond of in-process work costs the live server.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import orjson
import uvicorn
from starlette.types import Receive, Scope, Send

from webhook.serving.app import send_json
from webhook.serving.protocol import CorkedHttpToolsProtocol
from webhook.tls.watch import server_context

ANSWER = orjson.dumps(
    {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "00000000-0000-0000-0000-000000000000", "allowed": True},
    }
)


BUSY_LOOPS = 0  # set by --busy-us


def busy(loops: int) -> None:
    """Python work of the request path's kind: small objects made, read, dropped."""
    for n in range(loops):
        item = {"n": n, "kind": "VolumeSnapshot"}
        pair = (item["kind"], item)
        del pair


def loops_for(microseconds: float) -> int:
    """How many loops of `busy` take `microseconds` in process (best of 20 timings)."""
    trial = 1000
    best = min(_timed(trial) for _ in range(20))
    return max(1, round(trial * microseconds / 1e6 / best))


def _timed(loops: int) -> float:
    started = time.perf_counter()
    busy(loops)
    return time.perf_counter() - started


async def null_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if BUSY_LOOPS:
        busy(BUSY_LOOPS)
    await send_json(send, 200, ANSWER)  # the webhook's own response writer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert-dir", type=Path, required=True)
    parser.add_argument(
        "--corked",
        action="store_true",
        help="write each response's head and body at once, as the webhook's protocol does",
    )
    parser.add_argument(
        "--busy-us",
        type=float,
        default=0.0,
        help="run Python work that takes this many microseconds in process per admission",
    )
    args = parser.parse_args()
    global BUSY_LOOPS
    BUSY_LOOPS = loops_for(args.busy_us) if args.busy_us else 0
    cert, key = args.cert_dir / "tls.crt", args.cert_dir / "tls.key"
    context = server_context(cert, key)
    uvicorn.run(
        null_app,
        host="127.0.0.1",
        port=args.port,
        ssl_certfile=str(cert),
        ssl_context_factory=lambda _config, _default: context,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # as the webhook: nothing but the apiserver stands in front
        http=CorkedHttpToolsProtocol if args.corked else "httptools",
    )


if __name__ == "__main__":
    main()
