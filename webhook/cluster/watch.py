"""list+watch from the Kubernetes API into the state index.

One reflector thread per kind, each doing what a careful informer does:
- list in pages (`limit` + `continue`), replace that kind's records in the
  index atomically, and watch from the list's resourceVersion, so no event
  between list and watch is lost;
- ask for bookmarks, and resume a broken watch from the last resourceVersion
  seen; relist only on 410 Gone;
- ask the apiserver to end each watch after a randomised `timeoutSeconds`
  (as client-go does: between `watch_timeout` and twice that), and treat that
  clean end as the normal way a watch is renewed. An idle watch gets no
  bookmarks from a real apiserver, so nothing else would show it is alive;
- treat a connection silent past its own `timeoutSeconds` (plus
  `read_timeout`) as broken, and reconnect with capped, jittered exponential
  backoff;
- keep only the fields the rules read: each object becomes a compact record.

The official client's own informer keeps every full object in memory, does
not page its lists and retries at a fixed interval, so the loop is ours; the
client still does configuration, authentication, TLS and the HTTP requests.

A kind whose API group is not served (CRD not installed) or which the
ServiceAccount may not list is treated as empty, said once in the log, and
looked for again every `discovery_interval` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import urllib3

from webhook.cluster.api import APIStatusError, KubeAPI, json_or_none, status_message
from webhook.model.kinds import KINDS, KindInfo
from webhook.model.objects import KubeObject
from webhook.model.reading import UnreadableObjectError, parse_object
from webhook.model.records import Record, to_record
from webhook.state.index import StateIndex

log = logging.getLogger("snapshot_webhook.kube")

LIST_PAGE_SIZE = 500
FAILURE_LOG_INTERVAL = 30.0  # seconds between log lines about one kind's failing watch
MAX_LINE_BYTES = 16 * 1024 * 1024  # one watch event; etcd caps an object at 1.5 MiB


class WatchGoneError(Exception):
    """410: the resourceVersion is too old; relist."""


@dataclass(frozen=True)
class WatchSettings:
    connect_timeout: float = 5.0
    # a list's read timeout, and how long past its server-side end a watch may
    # stay silent before it is taken for broken
    read_timeout: float = 30.0
    watch_timeout: int = 300  # server-side; each watch ends after 1-2 times this
    stop_timeout: float = 2.0  # all watch threads together, at shutdown
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    discovery_interval: float = 30.0
    failure_grace: float = 60.0  # watches failing longer than this make /readyz false
    live_get_timeout: float = 1.0


def resource_path(
    info: KindInfo, version: str, namespace: str | None = None, name: str | None = None
) -> str:
    base = "/api/v1" if info.api_group == "" else f"/apis/{info.api_group}/{version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    path = f"{base}/{info.plural}"
    return f"{path}/{name}" if name else path


def served_version(api: KubeAPI, info: KindInfo, timeout: float) -> str | None:
    """The version to watch `info` at, or None when its API group is not served."""
    if info.api_group == "":
        return "v1"
    status, group = api.get_json(f"/apis/{info.api_group}", timeout=(timeout, timeout))
    if status == 404:
        return None
    if status != 200 or not isinstance(group, dict):
        raise APIStatusError(status, "discover", f"/apis/{info.api_group}")
    served = [v.get("version") for v in group.get("versions", []) if isinstance(v, dict)]
    preferred = (group.get("preferredVersion") or {}).get("version")
    if preferred in info.versions and preferred in served:
        return str(preferred)
    return next((v for v in info.versions if v in served), None)


@dataclass
class KindSync:
    """How the watch of one kind is doing, for readiness and metrics."""

    synced: bool = False
    failing_since: float | None = None
    last_error: str = ""
    last_event: float | None = None
    fresh: float | None = None  # last time the watch was known to be current
    note: str = ""  # absent / forbidden, said once


@dataclass
class SyncStatus:
    failure_grace: float
    kinds: dict[str, KindSync] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    def of(self, info: KindInfo) -> KindSync:
        return self.kinds.setdefault(info.kind, KindSync())

    def problems(self) -> list[str]:
        found = []
        now = self.clock()
        for kind, sync in sorted(self.kinds.items()):
            if not sync.synced:
                found.append(f"initial list of {kind} not complete")
            elif sync.failing_since is not None and now - sync.failing_since > self.failure_grace:
                found.append(
                    f"watch of {kind} failing for {now - sync.failing_since:.0f}s: "
                    f"{sync.last_error}"
                )
        return found

    def last_event_times(self) -> dict[str, float]:
        """When each kind's watch last delivered something, as Unix time."""
        return self._as_unix_time(lambda s: s.last_event)

    def fresh_times(self) -> dict[str, float]:
        """When each kind was last known to be current (listed, an event or a
        bookmark, a watch opened or ended cleanly by the apiserver, or its CRD
        known not to be installed), as Unix time; 0 for a kind never current (not
        listed yet, or one the ServiceAccount may not read), so that an alert on
        its age fires. A healthy idle watch renews this at least every
        2 x `watch_timeout`."""
        return {kind: 0.0 for kind in self.kinds} | self._as_unix_time(lambda s: s.fresh)

    def _as_unix_time(self, when: Callable[[KindSync], float | None]) -> dict[str, float]:
        now, wall = self.clock(), time.time()
        return {
            kind: wall - (now - moment)
            for kind, s in self.kinds.items()
            if (moment := when(s)) is not None
        }


