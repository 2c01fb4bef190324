"""The upgrade pre-flight (`audit --crds DIR`): stored objects judged by the CRDs
about to be installed, with the fixtures under tests/fixtures/crds/: `current`
(modelled on today's snapshot CRDs) and `tightened` (a required enum field, a
lower-case rule, a rule this evaluator cannot evaluate, v1beta1 dropped)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import snapshot_content, volume_snapshot
from fakeapi import fake_apiserver
from serving import ROOT, cli

from webhook.decide import preflight
from webhook.model.manifests import read

Obj = dict[str, Any]
CRDS = ROOT / "tests" / "fixtures" / "crds"


def crds(which: str) -> dict[tuple[str, str], preflight.CRD]:
    found = {}
    for doc in read([str(CRDS / which)]):
        crd = preflight.read_crd(doc.raw, doc.source)
        found[(crd.group, crd.kind)] = crd
    return found


def group_class(version: str = "v1", **extra: Any) -> Obj:
    return {
        "apiVersion": f"groupsnapshot.storage.k8s.io/{version}",
        "kind": "VolumeGroupSnapshotClass",
        "metadata": {"name": "ebs-group"},
        "driver": "ebs.csi.aws.com",
        "deletionPolicy": "Delete",
        **extra,
    }


def content(**spec: Any) -> Obj:
    obj = snapshot_content("snapcontent-1", ref=("shop", "snap"))
    obj["spec"].update(spec)
    obj["spec"] = {k: v for k, v in obj["spec"].items() if v is not None}
    return obj


def checks(findings: list[preflight.PreflightFinding]) -> set[tuple[str, str, bool]]:
    return {(f.check, f.path, f.refuses) for f in findings}


Case = tuple[str, Callable[[], Obj], str, set[tuple[str, str, bool]]]
CASES: list[Case] = [
    ("a content as the sidecar writes it", lambda: content(), "current", set()),
    ("the same, by the tightened CRDs", lambda: content(), "tightened", set()),
    (
        "no sourceVolumeMode: now required",
        lambda: content(sourceVolumeMode=None),
        "tightened",
        {("crd.schema", "spec", True)},
    ),
    (
        "a sourceVolumeMode outside the new enum",
        lambda: content(sourceVolumeMode="filesystem"),
        "tightened",
        {("crd.schema", "spec.sourceVolumeMode", True)},
    ),
    (
        "an upper-case driver: the new lowerAscii rule",
        lambda: content(driver="EBS.csi.aws.com"),
        "tightened",
        {("crd.rule", "spec", True)},
    ),
    (
        "both sources: the one-of rule",
        lambda: content(source={"snapshotHandle": "s", "volumeHandle": "v"}),
        "current",
        {("crd.rule", "spec.source", True)},
    ),
    (
        "a ref without its namespace: the escaped __namespace__ rule",
        lambda: content(volumeSnapshotRef={"name": "snap"}),
        "current",
        {("crd.rule", "spec.volumeSnapshotRef", True)},
    ),
    (
        "a deletionPolicy outside the enum",
        lambda: content(deletionPolicy="Keep"),
        "current",
        {("crd.schema", "spec.deletionPolicy", True)},
    ),
    (
        "a null where the schema is not nullable is pruned, not refused",
        lambda: content(volumeSnapshotClassName=None) | {"status": {"snapshotHandle": None}},
        "current",
        set(),
    ),
    (
        "an unknown field would be dropped",
        lambda: content(retention="7d"),
        "current",
        {("crd.schema.pruned", "spec.retention", False)},
    ),
    (
        "a restore size that is neither integer nor string",
        lambda: volume_snapshot("s", pvc="p") | {"status": {"restoreSize": 1.5}},
        "current",
        {("crd.schema", "status.restoreSize", True)},
    ),
    (
        "a quantity restore size passes the int-or-string pattern",
        lambda: volume_snapshot("s", pvc="p") | {"status": {"restoreSize": "100Gi"}},
        "current",
        set(),
    ),
    (
        "a creation time that is not a date-time",
        lambda: volume_snapshot("s", pvc="p") | {"status": {"creationTime": "yesterday"}},
        "current",
        {("crd.schema", "status.creationTime", True)},
    ),
    (
        "an int64 out of range",
        lambda: content() | {"status": {"restoreSize": 2**63}},
        "current",
        {("crd.schema", "status.restoreSize", True)},
    ),
    (
        "an empty class name: size(self) > 0",
        lambda: volume_snapshot("s", pvc="p", cls=""),
        "current",
        {("crd.rule", "spec.volumeSnapshotClassName", True)},
    ),
    (
        "a rule using the quantity library is named, not passed",
        lambda: volume_snapshot("s", pvc="p") | {"status": {"restoreSize": "1Gi"}},
        "tightened",
        {("crd.rule.unevaluable", "status", False)},
    ),
    (
        "a group class stored as v1beta1, which the tightened CRDs drop",
        lambda: group_class("v1beta1"),
        "tightened",
        {("crd.version.unserved", "apiVersion", True)},
    ),
    ("a group class as v1beta1, still served", lambda: group_class("v1beta1"), "current", set()),
]


@pytest.mark.parametrize(
    ("make", "which", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES]
)
def test_objects_judged_as_the_new_crds_would(
    make: Callable[[], Obj], which: str, expected: set[tuple[str, str, bool]]
) -> None:
    found = preflight.check_objects(crds(which), [make()])
    assert checks(found) == expected, [str(f) for f in found]
    for finding in found:
        assert finding.path.split(".")[0] in finding.message or finding.path == "apiVersion"


def test_messages_carry_the_rule_s_message_and_the_rule() -> None:
    (found,) = preflight.check_objects(
        crds("current"), [content(volumeSnapshotRef={"name": "snap"})]
    )
    assert "both spec.volumeSnapshotRef.name and spec.volumeSnapshotRef.namespace" in found.message
    assert "has(self.__namespace__)" in found.message
    (enum,) = preflight.check_objects(crds("tightened"), [content(sourceVolumeMode="filesystem")])
    assert "'filesystem' is not one of ['Filesystem', 'Block']" in enum.message


def test_property_names_are_escaped_as_kubernetes_escapes_them() -> None:
    assert preflight.escape("namespace") == "__namespace__"
    assert preflight.escape("a.b-c/d") == "a__dot__b__dash__c__slash__d"
    assert preflight.escape("x__y") == "x__underscores__y"
    assert preflight.escape("name") == "name"


def test_a_crd_that_cannot_be_read_names_the_field() -> None:
    with pytest.raises(preflight.CRDError, match=r"here: spec.versions must be a list"):
        preflight.read_crd({"spec": {"names": {}, "group": "g", "versions": "v1"}}, "here")


# --- the command --------------------------------------------------------------------


def write_state(tmp_path: Path, *objs: Obj) -> Path:
    path = tmp_path / "state.yaml"
    path.write_text(yaml.safe_dump_all(objs))
    return path


def test_the_command_exits_1_only_when_something_would_be_refused(tmp_path: Path) -> None:
    fine = cli("audit", "--crds", str(CRDS / "current"), "--state", "tests/fixtures/cluster.yaml")
    assert fine.returncode == 0, fine.stderr
    assert "accept all" in fine.stderr and fine.stdout == ""
    state = write_state(tmp_path, content(sourceVolumeMode=None), group_class("v1beta1"))
    refused = cli("audit", "--crds", str(CRDS / "tightened"), "--state", str(state), "-o", "json")
    assert refused.returncode == 1, refused.stderr
    listed = json.loads(refused.stdout)
    assert {f["check"] for f in listed} == {"crd.schema", "crd.version.unserved"}
    assert "ratcheting" in refused.stderr and "finalizers can still be removed" in refused.stderr
    warned = cli(
        "audit",
        "--crds",
        str(CRDS / "tightened"),
        "--state",
        str(write_state(tmp_path, volume_snapshot("s", pvc="p") | {"status": {"restoreSize": 1}})),
    )
    assert warned.returncode == 0 and "crd.rule.unevaluable" in warned.stdout


def test_the_command_refuses_a_directory_without_crds(tmp_path: Path) -> None:
    done = cli("audit", "--crds", str(tmp_path), "--state", "tests/fixtures/cluster.yaml")
    assert done.returncode == 2 and "no CustomResourceDefinition" in done.stderr
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec: 7\n"
    )
    done = cli("audit", "--crds", str(tmp_path), "--state", "tests/fixtures/cluster.yaml")
    assert done.returncode == 2 and "spec must be a dict" in done.stderr
    assert "Traceback" not in done.stderr


def installed(which: str, name: str, stored: list[str]) -> Obj:
    """The installed CRD as the apiserver returns it, with its storedVersions."""
    (doc,) = [
        d.raw
        for d in read([str(CRDS / which)])
        if (d.raw.get("metadata") or {}).get("name") == name
    ]
    return {**doc, "status": {"storedVersions": stored}}


def test_from_the_cluster_stored_versions_that_would_be_stranded(tmp_path: Path) -> None:
    with fake_apiserver() as fake:
        name = "volumegroupsnapshotclasses.groupsnapshot.storage.k8s.io"
        fake.crds[name] = installed("current", name, ["v1beta1", "v1"])
        fake.put(group_class("v1"))
        kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
        args = ["audit", "--crds", str(CRDS / "tightened"), "--kubeconfig", str(kubeconfig)]
        done = cli(*args, "-o", "json")
        assert done.returncode == 1, done.stderr
        (stranded,) = json.loads(done.stdout)
        assert stranded["check"] == "crd.version.unserved"
        assert stranded["path"] == "status.storedVersions"
        assert "groupsnapshot.storage.k8s.io/v1beta1 (1 exist)" in stranded["message"]
        assert "this cluster (1.31) ratchets" in done.stderr

        fake.crds[name] = installed("current", name, ["v1"])  # migrated meanwhile
        done = cli(*args)
        assert done.returncode == 0, done.stdout + done.stderr


def test_from_the_cluster_objects_are_listed_and_judged(tmp_path: Path) -> None:
    with fake_apiserver(page_size=1) as fake:  # pages of one: continue tokens followed
        name = "volumesnapshotcontents.snapshot.storage.k8s.io"
        fake.crds[name] = installed("current", name, ["v1"])
        fake.put(content(sourceVolumeMode=None))
        other = content()
        other["metadata"]["name"] = "snapcontent-2"
        fake.put(other)
        kubeconfig = fake.kubeconfig(tmp_path / "kubeconfig")
        done = cli("audit", "--crds", str(CRDS / "tightened"), "--kubeconfig", str(kubeconfig))
        assert done.returncode == 1, done.stderr
        assert done.stdout.splitlines() == [
            "VolumeSnapshotContent snapcontent-1 crd.schema: spec: 'sourceVolumeMode' is a "
            "required property"
        ]
        assert "over 2 stored objects" in done.stderr


def test_a_schema_the_validator_cannot_apply_is_named_not_a_traceback() -> None:
    crd = preflight.read_crd(
        {
            "metadata": {"name": "volumesnapshotclasses.snapshot.storage.k8s.io"},
            "spec": {
                "group": "snapshot.storage.k8s.io",
                "names": {"kind": "VolumeSnapshotClass", "plural": "volumesnapshotclasses"},
                "scope": "Cluster",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    # RE2 syntax Python's re does not have
                                    "driver": {"type": "string", "pattern": r"^\p{L}+$"}
                                },
                            }
                        },
                    }
                ],
            },
        },
        "inline",
    )
    obj = {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": "c"},
        "driver": "ebs",
    }
    (found,) = preflight.check_objects({(crd.group, crd.kind): crd}, [obj])
    assert found.check == "crd.schema.unevaluable" and not found.refuses
    assert "check by hand" in found.message
