"""The offline commands: `review` (AdmissionReview in, response out) and `check` (manifests)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any

import orjson
import yaml

from webhook.cluster.api import KubeAPI, KubeConfigError, api_client
from webhook.cluster.watch import ClusterState, WatchSettings
from webhook.decide.admission import (
    AdmissionRequest,
    BadReviewError,
    GroupVersionKind,
    NotJSONError,
    Review,
    Verdict,
    errored,
    response,
    review_from_bytes,
)
from webhook.decide.audit import audit, by_rule
from webhook.decide.authorize import AllowList, Authorizer, Requester, needs_authorization, settle
from webhook.decide.judge import decide
from webhook.decide.service import Webhook
from webhook.model import kinds
from webhook.model.manifests import Document, ManifestError, documents, expand, read_bytes
from webhook.model.reading import UnreadableObjectError, parse_object
from webhook.model.report_kinds import OPENREPORTS, WGPOLICY
from webhook.render.reports import reports
from webhook.rules import Policy
from webhook.state.fixtures import ObjectStore, with_namespace

EXIT_OK, EXIT_DENIED, EXIT_UNREADABLE = 0, 1, 2
DEFAULT_ALLOW_LIST = AllowList()
NOBODY = Requester("")  # manifests checked with no --as


def _reviews(label: str, data: bytes) -> Iterator[Review | BadReviewError]:
    """The reviews in a file, each read as the server reads a body: one JSON
    document, or JSON Lines (one document per line)."""
    try:
        yield review_from_bytes(data)
        return
    except BadReviewError as whole_error:
        lines = [(n, line) for n, line in enumerate(data.splitlines(), 1) if line.strip()]
        if len(lines) < 2 or not isinstance(whole_error, NotJSONError):
            yield BadReviewError(f"{label}: {whole_error}")
            return
    for number, line in lines:
        try:
            yield review_from_bytes(line)
        except BadReviewError as err:
            yield BadReviewError(f"{label}:{number}: {err}")


def run_review(
    files: Sequence[str],
    state_paths: Sequence[str],
    policy: Policy,
    stdin: IO[bytes] | None,
    out: IO[str],
    authorizer: Authorizer = DEFAULT_ALLOW_LIST,
) -> int:
    store = ObjectStore()
    store.load(state_paths)
    webhook = Webhook(store.index, policy, embedded=True, authorizer=authorizer)
    status = EXIT_OK
    names = list(expand(files, (".json",)))
    if not names:
        print(
            f"snapshot-webhook review: no AdmissionReview files in {', '.join(files)}",
            file=sys.stderr,
        )
        return EXIT_UNREADABLE
    for name in names:
        label = "<stdin>" if name == "-" else name
        try:
            data = read_bytes(name, stdin)
        except ManifestError as err:
            print(f"snapshot-webhook review: {err}", file=sys.stderr)
            status = EXIT_UNREADABLE
            continue
        for review in _reviews(label, data):
            if isinstance(review, BadReviewError):
                print(f"snapshot-webhook review: {review}", file=sys.stderr)
                status = EXIT_UNREADABLE
                continue
            verdict = webhook.judge(review)
            out.write(orjson.dumps(response(review.api_version, review.uid, verdict)).decode())
            out.write("\n")
            if verdict.code == 400:
                status = EXIT_UNREADABLE
            elif not verdict.allowed:
                status = max(status, EXIT_DENIED)
    return status


def _name_of(raw: dict[str, Any]) -> tuple[str, str]:
    metadata = raw.get("metadata")
    if not isinstance(metadata, dict):
        return "", ""
    namespace, name = metadata.get("namespace"), metadata.get("name")
    return (
        namespace if isinstance(namespace, str) else "",
        name if isinstance(name, str) else "",
    )


def run_check(
    manifests: Sequence[str],
    state_paths: Sequence[str],
    policy: Policy,
    stdin: IO[bytes] | None,
    out: IO[str],
    authorizer: Authorizer = DEFAULT_ALLOW_LIST,
    requester: Requester = NOBODY,
) -> int:
    store = ObjectStore(keep_raw=True)
    store.load(state_paths)
    status = EXIT_OK
    checked = denied_count = unreadable = warnings = skipped = files_unreadable = found = 0
    for name in expand(manifests):
        try:
            docs = list(documents(name, read_bytes(name, stdin)))
        except ManifestError as err:
            print(f"snapshot-webhook check: {err}", file=sys.stderr)
            status = EXIT_UNREADABLE
            files_unreadable += 1
            continue
        if not docs:
            print(f"snapshot-webhook check: {name}: no objects in it", file=sys.stderr)
        found += len(docs)
        for doc in docs:
            info = kinds.by_api_version(doc.api_version, doc.kind)
            why = _not_checked(info, doc)
            if why:
                if info is not None:  # a snapshot kind: say why it is not judged
                    print(f"{doc.source} {doc.kind}: skipped: {why}", file=sys.stderr)
                skipped += 1
                continue
            assert info is not None
            raw = with_namespace(info, doc.raw)
            namespace, obj_name = _name_of(raw)
            shown = f"{namespace}/{obj_name}" if namespace else obj_name
            label = f"{doc.source} {info.kind} {shown}"
            if not info.reviewed:
                verdict = _load_state_object(store, info, raw)
            else:
                checked += 1
                old = store.raw.get((info.api_group, info.kind, namespace, obj_name))
                request = AdmissionRequest(
                    uid=f"check-{checked}",
                    kind=GroupVersionKind(
                        group=info.api_group,
                        version=doc.api_version.rpartition("/")[2],
                        kind=info.kind,
                    ),
                    name=obj_name,
                    namespace=namespace or None,
                    operation="UPDATE" if old is not None else "CREATE",
                    object=raw,
                    old_object=old,
                )
                verdict = decide(request, store.index, policy)
                if needs_authorization(verdict):
                    verdict = settle(verdict, requester, authorizer)
                if verdict.allowed:
                    store.put(info, parse_object(info, raw, "object"), raw)
            if verdict.code == 400:
                print(f"{label} error: {verdict.message}", file=out)
                unreadable += info.reviewed
                status = EXIT_UNREADABLE
                continue
            for finding in verdict.findings:
                suffix = "" if finding.denies else " (warning)"
                print(f"{label} {finding.rule_id}: {finding.message}{suffix}", file=out)
                warnings += not finding.denies
            if not verdict.allowed:
                denied_count += 1
                status = max(status, EXIT_DENIED)
    if not found and not files_unreadable:
        print(
            f"snapshot-webhook check: no objects in {', '.join(manifests)}: nothing was checked",
            file=sys.stderr,
        )
        return EXIT_UNREADABLE
    unread = f", {plural(files_unreadable, 'file')} unreadable" if files_unreadable else ""
    print(
        f"checked {plural(checked, 'object')}: {checked - denied_count - unreadable} allowed, "
        f"{denied_count} denied, {unreadable} unreadable, {plural(warnings, 'warning')}{unread}; "
        f"{plural(skipped, 'object')} skipped (other kinds, or not checkable as said above)",
        file=sys.stderr,
    )
    return status


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _not_checked(info: kinds.KindInfo | None, doc: Document) -> str:
    """Why a document is not checked ("" when it is)."""
    if info is None:
        return "not a kind this webhook checks"
    version = doc.api_version.rpartition("/")[2]
    if version not in info.served_versions:
        served = ", ".join(f"{info.api_group}/{v}".lstrip("/") for v in info.served_versions)
        return f"{doc.api_version} is not a version the {info.kind} CRD serves ({served})"
    _, name = _name_of(doc.raw)
    if not name:
        return "metadata.name is missing"
    return ""


def _load_state_object(store: ObjectStore, info: kinds.KindInfo, raw: dict[str, Any]) -> Verdict:
    """Claims, volumes and storage classes in a manifest join the state unchecked."""
    try:
        obj = parse_object(info, raw, "object")
    except UnreadableObjectError as err:
        return errored(400, str(err))
    store.put(info, obj, raw)
    return Verdict(True)


def run_audit(args: argparse.Namespace, policy: Policy, out: IO[str]) -> int:
    """`snapshot-webhook audit`: report what already breaks the cross-object rules."""
    store = ObjectStore()
    if args.kube or args.kubeconfig:
        if args.state:
            print(
                "snapshot-webhook audit: --state and --kube/--kubeconfig exclude each other",
                file=sys.stderr,
            )
            return EXIT_UNREADABLE
        try:
            api = KubeAPI(api_client(args.kubeconfig))
        except KubeConfigError as err:
            print(f"snapshot-webhook audit: {err}", file=sys.stderr)
            return EXIT_UNREADABLE
        cluster = ClusterState(api, store.index, WatchSettings())
        cluster.start()
        try:
            if not cluster.wait_synced(args.sync_timeout):
                problems = "; ".join(cluster.status.problems())
                print(
                    f"snapshot-webhook audit: cluster not listed within {args.sync_timeout}s: "
                    f"{problems}",
                    file=sys.stderr,
                )
                return EXIT_UNREADABLE
            findings = audit(store.index, policy)
        finally:
            cluster.stop()
    else:
        store.load(args.state)
        findings = audit(store.index, policy)
    if args.output == "json":
        out.write(
            orjson.dumps([f.as_dict() for f in findings], option=orjson.OPT_INDENT_2).decode()
            + "\n"
        )
    elif args.output in ("policyreport", "openreports"):
        fmt = WGPOLICY if args.output == "policyreport" else OPENREPORTS
        made = reports(fmt, findings, int(time.time()))
        out.write(yaml.safe_dump_all(made, sort_keys=False, width=100) if made else "")
    else:
        for f in findings:
            suffix = "" if f.denies else " (warning)"
            print(f"{f.kind} {f.name} {f.rule_id}: {f.message}{suffix}", file=out)
    counts = by_rule(findings)
    summary = ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items()))
    if not findings:
        print("audit found no problems", file=sys.stderr)
    else:
        noun = "problem" if len(findings) == 1 else "problems"
        print(f"audit found {len(findings)} {noun}: {summary}", file=sys.stderr)
    failing = findings if args.fail_on == "warn" else [f for f in findings if f.denies]
    return EXIT_DENIED if failing else EXIT_OK
