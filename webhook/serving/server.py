"""Running the HTTPS server: certificates, state, uvicorn, and a graceful stop.

On SIGTERM the server first turns /readyz false and keeps serving for
`shutdown_delay_seconds` (5 s with --kube, none in a terminal), so that the
Service stops sending it new requests; then uvicorn stops accepting
connections and lets in-flight requests finish (at most
`shutdown_timeout_seconds`), and every watch is stopped at once. A second
signal stops at once. In a cluster the whole takes about 6 s, well inside the
pod's terminationGracePeriodSeconds.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import os
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from webhook import __version__
from webhook.cluster.api import KubeAPI, api_client, own_namespace
from webhook.cluster.claims import RELEASE_GRACE, LeaseClaims
from webhook.cluster.leader import LeaseElector
from webhook.cluster.registration import Registrar
from webhook.cluster.registration import maintain as maintain_registration
from webhook.cluster.watch import ClusterState, WatchSettings
from webhook.decide.audit import audit, by_rule
from webhook.decide.authorize import AccessReviews, AllowList
from webhook.decide.service import Webhook
from webhook.model import report_kinds
from webhook.render.configuration import configuration, warned_kinds
from webhook.rules import CATALOG, Policy
from webhook.rules.base import Stage
from webhook.serving import logs
from webhook.serving.app import Edge, create_app, create_probe_app
from webhook.serving.health import Readiness
from webhook.serving.logs import AdmissionLog
from webhook.serving.metrics import Metrics
from webhook.serving.protocol import guarded_protocol
from webhook.serving.reporting import Reporting
from webhook.settings import Settings
from webhook.state.fixtures import ObjectStore
from webhook.state.index import StateIndex
from webhook.state.layers import Reservations
from webhook.tls import certs
from webhook.tls.plan import Lifetimes, ManagedPair
from webhook.tls.sync import CertificateManager
from webhook.tls.watch import CertificateReloader, server_context

log = logging.getLogger("snapshot_webhook.server")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, readiness: Readiness, delay: float) -> None:
        super().__init__(config)
        self.readiness = readiness
        self.delay = delay
        self.cluster: ClusterState | None = None
        self.probes: ProbeServer | None = None
        self.private_dir: Path | None = None  # managed certificates' private copy

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


class ProbeServer(uvicorn.Server):
    """The plain-HTTP probe port, run beside the admission server in its loop.

    It leaves signals to the admission server and stops after it, so that the
    kubelet sees /readyz turn false during the drain."""

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        await self._serve(sockets)


class _OncePerProcess(logging.Filter):
    """uvicorn says "Started/Finished server process" and "Uvicorn running on" once
    per listener, without saying which; `run_servers` says it once, by name."""

    DROPPED = ("Started server process", "Finished server process", "Uvicorn running on")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.DROPPED)


def _url(scheme: str, config: uvicorn.Config) -> str:
    return f"{scheme}://{_url_host(config.host)}:{config.port}"


async def _say_listening(main: DrainingServer, probes: ProbeServer | None) -> None:
    while not main.started or (probes is not None and not probes.started):
        if main.should_exit:
            return
        await asyncio.sleep(0.01)
    where = f"admission reviews on {_url('https', main.config)}/validate"
    if probes is not None:
        where += f", /healthz /readyz /metrics on {_url('http', probes.config)}"
    log.info("listening (process %d): %s; Ctrl-C or SIGTERM stops", os.getpid(), where)


async def run_servers(main: DrainingServer, probes: ProbeServer | None) -> None:
    announce = asyncio.create_task(_say_listening(main, probes))
    try:
        if probes is None:
            await main.serve()
            return
        probe_task = asyncio.create_task(probes.serve())
        try:
            await main.serve()
        finally:
            probes.should_exit = True
            await probe_task
    finally:
        announce.cancel()


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


def managed_certificates(
    settings: Settings, api: KubeAPI, namespace: str
) -> tuple[CertificateManager, ManagedPair, Path]:
    """The Secret-backed pair, obtained (or made) before the server starts, and the
    private directory its first copy is written to for the TLS context."""
    names = [*certs.service_names(settings.service, namespace), *settings.tls_sans]
    manager = CertificateManager(
        api,
        namespace,
        settings.certificate_secret,
        names,
        # a registered configuration gets its caBundle from the registration
        () if settings.register_webhook else settings.webhook_configurations,
        Lifetimes(
            ca=datetime.timedelta(seconds=settings.ca_lifetime_seconds),
            serving=datetime.timedelta(seconds=settings.certificate_lifetime_seconds),
            overlap=datetime.timedelta(seconds=settings.ca_overlap_seconds),
        ),
    )
    pair = manager.initial(settings.certificate_start_timeout_seconds, sleep=time.sleep)
    directory = Path(tempfile.mkdtemp(prefix="snapshot-webhook-tls-"))
    certs.write_private(directory / certs.TLS_KEY, pair.key)
    certs.write_public(directory / certs.TLS_CERT, pair.cert)
    return manager, pair, directory


# matchConditions (the restores entry) and admissionregistration.k8s.io/v1
# ValidatingAdmissionPolicy are GA from this version on
MIN_KUBERNETES = (1, 30)


def check_server_version(api: KubeAPI) -> None:
    """Say clearly, at start, when the apiserver is older than the install needs."""
    try:
        status, version = api.get_json("/version", timeout=(5.0, 5.0))
    except Exception as err:  # the watches report an unreachable apiserver themselves
        log.warning("cannot read the Kubernetes version: %s", err)
        return
    if status != 200 or not isinstance(version, dict):
        log.warning("cannot read the Kubernetes version: HTTP %s", status)
        return
    try:
        found = (
            int(str(version.get("major"))),
            int("".join(c for c in str(version.get("minor")) if c.isdigit())),
        )
    except ValueError:
        log.warning("cannot read the Kubernetes version from %s", version)
        return
    if found < MIN_KUBERNETES:
        log.error(
            "the apiserver runs Kubernetes %s; snapshot-webhook needs v%d.%d or newer "
            "(matchConditions on the restores webhook): claims restored from snapshots are "
            "not checked as intended",
            version.get("gitVersion") or f"v{found[0]}.{found[1]}",
            *MIN_KUBERNETES,
        )
    else:
        log.info("Kubernetes %s", version.get("gitVersion") or f"v{found[0]}.{found[1]}")


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def watch_settings(settings: Settings) -> WatchSettings:
    return WatchSettings(
        read_timeout=settings.watch_read_timeout_seconds,
        watch_timeout=settings.watch_timeout_seconds,
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


async def maintain_claims(claims: LeaseClaims, webhook: Webhook, readiness: Readiness) -> None:
    """Release claims the watch has settled; now and then, delete expired ones."""
    sweep_every = max(1.0, claims.duration / 2)
    last_sweep = 0.0
    while True:
        await asyncio.sleep(0.5)
        if readiness.problems():
            continue  # the watched state is not to be trusted yet
        try:
            await asyncio.to_thread(claims.settled, webhook.claim_settled, RELEASE_GRACE)
            if time.monotonic() - last_sweep >= sweep_every:
                await asyncio.to_thread(claims.sweep)
                last_sweep = time.monotonic()
        except Exception as err:  # the next round tries again; claims expire meanwhile
            log.warning("maintaining claims failed: %s", err)


def registration(
    settings: Settings,
    api: KubeAPI,
    kubeconfig: str | None,
    serving: Serving,
) -> Callable[[], Coroutine[None, None, None]]:
    """The task that registers and keeps the webhook configuration, trusting the
    managed CA, or the CA in --ca-bundle-file (re-read every round, and used only
    while it signed the certificate being served: a configuration the apiserver
    could not use would fail every call)."""
    manager, readiness = serving.manager, serving.readiness
    name, namespace = settings.webhook_configurations[0], settings.namespace
    namespace = namespace or own_namespace(kubeconfig)
    warned = warned_kinds(Policy.parse(settings.rules))

    def render(bundle: str, owner: dict[str, Any]) -> dict[str, Any]:
        return configuration(
            settings.service,
            namespace,
            name=name,
            failure_policy=settings.failure_policy,
            ca_bundle=bundle,
            owner=owner,
            warned_deletes=warned,
        )

    registrar = Registrar(api, name, settings.webhook_owner, render)
    if manager is not None:
        managed = manager

        def bundle() -> str:
            assert managed.current is not None  # the first pair is had before serving
            return managed.current.ca_bundle_b64

    else:
        assert settings.ca_bundle_file is not None
        path, served = settings.ca_bundle_file, serving.reloader.cert_file

        def bundle() -> str:
            data = path.read_bytes()
            if not certs.issued_by_one_of(data, served.read_bytes()):
                raise ValueError(
                    f"--ca-bundle-file {path} holds no CA that signed the serving certificate "
                    f"{served}: nothing is registered until it does"
                )
            return base64.b64encode(data).decode()

    interval = settings.certificate_sync_seconds
    return lambda: maintain_registration(registrar, bundle, readiness.problems, interval)


@dataclass
class Serving:
    """What the assembly steps share: the certificate served, readiness, metrics
    and the background tasks the admission port's lifespan runs."""

    reloader: CertificateReloader
    manager: CertificateManager | None  # the managed pair's keeper, if any
    private_dir: Path | None  # where the managed pair is written for the TLS context
    readiness: Readiness
    metrics: Metrics
    background: list[Callable[[], Coroutine[None, None, None]]] = field(default_factory=list)


