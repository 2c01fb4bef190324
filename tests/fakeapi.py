"""A real HTTP server on 127.0.0.1 that speaks the Kubernetes list/watch protocol.

Enough of the apiserver for the official client: API group discovery, lists
with `limit`/`continue` and a resourceVersion, chunked watch streams of
ADDED/MODIFIED/DELETED/BOOKMARK events resumed from a resourceVersion, an
ERROR 410 for a version older than the compaction point, GET of one object,
404 for a group that is not served and 403 for a resource the caller may not
list. Tests drive it: change objects, compact history, drop or silence open
watches, install a CRD later, or fail every request.

The objects the webhook itself writes (Secrets, ValidatingWebhookConfigurations,
Leases) are created, read, replaced and deleted as the real apiserver does it:
a second create of a name is 409 AlreadyExists, a replace or delete whose
resourceVersion precondition is stale is 409 Conflict, and every write gets a
new resourceVersion. A webhook configuration's entries get the defaults the
apiserver gives them, and an object whose owners (ownerReferences) are all gone
is deleted, as the garbage collector does. ClusterRoles can be read.
SubjectAccessReviews are answered by a test's callback. Every call is logged
as an RBAC request (`calls`: group, resource, verb, name).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlparse
from uuid import uuid4

from webhook.model import kinds
from webhook.model.kinds import KindInfo

Obj = dict[str, Any]


def info_of(obj: Obj) -> KindInfo:
    info = kinds.by_api_version(obj["apiVersion"], obj["kind"])
    assert info is not None, obj["kind"]
    return info


@dataclass
class Resource:
    info: KindInfo
    objects: dict[tuple[str, str], Obj] = field(default_factory=dict)
    history: list[tuple[int, str, Obj]] = field(default_factory=list)
    compacted: int = 0  # watches from before this resourceVersion get 410


def failure(code: int, reason: str, message: str) -> Obj:
    """A Status object, as the apiserver answers a failed request."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


# (group, plural) of what the webhook writes -> namespaced
WRITABLE = {
    ("", "secrets"): True,
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): False,
    ("coordination.k8s.io", "leases"): True,
    ("rbac.authorization.k8s.io", "clusterroles"): False,
    # the report kinds: served only while their group is installed (`groups`)
    ("wgpolicyk8s.io", "policyreports"): True,
    ("wgpolicyk8s.io", "clusterpolicyreports"): False,
    ("openreports.io", "reports"): True,
    ("openreports.io", "clusterreports"): False,
}
REPORT_GROUPS = {"wgpolicyk8s.io": "v1alpha2", "openreports.io": "v1alpha1"}


def webhook_defaults(config: Obj) -> None:
    """What the apiserver fills into a ValidatingWebhookConfiguration's entries."""
    for hook in config.get("webhooks") or []:
        hook.setdefault("failurePolicy", "Fail")
        hook.setdefault("matchPolicy", "Equivalent")
        hook.setdefault("namespaceSelector", {})
        hook.setdefault("objectSelector", {})
        hook.setdefault("timeoutSeconds", 10)
        for rule in hook.get("rules") or []:
            rule.setdefault("scope", "*")


class Call(NamedTuple):
    group: str
    resource: str
    verb: str
    name: str


Authorizer = Callable[[Obj], bool]  # a SubjectAccessReview's spec -> allowed


