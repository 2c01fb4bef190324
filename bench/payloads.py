"""What the benchmark sends, and the large state it loads.

Payloads are the shipped examples (examples/reviews), grown to the size a
kube-apiserver sends for objects managed by several tools: more managedFields
entries and labels, 3 to 8 KB each. The mix covers the six kinds and claims,
CREATE and UPDATE, allowed and denied.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "reviews"
SMALL_STATE = ROOT / "bench" / "state-small.json"  # 10 objects: classes, a claim, snapshots
MANAGERS = (
    "kubectl-client-side-apply",
    "argocd-controller",
    "snapshot-controller",
    "kustomize-controller",
    "helm",
)


def _grow(obj: dict[str, Any], target: int) -> None:
    """Add managedFields and labels the way several field managers would."""
    metadata = obj.setdefault("metadata", {})
    labels = metadata.setdefault("labels", {})
    fields = metadata.setdefault("managedFields", [])
    n = 0
    while len(json.dumps(obj)) < target:
        manager = MANAGERS[n % len(MANAGERS)]
        labels[f"app.kubernetes.io/part-of-{n}"] = f"storage-platform-{n}"
        fields.append(
            {
                "apiVersion": obj.get("apiVersion", "v1"),
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {f"f:app.kubernetes.io/part-of-{n}": {}}}},
                "manager": manager,
                "operation": "Apply" if n % 2 else "Update",
                "time": "2026-11-21T11:24:35Z",
            }
        )
        n += 1


def payloads(out: Path) -> list[Path]:
    """Write the benchmark's request bodies; returns their paths, in sending order."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index, path in enumerate(sorted(EXAMPLES.glob("*.json"))):
        body = json.loads(path.read_bytes())
        request = body["request"]
        if request["operation"] == "DELETE":
            continue
        target = 3000 + (index * 733) % 4500  # 3 to 8 KB on the wire
        for key in ("object", "oldObject"):
            if request.get(key):
                _grow(request[key], target // (2 if request.get("oldObject") else 1))
        request["dryRun"] = True  # the same verdicts on every pass: nothing is applied
        target_path = out / path.name
        target_path.write_text(json.dumps(body))
        written.append(target_path)
    return written


def _snapshot(n: int) -> dict[str, Any]:
    namespace = f"team-{n % 500:03d}"
    content = f"snapcontent-{uuid.UUID(int=n + 1)}"
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": f"data-snap-{n:06d}",
            "namespace": namespace,
            "uid": str(uuid.UUID(int=n + 10**9)),
            "resourceVersion": str(10**6 + n),
            "creationTimestamp": "2026-11-21T11:24:35Z",
            "labels": {"app": "postgres", "backup-run": "nightly"},
        },
        "spec": {
            "source": {"persistentVolumeClaimName": f"data-{n:06d}"},
            "volumeSnapshotClassName": "ebs-snapclass",
        },
        "status": {
            "boundVolumeSnapshotContentName": content,
            "readyToUse": True,
            "restoreSize": "100Gi",
            "creationTime": "2026-11-21T11:40:00Z",
        },
    }


def _content(n: int) -> dict[str, Any]:
    snap = _snapshot(n)
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotContent",
        "metadata": {
            "name": snap["status"]["boundVolumeSnapshotContentName"],
            "uid": str(uuid.UUID(int=n + 2 * 10**9)),
            "resourceVersion": str(2 * 10**6 + n),
            "creationTimestamp": "2026-11-21T11:24:38Z",
        },
        "spec": {
            "deletionPolicy": "Delete",
            "driver": "ebs.csi.aws.com",
            "source": {"volumeHandle": f"vol-{n:017x}"},
            "sourceVolumeMode": "Filesystem",
            "volumeSnapshotClassName": "ebs-snapclass",
            "volumeSnapshotRef": {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshot",
                "name": snap["metadata"]["name"],
                "namespace": snap["metadata"]["namespace"],
                "uid": snap["metadata"]["uid"],
            },
        },
        "status": {
            "readyToUse": True,
            "restoreSize": 107374182400,
            "snapshotHandle": f"snap-{n:017x}",
        },
    }


def large_state(out: Path, snapshots: int, per_file: int = 1000) -> Path:
    """The small state, plus `snapshots` snapshots and as many contents, as List
    files of `per_file` objects (so loading never holds more than one file)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "000-base.json").write_bytes(SMALL_STATE.read_bytes())
    for start in range(0, snapshots, per_file):
        items = []
        for n in range(start, min(start + per_file, snapshots)):
            items += [_snapshot(n), _content(n)]
        path = out / f"{start // per_file + 1:03d}-snapshots.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return out