def build(settings: Settings, out: Callable[[str], Any] = print) -> DrainingServer:
    """Everything `serve` runs, wired together but not started: the certificate,
    then embedded or cluster mode, then the two listeners."""
    log.info("snapshot-webhook %s starting", __version__)
    policy = Policy.parse(settings.rules)
    store = ObjectStore()
    count = store.load(settings.state)
    kubeconfig = str(settings.kubeconfig) if settings.kubeconfig else None
    api = KubeAPI(api_client(kubeconfig)) if settings.kube else None
    if api is not None:
        check_server_version(api)
    serving = certificate(settings, api, kubeconfig, out)
    serving.metrics.watch_state(store.index.counts)
    cluster: ClusterState | None = None
    if api is not None:
        webhook, cluster = cluster_mode(settings, api, kubeconfig, store.index, policy, serving)
        log.info("cluster mode: watching %s", kubeconfig or "the in-cluster API server")
    else:
        webhook = Webhook(
            store.index,
            policy,
            embedded=True,
            authorizer=AllowList(
                tuple(settings.authorized_users), tuple(settings.authorized_groups)
            ),
        )
        log.info("embedded mode: %d objects of state from %s", count, settings.state or "none")
    server = listeners(settings, webhook, serving)
    server.cluster = cluster
    server.private_dir = serving.private_dir
    return server