class FakeAPIServer:
    def __init__(self, groups: dict[str, list[str]] | None = None, page_size: int = 2) -> None:
        self.cond = threading.Condition()
        self.version = 1000
        self.groups = (
            groups
            if groups is not None
            else {
                kinds.SNAPSHOT_GROUP: ["v1"],
                kinds.GROUP_SNAPSHOT_GROUP: ["v1", "v1beta2", "v1beta1"],
                "storage.k8s.io": ["v1"],
            }
        )
        self.resources = {(i.api_group, i.plural): Resource(i) for i in kinds.KINDS}
        self.page_size = page_size  # the server may return fewer items than `limit` asks
        self.forbidden: set[str] = set()
        self.failing = False  # answer 500 to everything
        self.generation = 0  # bumped to drop every open watch
        self.silent = False  # open watches stop sending (new ones work)
        self.bookmark_interval: float | None = 0.3  # idle watches stay under read timeouts
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self.lists_open = threading.Event()  # cleared: list requests wait (at most 30 s)
        self.lists_open.set()
        self._continues: dict[str, list[Obj]] = {}
        # what the webhook writes: (group, plural) -> (namespace, name) -> object
        self.stored: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {k: {} for k in WRITABLE}
        self.writes: list[tuple[str, str]] = []  # (method, path) of every write answered
        self.writers: list[tuple[str, str, str]] = []  # (bearer token, method, path) of each
        self.write_delay = 0.0  # seconds each write waits before it is answered
        self.writes_failing = False  # answer 503 to every write
        self.server_version = ("1", "31")
        self.crds: dict[str, Obj] = {}  # installed CRDs by name, as GET returns them
        self.authorize: Authorizer = lambda spec: False
        self.reviews: list[Obj] = []  # SubjectAccessReview specs received
        self.calls: list[Call] = []  # every request, as RBAC would see it
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.closed = False

    # --- lifecycle ------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeAPIServer:
        self._thread.start()
        return self

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def kubeconfig(self, path: Path, token: str = "fake-token") -> Path:
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "tester", "user": {"token": token}}],
                    "contexts": [
                        {"name": "fake", "context": {"cluster": "fake", "user": "tester"}}
                    ],
                }
            )
        )
        return path

    # --- driving the cluster ----------------------------------------------------

    def _key(self, info: KindInfo, obj: Obj) -> tuple[str, str]:
        meta = obj["metadata"]
        return (meta.get("namespace", "") if info.namespaced else "", meta["name"])

    def put(self, obj: Obj, *, emit: bool = True) -> Obj:
        """Create or replace an object; `emit=False` skips its watch event."""
        info = info_of(obj)
        resource = self.resources[(info.api_group, info.plural)]
        with self.cond:
            self.version += 1
            stored = json.loads(json.dumps(obj))
            stored["metadata"]["resourceVersion"] = str(self.version)
            key = self._key(info, stored)
            kind = "MODIFIED" if key in resource.objects else "ADDED"
            resource.objects[key] = stored
            if emit:
                resource.history.append((self.version, kind, stored))
            self.cond.notify_all()
        return stored

    def delete(self, obj: Obj) -> None:
        info = info_of(obj)
        resource = self.resources[(info.api_group, info.plural)]
        with self.cond:
            self.version += 1
            stored = resource.objects.pop(self._key(info, obj))
            stored = {
                **stored,
                "metadata": {**stored["metadata"], "resourceVersion": str(self.version)},
            }
            resource.history.append((self.version, "DELETED", stored))
            self.cond.notify_all()

    def compact(self) -> None:
        """Forget all history: watches from any earlier resourceVersion get 410 Gone."""
        with self.cond:
            for resource in self.resources.values():
                resource.history.clear()
                resource.compacted = self.version + 1

    def drop_watches(self) -> None:
        with self.cond:
            self.generation += 1
            self.cond.notify_all()

    def install_group(self, group: str, versions: list[str]) -> None:
        with self.cond:
            self.groups[group] = versions

    def stored_object(self, group: str, plural: str, namespace: str, name: str) -> Obj | None:
        with self.cond:
            obj = self.stored[(group, plural)].get((namespace, name))
            return json.loads(json.dumps(obj)) if obj is not None else None

    def stored_objects(self, group: str, plural: str) -> list[Obj]:
        with self.cond:
            return [json.loads(json.dumps(o)) for o in self.stored[(group, plural)].values()]

    def store(self, group: str, plural: str, obj: Obj) -> Obj:
        """Create or replace a writable object, as `kubectl apply` would."""
        with self.cond:
            self.version += 1
            stored = json.loads(json.dumps(obj))
            meta = stored.setdefault("metadata", {})
            meta["resourceVersion"] = str(self.version)
            meta.setdefault("uid", str(uuid4()))
            key = (meta.get("namespace", "") if WRITABLE[(group, plural)] else "", meta["name"])
            if plural == "validatingwebhookconfigurations":
                webhook_defaults(stored)
            self.stored[(group, plural)][key] = stored
            return json.loads(json.dumps(stored))

    def watch_requests(self, plural: str) -> list[dict[str, list[str]]]:
        return [q for p, q in list(self.requests) if p.endswith(f"/{plural}") and "watch" in q]

    # --- HTTP -------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # As the apiserver's Go server does: without it, a response written as
            # headers then body waits out the client's delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                fake.requests.append((url.path, query))
                fake._log_call("GET", url.path, query)
                if fake.failing:
                    self._status(500, "InternalError", "the fake apiserver is failing")
                    return
                parts = [p for p in url.path.split("/") if p]
                if parts == ["version"]:
                    major, minor = fake.server_version
                    self._json(
                        200, {"major": major, "minor": minor, "gitVersion": f"v{major}.{minor}.0"}
                    )
                    return
                if parts[:4] == ["apis", "apiextensions.k8s.io", "v1", "customresourcedefinitions"]:
                    found = fake.crds.get(parts[4]) if len(parts) == 5 else None
                    if found is None:
                        self._status(404, "NotFound", f"the server could not find {url.path}")
                    else:
                        self._json(200, found)
                    return
                if fake._writable(parts) is not None:
                    self._write("GET", parts)
                    return
                if parts[:1] == ["apis"] and len(parts) == 2:
                    self._discovery(parts[1])
                    return
                target = fake._route(parts)
                if target is None:
                    self._status(404, "NotFound", f"the server could not find {url.path}")
                    return
                resource, namespace, name = target
                if resource.info.plural in fake.forbidden:
                    verb = "watch" if "watch" in query else ("get" if name else "list")
                    self._status(
                        403,
                        "Forbidden",
                        f"{resource.info.plural} is forbidden: User "
                        f'"system:serviceaccount:x:y" cannot {verb} resource',
                    )
                    return
                if name is not None:
                    self._get(resource, namespace, name)
                elif query.get("watch", ["0"])[0] in ("1", "true"):
                    self._watch(resource, query)
                else:
                    self._list(resource, query)

            def do_POST(self) -> None:
                self._write("POST", [p for p in urlparse(self.path).path.split("/") if p])

            def do_PUT(self) -> None:
                self._write("PUT", [p for p in urlparse(self.path).path.split("/") if p])

            def do_DELETE(self) -> None:
                self._write("DELETE", [p for p in urlparse(self.path).path.split("/") if p])

            def _body(self) -> Obj:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(data) if data else {}
                except ValueError:
                    body = None
                return body if isinstance(body, dict) else {}

            def _write(self, method: str, parts: list[str]) -> None:
                body = self._body() if method != "GET" else {}
                if method != "GET":
                    fake.requests.append(("/" + "/".join(parts), {"method": [method]}))
                    fake._log_call(method, "/" + "/".join(parts), {})
                    if fake.write_delay:
                        time.sleep(fake.write_delay)
                    if fake.writes_failing:
                        self._status(503, "ServiceUnavailable", "the fake apiserver is failing")
                        return
                if parts[-1:] == ["subjectaccessreviews"] and method == "POST":
                    self._access_review(body)
                    return
                target = fake._writable(parts)
                if target is None or fake.failing:
                    self._status(404 if target is None else 500, "NotFound", "/".join(parts))
                    return
                (group, plural), namespace, name = target
                query = parse_qs(urlparse(self.path).query)
                selector = query.get("labelSelector", [""])[0]
                code, answer = fake._apply(method, group, plural, namespace, name, body, selector)
                if method != "GET" and code < 300:
                    fake.writes.append((method, "/" + "/".join(parts)))
                    token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                    fake.writers.append((token, method, "/" + "/".join(parts)))
                self._json(code, answer)

            def _access_review(self, body: Obj) -> None:
                spec = body.get("spec") or {}
                fake.reviews.append(spec)
                try:
                    allowed = fake.authorize(spec)
                except Exception as err:
                    self._status(500, "InternalError", str(err))
                    return
                self._json(201, {**body, "status": {"allowed": bool(allowed)}})

            def _json(self, code: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, message: str) -> None:
                self._json(code, failure(code, reason, message))

            def _discovery(self, group: str) -> None:
                versions = fake.groups.get(group)
                if versions is None:
                    self._status(404, "NotFound", f"group {group} not found")
                    return
                entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
                self._json(
                    200,
                    {
                        "kind": "APIGroup",
                        "apiVersion": "v1",
                        "name": group,
                        "versions": entries,
                        "preferredVersion": entries[0],
                    },
                )

            def _get(self, resource: Resource, namespace: str, name: str) -> None:
                with fake.cond:
                    obj = resource.objects.get((namespace, name))
                if obj is None:
                    self._status(404, "NotFound", f'{resource.info.plural} "{name}" not found')
                else:
                    self._json(200, obj)

            def _list(self, resource: Resource, query: dict[str, list[str]]) -> None:
                fake.lists_open.wait(30)
                token = query.get("continue", [""])[0]
                with fake.cond:
                    if token:
                        pending = fake._continues.pop(token, None)
                        if pending is None:
                            self._status(410, "Expired", "the continue token has expired")
                            return
                    else:
                        pending = [resource.objects[k] for k in sorted(resource.objects)]
                    version = str(fake.version)
                limit = min(int(query.get("limit", ["500"])[0]), fake.page_size)
                page, rest = pending[:limit], pending[limit:]
                metadata: Obj = {"resourceVersion": version}
                if rest:
                    next_token = f"c{time.monotonic_ns()}"
                    fake._continues[next_token] = rest
                    metadata["continue"] = next_token
                self._json(
                    200,
                    {
                        "kind": f"{resource.info.kind}List",
                        "apiVersion": "v1",
                        "metadata": metadata,
                        "items": page,
                    },
                )

            def _chunk(self, event: Obj) -> None:
                data = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _watch(self, resource: Resource, query: dict[str, list[str]]) -> None:
                since = int(query.get("resourceVersion", ["0"])[0] or 0)
                deadline = time.monotonic() + int(query.get("timeoutSeconds", ["30"])[0])
                bookmarks = query.get("allowWatchBookmarks", ["false"])[0] == "true"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                generation = fake.generation
                if since and since < resource.compacted:
                    self._chunk(
                        {
                            "type": "ERROR",
                            "object": {
                                "kind": "Status",
                                "apiVersion": "v1",
                                "status": "Failure",
                                "code": 410,
                                "reason": "Expired",
                                "message": f"too old resource version: {since}",
                            },
                        }
                    )
                    self.wfile.write(b"0\r\n\r\n")
                    return
                sent = since
                last_bookmark = time.monotonic()
                opened_silent = fake.silent  # silence hits the watches open when it began
                while True:
                    with fake.cond:
                        if fake.closed:
                            return
                        if fake.generation != generation:
                            self.close_connection = True
                            return  # dropped mid-stream: no terminating chunk
                        silent = fake.silent and not opened_silent
                        events = [e for e in resource.history if e[0] > sent]
                        if not events:
                            fake.cond.wait(0.1)
                    if silent:
                        # a connection that stays open and says nothing, past its
                        # timeoutSeconds too: only the client's read timeout ends it
                        time.sleep(0.05)
                        continue
                    if time.monotonic() >= deadline:
                        break
                    for version, kind, obj in events:
                        self._chunk({"type": kind, "object": obj})
                        sent = version
                    interval = fake.bookmark_interval
                    if bookmarks and interval and time.monotonic() - last_bookmark > interval:
                        with fake.cond:
                            current = fake.version
                        self._chunk(
                            {
                                "type": "BOOKMARK",
                                "object": {
                                    "kind": resource.info.kind,
                                    "apiVersion": f"{resource.info.api_group}/v1",
                                    "metadata": {"resourceVersion": str(current)},
                                },
                            }
                        )
                        sent = max(sent, current)
                        last_bookmark = time.monotonic()
                self.wfile.write(b"0\r\n\r\n")

        return Handler

    @staticmethod
    def _parse(parts: list[str]) -> tuple[str, str, str, str, str | None] | None:
        """(group, version, namespace, plural, name) of a resource path."""
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 2:
            return None
        return group, version, namespace, rest[0], rest[1] if len(rest) == 2 else None

    def _writable(self, parts: list[str]) -> tuple[tuple[str, str], str, str | None] | None:
        """((group, plural), namespace, name) for a path of what the webhook writes."""
        parsed = self._parse(parts)
        if parsed is None:
            return None
        group, _, namespace, plural, name = parsed
        if (group, plural) == ("authorization.k8s.io", "subjectaccessreviews"):
            return (group, plural), "", None
        if (group, plural) not in WRITABLE:
            return None
        if group in REPORT_GROUPS and REPORT_GROUPS[group] not in self.groups.get(group, []):
            return None  # the CRD is not installed: 404, as the apiserver answers
        return (group, plural), namespace, name

    def _apply(
        self,
        method: str,
        group: str,
        plural: str,
        namespace: str,
        name: str | None,
        body: Obj,
        selector: str = "",
    ) -> tuple[int, Obj]:
        """One request on a writable resource, answered as the apiserver would."""

        def status(code: int, reason: str, message: str) -> tuple[int, Obj]:
            return code, {
                **failure(code, reason, message),
                "details": {"name": name or "", "kind": plural},
            }

        with self.cond:
            objects = self.stored[(group, plural)]
            if method == "GET" and name is None:
                every = not namespace and WRITABLE[(group, plural)]  # all namespaces'
                items = [
                    o
                    for (ns, _), o in sorted(objects.items())
                    if (every or ns == namespace) and _selected(o, selector)
                ]
                return 200, {
                    "kind": "List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(self.version)},
                    "items": items,
                }
            if method == "POST":
                meta = body.get("metadata") or {}
                name = meta.get("name")
                if not name:
                    return status(422, "Invalid", "metadata.name: Required value")
                if (namespace, name) in objects:
                    return status(409, "AlreadyExists", f'{plural} "{name}" already exists')
                self.version += 1
                stored = json.loads(json.dumps(body))
                stored["metadata"].update(resourceVersion=str(self.version), uid=str(uuid4()))
                if namespace:
                    stored["metadata"]["namespace"] = namespace
                if plural == "validatingwebhookconfigurations":
                    webhook_defaults(stored)
                objects[(namespace, name)] = stored
                self._collect_garbage()
                return 201, stored
            if name is None:
                return status(405, "MethodNotAllowed", f"{method} on a collection")
            current = objects.get((namespace, name))
            if current is None:
                return status(404, "NotFound", f'{plural} "{name}" not found')
            if method == "GET":
                return 200, current
            if method == "PUT":
                wanted = (body.get("metadata") or {}).get("resourceVersion")
                if wanted and wanted != current["metadata"]["resourceVersion"]:
                    return status(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {plural} "{name}": the object has '
                        "been modified; please apply your changes to the latest version and "
                        "try again",
                    )
                self.version += 1
                stored = json.loads(json.dumps(body))
                stored["metadata"].update(
                    resourceVersion=str(self.version), uid=current["metadata"]["uid"]
                )
                if namespace:
                    stored["metadata"]["namespace"] = namespace
                if plural == "validatingwebhookconfigurations":
                    webhook_defaults(stored)
                objects[(namespace, name)] = stored
                self._collect_garbage()
                return 200, stored
            preconditions = body.get("preconditions") or {}
            for field_name in ("resourceVersion", "uid"):
                wanted = preconditions.get(field_name)
                if wanted and wanted != current["metadata"].get(field_name):
                    return status(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {plural} "{name}": Precondition '
                        f"failed: {field_name}",
                    )
            del objects[(namespace, name)]
            self.version += 1
            self._collect_garbage()
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}

    def _collect_garbage(self) -> None:
        """Delete what has owners none of which exists any more (call with the lock)."""
        while True:
            uids = {
                o["metadata"].get("uid")
                for objects in self.stored.values()
                for o in objects.values()
            }
            orphans = [
                (objects, key)
                for objects in self.stored.values()
                for key, o in objects.items()
                if (owners := o["metadata"].get("ownerReferences"))
                and not any(ref.get("uid") in uids for ref in owners)
            ]
            if not orphans:
                return
            for objects, key in orphans:
                del objects[key]

    def delete_stored(self, group: str, plural: str, namespace: str, name: str) -> None:
        """Delete a writable object, as `kubectl delete` would (its dependents go too)."""
        with self.cond:
            del self.stored[(group, plural)][(namespace, name)]
            self.version += 1
            self._collect_garbage()

    def _log_call(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        parsed = self._parse([p for p in path.split("/") if p])
        if parsed is None:
            return
        group, _, _, plural, name = parsed
        if method == "GET":
            verb = "get" if name else ("watch" if "watch" in query else "list")
        else:
            verb = {"POST": "create", "PUT": "update", "DELETE": "delete"}.get(method, method)
        self.calls.append(Call(group, plural, verb, name or ""))

    def _route(self, parts: list[str]) -> tuple[Resource, str, str | None] | None:
        """(resource, namespace, name) for a collection or object path."""
        parsed = self._parse(parts)
        if parsed is None:
            return None
        group, version, namespace, plural, name = parsed
        if group and version not in self.groups.get(group, []):
            return None
        resource = self.resources.get((group, plural))
        if resource is None:
            return None
        return resource, namespace, name


class QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-request (a watch shut down at stop) is normal."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _selected(obj: Obj, selector: str) -> bool:
    """Equality-based label selectors (`a=b,c=d`), as lists filter with them."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


@contextmanager
def fake_apiserver(**kwargs: Any) -> Iterator[FakeAPIServer]:
    server = FakeAPIServer(**kwargs).start()
    try:
        yield server
    finally:
        server.close()