class Backoff:
    """Capped exponential backoff with full jitter."""

    def __init__(self, base: float, cap: float) -> None:
        self.base, self.cap, self.attempt = base, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0


def lines(response: Any) -> Iterator[bytes]:
    """Newline-separated watch events from a streamed response."""
    pending = b""
    for chunk in response.stream(65536, decode_content=True):
        *complete, pending = (pending + chunk).split(b"\n")  # one split per chunk: linear
        yield from (line for line in complete if line.strip())
        if len(pending) > MAX_LINE_BYTES:
            raise APIStatusError(200, "watch", "", "event larger than the line limit")
    if pending.strip():
        yield pending


class Reflector:
    """Keeps one kind of the index equal to the cluster's."""

    def __init__(
        self,
        api: KubeAPI,
        info: KindInfo,
        index: StateIndex,
        status: SyncStatus,
        settings: WatchSettings,
        stop: threading.Event,
        on_change: Callable[[KindInfo, str, str], None] = lambda *_: None,
        counters: Callable[[str, KindInfo], None] = lambda *_: None,
    ) -> None:
        self.api, self.info, self.index, self.status = api, info, index, status
        self.settings, self.stop = settings, stop
        self.on_change = on_change  # an object changed (settles reservations)
        self.count = counters  # ("relist" | "restart", info)
        self.resource_version: str | None = None
        self.version: str | None = None
        self.sync = status.of(info)
        self._failures = 0  # in the current run of failures
        self._last_said: float | None = None
        self._open: Any = None  # the watch response being read, for `interrupt`
        self._open_lock = threading.Lock()

    # --- loop -------------------------------------------------------------

    def run(self) -> None:
        backoff = Backoff(self.settings.backoff_base, self.settings.backoff_cap)
        while not self.stop.is_set():
            try:
                if self.version is None:
                    self.version = served_version(
                        self.api, self.info, self.settings.connect_timeout
                    )
                    if self.version is None:
                        self._absent(
                            f"API group {self.info.api_group} is not served (CRD not installed)"
                        )
                        continue
                if self.resource_version is None:
                    self.resource_version = self._relist()
                self._watch()
                backoff.reset()
                self._healthy()
            except (
                APIStatusError,
                WatchGoneError,
                urllib3.exceptions.HTTPError,
                OSError,
                ValueError,
            ) as err:
                if self.stop.is_set():
                    return  # interrupted on purpose by `interrupt`: nothing to say
                self._recover(err, backoff)

    def _recover(self, err: Exception, backoff: Backoff) -> None:
        """What a failed round means: relist, treat the kind as absent, or back off."""
        if isinstance(err, WatchGoneError):
            log.info("watch of %s: resourceVersion too old (410 Gone); relisting", self.info.kind)
            self.resource_version = None
        elif isinstance(err, APIStatusError) and err.status == 404:
            self.version = self.resource_version = None
            self._absent(f"{self.info.plural}.{self.info.api_group} is not served")
        elif isinstance(err, APIStatusError) and err.status in (401, 403):
            self.resource_version = None
            self._absent(
                f"the ServiceAccount may not {err.verb} {self.info.plural}."
                f"{self.info.api_group or 'core'} (RBAC verb {err.verb!r} missing; "
                "grant get, list and watch)",
                level=logging.ERROR,
            )
        elif isinstance(err, APIStatusError):
            self._failed(str(err), backoff)
        else:
            self._failed(f"{type(err).__name__}: {err}", backoff)

    def interrupt(self) -> None:
        """Unblock a watch being read, from another thread (at shutdown)."""
        with self._open_lock:
            if self._open is not None:
                # already released or closed: then nothing blocks on it
                with contextlib.suppress(ValueError, RuntimeError, OSError):
                    self._open.shutdown()

    def _absent(self, why: str, level: int = logging.WARNING) -> None:
        """Serve the kind as empty, say why once, and look again later."""
        if self.sync.note != why:
            log.log(
                level,
                "%s: %s; treating %s as empty and retrying every %.0fs",
                self.info.kind,
                why,
                self.info.kind,
                self.settings.discovery_interval,
            )
            self.sync.note = why
        self.index.replace(self.info, [])
        self.sync.synced = True
        self.sync.failing_since = None
        if level < logging.ERROR:
            # a kind the cluster does not serve is empty, and known to be: current.
            # One the ServiceAccount may not read is not, and its freshness ages.
            self.sync.fresh = self.status.clock()
        self.stop.wait(self.settings.discovery_interval)

    def _healthy(self) -> None:
        self.sync.failing_since = None
        self.sync.note = ""

    def _failed(self, error: str, backoff: Backoff) -> None:
        """Back off and retry. Said when a run of failures starts, then at most once
        every FAILURE_LOG_INTERVAL seconds, with the count, not once per retry."""
        now = self.status.clock()
        if self.sync.failing_since is None:
            self.sync.failing_since = now
            self._failures, self._last_said = 0, None
        self._failures += 1
        self.sync.last_error = error
        delay = backoff.next()
        if self._last_said is None or now - self._last_said >= FAILURE_LOG_INTERVAL:
            log.warning(
                "watch of %s failed (%s); %d attempts since %.0fs ago, retrying in %.1fs",
                self.info.kind,
                error,
                self._failures,
                now - self.sync.failing_since,
                delay,
            )
            self._last_said = now
        self.count("restart", self.info)
        self.stop.wait(delay)

    # --- list ---------------------------------------------------------------

    def _relist(self) -> str:
        assert self.version is not None
        path = resource_path(self.info, self.version)
        records: list[Record] = []
        token = ""
        while True:
            query = [("limit", str(LIST_PAGE_SIZE))] + ([("continue", token)] if token else [])
            status, page = self.api.get_json(
                path, query, timeout=(self.settings.connect_timeout, self.settings.read_timeout)
            )
            if status == 410:
                raise WatchGoneError  # the continue token expired: list again from the start
            if status != 200 or not isinstance(page, dict):
                raise APIStatusError(status, "list", path, status_message(page))
            for item in page.get("items") or []:
                record = self._record(item)
                if record is not None:
                    records.append(record)
            metadata = page.get("metadata") or {}
            token = metadata.get("continue") or ""
            if not token:
                break
        self.index.replace(self.info, records)
        for record in records:
            self.on_change(self.info, record.id.namespace, record.id.name)
        self.count("relist", self.info)
        self.sync.synced = True
        self.sync.last_event = self.sync.fresh = self.status.clock()
        log.info(
            "listed %d %s at resourceVersion %s",
            len(records),
            self.info.kind,
            metadata.get("resourceVersion"),
        )
        return str(metadata.get("resourceVersion") or "")

    def _record(self, item: object) -> Record | None:
        if not isinstance(item, dict):
            return None
        item.setdefault("kind", self.info.kind)  # list items may omit it
        try:
            obj: KubeObject = parse_object(self.info, item, "object")
        except UnreadableObjectError as err:
            log.warning("skipping unreadable %s: %s", self.info.kind, str(err)[:300])
            return None
        return to_record(self.info, obj)

    # --- watch --------------------------------------------------------------

    def _watch(self) -> None:
        assert self.version is not None and self.resource_version is not None
        path = resource_path(self.info, self.version)
        # randomised, as client-go does, so that replicas' watches do not renew together
        timeout = random.randint(self.settings.watch_timeout, self.settings.watch_timeout * 2)
        query = [
            ("watch", "1"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", self.resource_version),
            ("timeoutSeconds", str(timeout)),
        ]
        response = self.api.stream(
            path, query, (self.settings.connect_timeout, timeout + self.settings.read_timeout)
        )
        with self._open_lock:
            self._open = response
        try:
            if self.stop.is_set():
                return
            if response.status == 410:
                raise WatchGoneError
            if response.status != 200:
                detail = status_message(json_or_none(response.read()))
                raise APIStatusError(response.status, "watch", path, detail)
            self._healthy()
            self.sync.fresh = self.status.clock()
            for line in lines(response):
                if self.stop.is_set():
                    return
                self._event(orjson.loads(line))
            # the apiserver ended the watch at its timeoutSeconds: it was current
            # until now, and is resumed from the last resourceVersion at once
            self.sync.fresh = self.status.clock()
        finally:
            with self._open_lock:
                self._open = None
            response.release_conn()

    def _event(self, event: object) -> None:
        if not isinstance(event, dict):
            raise ValueError("watch event is not an object")
        kind, obj = event.get("type"), event.get("object")
        if not isinstance(obj, dict):
            raise ValueError(f"watch event {kind} has no object")
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise WatchGoneError
            raise APIStatusError(
                int(obj.get("code") or 500), "watch", self.info.plural, status_message(obj)
            )
        metadata = obj.get("metadata") or {}
        version = metadata.get("resourceVersion")
        self.sync.last_event = self.sync.fresh = self.status.clock()
        if kind in ("ADDED", "MODIFIED"):
            record = self._record(obj)
            if record is not None:
                self.index.put(self.info, record)
                self.on_change(self.info, record.id.namespace, record.id.name)
        elif kind == "DELETED":
            namespace, name = metadata.get("namespace") or "", metadata.get("name") or ""
            self.index.remove(self.info, namespace, name)
            self.on_change(self.info, namespace, name)
        if version:
            self.resource_version = str(version)  # BOOKMARK carries only this


class ClusterState:
    """Every reflector, their threads, and what they report."""

    def __init__(
        self,
        api: KubeAPI,
        index: StateIndex,
        settings: WatchSettings,
        on_change: Callable[[KindInfo, str, str], None] = lambda *_: None,
        counters: Callable[[str, KindInfo], None] = lambda *_: None,
        kinds: Sequence[KindInfo] = KINDS,
    ) -> None:
        self.api, self.index, self.settings = api, index, settings
        self.status = SyncStatus(settings.failure_grace)
        self.stop_event = threading.Event()
        self.reflectors = [
            Reflector(api, info, index, self.status, settings, self.stop_event, on_change, counters)
            for info in kinds
        ]
        for info in kinds:
            self.status.of(info)
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for reflector in self.reflectors:
            thread = threading.Thread(
                target=reflector.run, daemon=True, name=f"watch-{reflector.info.kind}"
            )
            thread.start()
            self.threads.append(thread)

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(s.synced for s in self.status.kinds.values()):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop every watch together: open streams are shut down at once, and all
        threads share one deadline. A thread still inside a list or a connect by
        then is a daemon, and ends with the process."""
        self.stop_event.set()
        for reflector in self.reflectors:
            reflector.interrupt()
        deadline = time.monotonic() + self.settings.stop_timeout
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def version_of(self, info: KindInfo) -> str | None:
        return next((r.version for r in self.reflectors if r.info == info), None)

    def live_get(self, info: KindInfo, namespace: str, name: str) -> Record | None:
        """One GET for an object the watch has not delivered yet; None when it is not there."""
        version = self.version_of(info)
        if version is None:
            return None
        timeout = self.settings.live_get_timeout
        path = resource_path(info, version, namespace if info.namespaced else None, name)
        status, body = self.api.get_json(path, timeout=(timeout, timeout))
        if status == 404:
            return None
        if status != 200 or not isinstance(body, dict):
            raise APIStatusError(status, "get", path, status_message(body))
        body.setdefault("kind", info.kind)
        return to_record(info, parse_object(info, body, "object"))