def certificate(
    settings: Settings, api: KubeAPI | None, kubeconfig: str | None, out: Callable[[str], Any]
) -> Serving:
    """The serving pair (managed in a Secret, given as files, or generated), loaded,
    with the task that keeps it current; and the readiness and metrics that
    report on it."""
    manager: CertificateManager | None = None
    private_dir: Path | None = None
    if api is not None and settings.manage_certificates:
        namespace = settings.namespace or own_namespace(kubeconfig)
        manager, _, private_dir = managed_certificates(settings, api, namespace)
        cert_file, key_file = private_dir / certs.TLS_CERT, private_dir / certs.TLS_KEY
        source = f"Secret {namespace}/{settings.certificate_secret}"
    else:
        cert_file, key_file = certificate_files(settings, out)
        source = ""
    context = server_context(cert_file, key_file, settings.client_ca_file)
    reloader = CertificateReloader(context, cert_file, key_file, source)
    reloader.load_initial()
    metrics = Metrics()
    metrics.watch_certificate(lambda: reloader.not_after)
    serving = Serving(
        reloader, manager, private_dir, Readiness(state_loaded=True, certificate=reloader), metrics
    )
    if manager is not None:
        interval = settings.certificate_sync_seconds
        serving.background.append(
            lambda: manager.run(interval, lambda pair: reloader.offer(pair.cert, pair.key))
        )
    else:
        serving.background.append(lambda: reloader.watch(settings.cert_poll_seconds))
    return serving


