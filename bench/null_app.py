"""The baseline: an ASGI app that reads the body and returns a fixed AdmissionReview,
served by the same uvicorn, TLS context and settings as the webhook.

python -m bench.null_app --port PORT --cert-dir DIR
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
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
