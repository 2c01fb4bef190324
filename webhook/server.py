"""Running the HTTPS server: certificates, state, uvicorn, and a graceful stop.

On SIGTERM the server first turns /readyz false and keeps serving for
`shutdown_delay_seconds`, so that the Service stops sending it new requests;
then uvicorn stops accepting connections and lets in-flight requests finish
(at most `shutdown_timeout_seconds`). A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import sys
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from webhook import certs, logs
from webhook.app import Edge, create_app
from webhook.audit import audit, by_rule
from webhook.certwatch import CertificateReloader, server_context
from webhook.health import Readiness
from webhook.logs import AdmissionLog
from webhook.metrics import Metrics
from webhook.protocol import guarded_protocol
from webhook.rules import CATALOG, Policy
from webhook.rules.base import Stage
from webhook.service import Webhook
from webhook.settings import Settings
from webhook.state.fixtures import ObjectStore
from webhook.state.index import StateIndex
from webhook.state.kube import ClusterState, KubeAPI, WatchSettings, api_client
from webhook.state.layers import Reservations

log = logging.getLogger("snapshot_webhook.server")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, readiness: Readiness, delay: float) -> None:
        super().__init__(config)
        self.readiness = readiness
        self.delay = delay
        self.cluster: ClusterState | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Exit flags are set directly rather than through uvicorn's handler, which
        # would re-raise the signal after shutdown and kill the process before
        # the log queue is flushed; a drained server exits with status 0.
        if self.readiness.draining or self.delay <= 0:
            if self.should_exit:
                self.force_exit = True  # a second signal: stop now
            self.readiness.draining = True
            self.should_exit = True
            return
        self.readiness.draining = True
        log.info(
            "received %s: readiness is now false; stopping in %.1fs",
            signal.Signals(sig).name,
            self.delay,
        )
        timer = threading.Timer(self.delay, self._stop)
        timer.daemon = True
        timer.start()

    def _stop(self) -> None:
        self.should_exit = True


def certificate_files(settings: Settings, out: Callable[[str], Any]) -> tuple[Path, Path]:
    """The serving pair: as configured, or generated into the cert dir with a local CA."""
    if settings.tls_cert_file is not None and settings.tls_private_key_file is not None:
        return settings.tls_cert_file, settings.tls_private_key_file
    names = [*certs.LOCAL_NAMES, *settings.dns_names]
    paths = certs.ensure(settings.cert_dir, names)
    out(f"serving certificate: {paths.cert} (for {', '.join(dict.fromkeys(names))})")
    out(f"CA certificate: {paths.ca_cert}")
    out(
        f"try: curl --cacert {paths.ca_cert} -H 'Content-Type: application/json' "
        f"--data @examples/reviews/01-snapshot-class-default.json "
        f"https://{_url_host(settings.host)}:{settings.port}/validate"
    )
    return paths.cert, paths.key


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def watch_settings(settings: Settings) -> WatchSettings:
    return WatchSettings(
        read_timeout=settings.watch_read_timeout_seconds,
        discovery_interval=settings.discovery_interval_seconds,
        failure_grace=settings.watch_failure_grace_seconds,
        live_get_timeout=settings.live_get_timeout_seconds,
    )


def periodic_audit(
    index: StateIndex, policy: Policy, metrics: Metrics, readiness: Readiness, interval: float
) -> Callable[[], Coroutine[None, None, None]]:
    rule_ids = [rule.id for rule in CATALOG if rule.stage is Stage.CROSS]

    async def run() -> None:
        while True:
            if not readiness.problems():
                findings = await asyncio.to_thread(audit, index, policy)
                metrics.record_audit(by_rule(findings), rule_ids)
                if findings:
                    log.warning(
                        "audit: %d objects break rules already (%s)",
                        len(findings),
                        ", ".join(sorted(by_rule(findings))),
                    )
                await asyncio.sleep(interval)
            else:
                await asyncio.sleep(1.0)

    return run


def build(settings: Settings, out: Callable[[str], Any] = print) -> DrainingServer:
    """Everything `serve` runs, wired together but not started."""
    policy = Policy.parse(settings.rules)
    store = ObjectStore()
    count = store.load(settings.state)
    cert_file, key_file = certificate_files(settings, out)
    context = server_context(cert_file, key_file, settings.client_ca_file)
    reloader = CertificateReloader(context, cert_file, key_file)
    reloader.load_initial()

    readiness = Readiness(state_loaded=True, certificate=reloader)
    metrics = Metrics()
    metrics.watch_state(store.index.counts)
    metrics.watch_certificate(lambda: reloader.not_after)
    background = [lambda: reloader.watch(settings.cert_poll_seconds)]
    cluster: ClusterState | None = None
    if settings.kube:
        kubeconfig = str(settings.kubeconfig) if settings.kubeconfig else None
        reservations = Reservations(settings.reservation_ttl_seconds)
        cluster = ClusterState(
            KubeAPI(api_client(kubeconfig)),
            store.index,
            watch_settings(settings),
            on_change=reservations.settle,
            counters=metrics.count_watch,
        )
        readiness.sync = cluster.status
        metrics.watch_events(cluster.status.seconds_since_event)
        metrics.reservations.set_function(lambda: reservations.expire())
        webhook = Webhook(
            store.index,
            policy,
            embedded=False,
            reservations=reservations,
            live_get=cluster.live_get,
            on_live_get=metrics.count_live_get,
        )
        background.append(
            periodic_audit(store.index, policy, metrics, readiness, settings.audit_interval_seconds)
        )
        log.info("cluster mode: watching %s", kubeconfig or "the in-cluster API server")
    else:
        webhook = Webhook(store.index, policy, embedded=True)
        log.info("embedded mode: %d objects of state from %s", count, settings.state or "none")
    edge = Edge(
        metrics=metrics,
        readiness=readiness,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout_seconds,
        max_inflight_bytes=settings.max_inflight_bytes,
        background=background,
        admission_log=AdmissionLog(enabled=settings.log_level in ("debug", "info")),
    )
    app = create_app(webhook, edge)

    def ssl_context(_: uvicorn.Config, __: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return context

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(cert_file),
        ssl_context_factory=ssl_context,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
        server_header=False,
        http=guarded_protocol(settings.header_timeout_seconds),
        timeout_keep_alive=settings.keep_alive_seconds,
        limit_concurrency=settings.max_connections,
    )
    server = DrainingServer(config, readiness, settings.shutdown_delay_seconds)
    server.cluster = cluster
    return server


def serve(settings: Settings) -> int:
    logs.configure(settings.log_level)
    server = build(settings, out=lambda line: print(line, file=sys.stderr, flush=True))
    if server.cluster is not None:
        server.cluster.start()
    try:
        server.run()
    finally:
        if server.cluster is not None:
            server.cluster.stop()
    return 0