def cluster_mode(
    settings: Settings,
    api: KubeAPI,
    kubeconfig: str | None,
    index: StateIndex,
    policy: Policy,
    serving: Serving,
) -> tuple[Webhook, ClusterState]:
    """The watches that keep the index, the claims, the webhook that judges with
    them, and the tasks that keep claims, the registration and the audit."""
    metrics, readiness, background = serving.metrics, serving.readiness, serving.background
    claims = None
    if settings.claims:
        claims = LeaseClaims(
            api,
            settings.namespace or own_namespace(kubeconfig),
            settings.claim_duration_seconds,
            timeout=settings.claim_timeout_seconds,
        )
        metrics.watch_claims(lambda: dict(claims.counts), lambda: float(claims.live))
    reservations = Reservations(settings.reservation_ttl_seconds)
    cluster = ClusterState(
        api,
        index,
        watch_settings(settings),
        on_change=reservations.settle,
        counters=metrics.count_watch,
    )
    readiness.sync = cluster.status
    metrics.watch_events(cluster.status.last_event_times, cluster.status.fresh_times)
    metrics.reservations.set_function(lambda: reservations.expire())
    webhook = Webhook(
        index,
        policy,
        embedded=False,
        reservations=reservations,
        live_get=cluster.live_get,
        on_live_get=metrics.count_live_get,
        claims=claims,
        claim_failure=settings.claim_failure,
        # the cluster's own RBAC decides
        authorizer=AccessReviews(api, count=metrics.count_authorization),
    )
    if claims is not None:
        claims.gave_up = webhook.claim_given_up
        background.append(lambda: maintain_claims(claims, webhook, readiness))
    if settings.register_webhook:
        background.append(registration(settings, api, kubeconfig, serving))
    background.append(
        periodic_audit(index, policy, metrics, readiness, settings.audit_interval_seconds)
    )
    if settings.reports != "off":
        reporting = Reporting(
            api,
            index,
            policy,
            LeaseElector(
                api,
                settings.namespace or own_namespace(kubeconfig),
                report_kinds.LEASE,
                replica_identity(),
                settings.reports_lease_seconds,
            ),
            settings.reports,
            ready=lambda: not readiness.problems(),
            debounce=settings.reports_debounce_seconds,
            max_delay=5 * settings.reports_debounce_seconds,
        )
        background.append(reporting.run)
    return webhook, cluster


def replica_identity() -> str:
    """This process among the replicas: the pod's name, and a nonce for restarts."""
    name = os.environ.get("POD_NAME") or socket.gethostname()
    return f"{name}_{uuid.uuid4().hex[:8]}"


def listeners(settings: Settings, webhook: Webhook, serving: Serving) -> DrainingServer:
    """The admission port (HTTPS) and the probe port (plain HTTP) on uvicorn."""
    edge = Edge(
        metrics=serving.metrics,
        readiness=serving.readiness,
        max_body_bytes=settings.max_body_bytes,
        max_inflight_bytes=settings.max_inflight_bytes,
        background=serving.background,
        admission_log=AdmissionLog(
            enabled=settings.log_level in ("debug", "info"),
            refusals=settings.log_level != "error",
        ),
    )
    context = serving.reloader.context

    def ssl_context(_: uvicorn.Config, __: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        return context

    def protocol() -> Any:
        return guarded_protocol(
            settings.header_timeout_seconds, settings.body_timeout_seconds, edge.refused
        )

    config = uvicorn.Config(
        create_app(webhook, edge),
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(serving.reloader.cert_file),
        ssl_context_factory=ssl_context,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
        server_header=False,
        # the apiserver calls us directly: no proxy headers to trust, no layer to run
        proxy_headers=False,
        http=protocol(),
        timeout_keep_alive=settings.keep_alive_seconds,
        limit_concurrency=settings.max_connections,
    )
    server = DrainingServer(config, serving.readiness, settings.drain_delay)
    if settings.probe_port:
        server.probes = ProbeServer(
            uvicorn.Config(
                create_probe_app(edge),
                host=settings.host,
                port=settings.probe_port,
                log_config=None,
                access_log=False,
                lifespan="off",
                server_header=False,
                proxy_headers=False,
                http=protocol(),
                timeout_keep_alive=settings.keep_alive_seconds,
                limit_concurrency=64,
            )
        )
    return server


def serve(settings: Settings) -> int:
    logs.configure(settings.log_level)
    logging.getLogger("uvicorn.error").addFilter(_OncePerProcess())
    server = build(settings, out=log.info)  # every line JSON, the hints too
    if server.cluster is not None:
        server.cluster.start()
    try:
        # the loop uvicorn itself would pick: uvloop where it is installed (as
        # uvicorn[standard] installs it), else asyncio's own
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(run_servers(server, server.probes))
    finally:
        if server.cluster is not None:
            server.cluster.stop()
        if server.private_dir is not None:
            shutil.rmtree(server.private_dir, ignore_errors=True)
        log.info("stopped (process %d)", os.getpid())
    return 0
