"""`snapshot-webhook audit --crds DIR`: the upgrade pre-flight, at the edge.

Reads the CRDs about to be installed and the objects stored now (from --state
files, or from the cluster with their CRDs' status.storedVersions), hands both
to `webhook.decide.preflight`, and prints what it finds.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

import orjson

from webhook.cluster.api import APIStatusError, KubeAPI, KubeConfigError, api_client, list_objects
from webhook.model.manifests import ManifestError, read

EXIT_OK, EXIT_REFUSED, EXIT_UNREADABLE = 0, 1, 2
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def _say(text: str) -> None:
    print(f"snapshot-webhook audit: {text}", file=sys.stderr)


def run_preflight(args: argparse.Namespace, out: IO[str]) -> int:
    try:
        from webhook.decide import preflight
    except ImportError as err:
        _say(
            f"--crds needs the preflight extra ({err.name} is missing): "
            "pip install 'snapshot-webhook[preflight]'"
        )
        return EXIT_UNREADABLE
    crds = {}
    try:
        for doc in read([args.crds]):
            if doc.kind == "CustomResourceDefinition":
                crd = preflight.read_crd(doc.raw, doc.source)
                crds[(crd.group, crd.kind)] = crd
    except (ManifestError, preflight.CRDError) as err:
        _say(str(err))
        return EXIT_UNREADABLE
    if not crds:
        _say(f"--crds {args.crds}: no CustomResourceDefinition found")
        return EXIT_UNREADABLE
    minor: int | None = None
    if args.kube or args.kubeconfig:
        try:
            api = KubeAPI(api_client(args.kubeconfig))
            objects, stored, counts, storage, minor = from_cluster(api, crds)
        except (KubeConfigError, APIStatusError, OSError) as err:
            _say(str(err))
            return EXIT_UNREADABLE
        except Exception as err:  # the client's own errors (connection refused, TLS)
            _say(f"cannot read the cluster: {type(err).__name__}: {err}")
            return EXIT_UNREADABLE
        findings = preflight.check_versions(crds, stored, counts, storage)
    else:
        objects = [doc.raw for doc in read(args.state)]
        findings = []
    findings += preflight.check_objects(crds, objects)
    if args.output == "json":
        listed = [f.as_dict() for f in findings]
        out.write(orjson.dumps(listed, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        for finding in findings:
            print(str(finding) + ("" if finding.refuses else " (warning)"), file=out)
    refused = [f for f in findings if f.refuses]
    checked = sum(1 for o in objects if preflight.kind_of(o) in crds)
    if not findings:
        _say(f"the new CRDs accept all {checked} stored objects of their kinds")
    elif not refused:
        _say(f"{len(findings)} warnings, nothing refused, over {checked} stored objects")
    else:
        _say(
            f"{len(refused)} of {len(findings)} findings would be refused, over {checked} "
            f"stored objects; {preflight.ratcheting_note(minor)}"
        )
    return EXIT_REFUSED if refused else EXIT_OK


def from_cluster(
    api: KubeAPI, crds: dict[tuple[str, str], Any]
) -> tuple[
    list[dict[str, Any]],
    dict[tuple[str, str], tuple[str, ...]],
    dict[tuple[str, str], int],
    dict[tuple[str, str], str | None],
    int | None,
]:
    """The stored objects of the kinds `crds` define, read at a version both the
    installed and the new CRD serve, and what the installed CRDs say of versions."""
    objects: list[dict[str, Any]] = []
    stored: dict[tuple[str, str], tuple[str, ...]] = {}
    counts: dict[tuple[str, str], int] = {}
    storage: dict[tuple[str, str], str | None] = {}
    for key, crd in sorted(crds.items()):
        status, installed = api.get_json(f"{CRDS}/{crd.plural}.{crd.group}")
        if status == 404:
            continue  # not installed: nothing stored
        if status != 200 or not isinstance(installed, dict):
            raise APIStatusError(status, "GET", f"{CRDS}/{crd.plural}.{crd.group}")
        versions = (installed.get("spec") or {}).get("versions") or []
        served_now = [v.get("name") for v in versions if isinstance(v, dict) and v.get("served")]
        storage[key] = next(
            (v.get("name") for v in versions if isinstance(v, dict) and v.get("storage")), None
        )
        stored[key] = tuple((installed.get("status") or {}).get("storedVersions") or ())
        both = [v for v in served_now if v in crd.served]
        if not served_now:
            counts[key] = 0  # nothing can be read today, so nothing is listed
            continue
        at = crd.storage if crd.storage in both else (both[0] if both else served_now[0])
        listed = list_objects(api, f"/apis/{crd.group}/{at}/{crd.plural}")
        for obj in listed:
            obj.setdefault("apiVersion", f"{crd.group}/{at}")
            obj.setdefault("kind", crd.kind)
        counts[key] = len(listed)
        objects += listed
    minor = None
    status, version = api.get_json("/version")
    if status == 200 and isinstance(version, dict):
        digits = "".join(c for c in str(version.get("minor") or "") if c.isdigit())
        minor = int(digits) if digits else None
    return objects, stored, counts, storage, minor
