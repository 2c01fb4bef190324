"""`snapshot-webhook review` and `check`, run as a user runs them: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import review, snapshot_class, volume_snapshot
from conftest import CLUSTER
from serving import cli

from webhook import __version__

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "check"


def write(path: Path, value: object) -> str:
    path.write_text(json.dumps(value))
    return str(path)


# --- review ---------------------------------------------------------------------


def test_review_answers_in_the_request_api_version_with_its_uid(tmp_path: Path) -> None:
    v1 = review(snapshot_class("ebs-snapclass-fast", default="true"), uid="uid-v1")
    v1beta1 = review(
        snapshot_class("other", default="false"),
        uid="uid-v1beta1",
        api_version="admission.k8s.io/v1beta1",
    )
    result = cli(
        "review",
        "--state",
        str(CLUSTER),
        write(tmp_path / "a.json", v1),
        write(tmp_path / "b.json", v1beta1),
    )
    assert result.returncode == 1, result.stderr
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["apiVersion"] == "admission.k8s.io/v1"
    assert first["response"]["uid"] == "uid-v1"
    assert first["response"]["allowed"] is False
    assert first["response"]["status"]["code"] == 403
    assert first["response"]["status"]["message"].startswith("class.default.unique: ")
    assert second["apiVersion"] == "admission.k8s.io/v1beta1"
    assert second["response"] == {"uid": "uid-v1beta1", "allowed": True}


def test_review_reads_stdin_and_exits_zero_when_allowed() -> None:
    body = json.dumps(review(volume_snapshot("s", pvc="postgres-data", cls="ebs-snapclass")))
    result = cli("review", "--state", str(CLUSTER), "-", stdin=body.encode())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["response"]["allowed"] is True


def test_review_applies_admitted_requests_in_order_but_not_dry_runs(tmp_path: Path) -> None:
    first = review(
        snapshot_class("a", driver="hostpath.csi.k8s.io", default="true"), uid="1", dry_run=True
    )
    second = review(snapshot_class("b", driver="hostpath.csi.k8s.io", default="true"), uid="2")
    third = review(snapshot_class("c", driver="hostpath.csi.k8s.io", default="true"), uid="3")
    lines = "\n".join(json.dumps(x) for x in (first, second, third))
    result = cli("review", "-", stdin=lines.encode())
    verdicts = [json.loads(line)["response"] for line in result.stdout.splitlines()]
    assert [v["allowed"] for v in verdicts] == [True, True, False]
    assert '"b" is already the default' in verdicts[2]["status"]["message"]
    assert result.returncode == 1


def test_review_of_an_unreadable_object_answers_400_and_exits_2(tmp_path: Path) -> None:
    body = review(volume_snapshot("s", pvc="postgres-data"))
    body["request"]["object"]["spec"]["source"] = "postgres-data"
    result = cli("review", write(tmp_path / "r.json", body))
    assert result.returncode == 2
    status = json.loads(result.stdout)["response"]["status"]
    assert status["code"] == 400
    assert "request.object.spec.source must be an object" in status["message"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionRev', "body is not valid JSON"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}',
            "request.uid must be a non-empty string",
        ),
        (
            b'{"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview"}',
            'apiVersion "admission.k8s.io/v2" is not supported',
        ),
        (b"[1, 2]", "body must be a JSON object"),
    ],
)
def test_review_bad_input_exits_2_naming_file_and_reason(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = cli("review", str(path))
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_review_missing_file_exits_2() -> None:
    result = cli("review", "does-not-exist.json")
    assert result.returncode == 2
    assert "does-not-exist.json: cannot read" in result.stderr


# --- check ------------------------------------------------------------------------


def test_check_on_the_shipped_examples_fires_every_rule_family() -> None:
    result = cli("check", "--state", "examples/check/cluster", "examples/check/manifests")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    # FILE (document N) KIND NAME RULE: ...
    fired = {line.split(") ", 1)[1].split(" ")[2].rstrip(":") for line in lines}
    families = {rule_id.split(".")[0] for rule_id in fired}
    assert families == {
        "class",
        "snapshot",
        "content",
        "group-class",
        "group-snapshot",
        "group-content",
        "restore",
    }
    assert (
        "examples/check/manifests/01-classes.yaml (document 1) VolumeSnapshotClass "
        "ebs-snapclass-fast class.default.unique: " in result.stdout
    )
    assert "checked 21 objects: 8 allowed, 13 denied" in result.stderr


def test_check_clean_manifests_exit_zero_and_later_objects_see_earlier_ones(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "ok.yaml"
    manifest.write_text(
        """
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshotContent
metadata: {name: snapcontent-invoices}
spec:
  deletionPolicy: Retain
  driver: ebs.csi.aws.com
  source: {snapshotHandle: snap-0123}
  volumeSnapshotRef: {name: invoices, namespace: billing}
---
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: invoices, namespace: billing}
spec:
  volumeSnapshotClassName: ebs-snapclass
  source: {volumeSnapshotContentName: snapcontent-invoices}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: not-ours}
"""
    )
    result = cli("check", "--state", str(CLUSTER), str(manifest))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "checked 2 objects: 2 allowed, 0 denied" in result.stderr
    assert "1 object skipped" in result.stderr


def test_check_reads_lists_and_treats_a_repeated_object_as_update(tmp_path: Path) -> None:
    items = [
        snapshot_class("x", deletion_policy="Retain"),
        snapshot_class("x", deletion_policy="Delete"),
    ]
    path = write(tmp_path / "list.json", {"apiVersion": "v1", "kind": "List", "items": items})
    result = cli("check", path)
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"{path} (document 1, item 2) VolumeSnapshotClass x class.deletion-policy.immutable: "
        'deletionPolicy is immutable: was "Retain", now "Delete"'
    )


def test_check_applies_default_namespace_and_reads_stdin() -> None:
    manifest = b"""
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: s}
spec: {source: {persistentVolumeClaimName: ""}}
"""
    result = cli("check", "-", stdin=manifest)
    assert result.returncode == 1
    assert result.stdout.startswith(
        "<stdin> (document 1) VolumeSnapshot default/s snapshot.source.one-of:"
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("kind: [unclosed", "invalid YAML"),
        ("- just\n- a list\n", "expected an object with apiVersion and kind, got array"),
    ],
)
def test_check_unreadable_manifest_exits_2(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    result = cli("check", str(path))
    assert result.returncode == 2
    assert f"{path}" in result.stderr and needle in result.stderr


def test_check_object_of_wrong_shape_exits_2_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\n"
        "metadata: {name: c}\ndriver: 5\ndeletionPolicy: Delete\n"
    )
    result = cli("check", str(path))
    assert result.returncode == 2
    assert "VolumeSnapshotClass c error: request.object.driver must be a string, got 5" in (
        result.stdout
    )


def test_unreadable_state_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    path.write_text("apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv}\nspec: 1\n")
    result = cli("check", "--state", str(path), str(EXAMPLES / "manifests"))
    assert result.returncode == 2
    assert (
        f"{path} (document 1): PersistentVolume: object.spec must be an object, got 1"
        in result.stderr
    )


def test_unknown_rule_override_exits_2_listing_valid_ids() -> None:
    result = cli("check", "--rule", "snapshot.nope=off", str(EXAMPLES / "manifests"))
    assert result.returncode == 2
    assert "unknown rule id 'snapshot.nope'" in result.stderr
    assert "snapshot.source.one-of" in result.stderr


def test_rule_override_changes_the_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\n"
        "metadata:\n  name: c\n  annotations:\n"
        "    snapshot.storage.kubernetes.io/is-default-class: 'true'\n"
        "driver: ebs.csi.aws.com\ndeletionPolicy: Delete\n"
    )
    assert cli("check", "--state", str(CLUSTER), str(path)).returncode == 1
    relaxed = cli(
        "check", "--state", str(CLUSTER), "--rule", "class.default.unique=warn", str(path)
    )
    assert relaxed.returncode == 0
    assert relaxed.stdout.rstrip().endswith("(warning)")


def test_console_entry_point_matches_module() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("review", "check", "rules", "schemas"):
        assert command in result.stdout


# --- what a first-time user hit ---------------------------------------------------


def test_audit_without_a_state_source_is_a_usage_error() -> None:
    result = cli("audit")
    assert result.returncode == 2
    assert "snapshot-webhook audit: error: say what to audit: --state PATH" in result.stderr
    assert "found 0 problems" not in result.stderr


def test_the_shipped_example_cluster_audits_clean_as_the_readme_says() -> None:
    result = cli("audit", "--state", "examples/check/cluster")
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr.strip() == "audit found no problems"


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        (
            ("{missing}/tls.crt", "{missing}/tls.key"),
            "--tls-cert-file {missing}/tls.crt: cannot read it: No such file",
        ),
        (("{garbage}", "{garbage}"), "--tls-cert-file {garbage}: not a PEM certificate"),
        (
            ("{cert}", "{cakey}"),
            "--tls-private-key-file {cakey} does not match --tls-cert-file {cert}",
        ),
    ],
)
def test_tls_file_errors_name_the_flag_the_path_and_the_problem(
    tmp_path: Path, files: tuple[str, str], needle: str
) -> None:
    cli("certs", "--service", "s", "--namespace", "n", "--out", str(tmp_path))
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    names = {
        "missing": str(tmp_path / "absent"),
        "garbage": str(tmp_path / "garbage.pem"),
        "cert": str(tmp_path / "tls.crt"),
        "cakey": str(tmp_path / "ca.key"),
    }
    cert, key = (f.format(**names) for f in files)
    result = cli(
        "serve", "--tls-cert-file", cert, "--tls-private-key-file", key, "--probe-port", "0"
    )
    assert result.returncode == 2
    assert needle.format(**names) in result.stderr
    assert "Traceback" not in result.stderr and "PEM lib" not in result.stderr


def test_an_empty_input_set_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    (tmp_path / "dir").mkdir()
    for target in (empty, tmp_path / "dir"):
        result = cli("check", str(target))
        assert result.returncode == 2
        assert f"no objects in {target}: nothing was checked" in result.stderr


def test_objects_that_cannot_be_checked_are_named_with_the_reason(tmp_path: Path) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        "apiVersion: snapshot.storage.k8s.io/v1beta1\nkind: VolumeSnapshot\n"
        "metadata: {name: old, namespace: d}\nspec: {source: {}}\n---\n"
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\n"
        "metadata: {}\ndriver: x\ndeletionPolicy: Delete\n"
    )
    result = cli("check", str(manifest))
    assert result.returncode == 0
    assert (
        f"{manifest} (document 1) VolumeSnapshot: skipped: snapshot.storage.k8s.io/v1beta1 is not "
        "a version the VolumeSnapshot CRD serves (snapshot.storage.k8s.io/v1)"
    ) in result.stderr
    assert f"{manifest} (document 2) VolumeSnapshotClass: skipped: metadata.name is missing" in (
        result.stderr
    )
    assert "2 objects skipped" in result.stderr


def test_the_summary_counts_in_words_and_names_unreadable_files(tmp_path: Path) -> None:
    good = tmp_path / "a.yaml"
    good.write_text(
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotClass\n"
        "metadata: {name: c, annotations: {snapshot.storage.kubernetes.io/is-default-class: "
        "'True'}}\ndriver: x\ndeletionPolicy: Delete\n"
    )
    (tmp_path / "b.yaml").write_text("a: [\n")
    result = cli("check", str(tmp_path))
    assert result.returncode == 2
    assert "checked 1 object: 1 allowed, 0 denied, 0 unreadable, 1 warning, 1 file unreadable;" in (
        result.stderr
    )


def many_manifests(folder: Path, count: int) -> Path:
    """Manifests whose `check` output (a warning each) is far larger than a pipe's buffer."""
    import yaml
    from builders import snapshot_class

    path = folder / "many.yaml"
    path.write_text(
        yaml.safe_dump_all(
            [
                snapshot_class(f"class-{n:04}", driver=f"d{n}.csi.example.com", default="True")
                for n in range(count)
            ]
        )
    )
    return path


def test_a_reader_that_goes_away_mid_stream_ends_it_with_141(tmp_path: Path) -> None:
    """`check | head -1` with more output than the pipe holds: the writer must
    meet the closed end, whatever the timing; every run of many ends the same."""
    manifests = many_manifests(tmp_path, 1500)
    command = f"{sys.executable} -m webhook check {manifests} | head -1; exit ${{PIPESTATUS[0]}}"
    for _ in range(3):
        result = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 141, result.stderr
        assert result.stdout.count("\n") == 1
        assert "Broken pipe" not in result.stderr and "Traceback" not in result.stderr


def test_a_reader_gone_before_anything_is_written_ends_it_with_141() -> None:
    """The pipe's read end is closed before the command starts: even output that
    would fit in the pipe's buffer ends the command as SIGPIPE would."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "webhook",
                "check",
                "--state",
                "examples/check/cluster",
                "examples/check/manifests",
            ],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert process.returncode == 141
    assert "Broken pipe" not in process.stderr and "Traceback" not in process.stderr


def test_review_reads_a_directory_as_check_does() -> None:
    result = cli("review", "examples/reviews")
    assert result.returncode in (1, 2), result.stderr
    assert len(result.stdout.splitlines()) == len(
        list((ROOT / "examples" / "reviews").glob("*.json"))
    )


def test_version_help_and_usage_errors_speak_for_the_command() -> None:
    assert cli("--version").stdout.strip() == f"snapshot-webhook {__version__}"
    bogus = cli("serve", "--bogus")
    assert bogus.returncode == 2
    assert bogus.stderr.startswith("usage: snapshot-webhook serve ")
    assert "unrecognized arguments: --bogus" in bogus.stderr
    serve_help = " ".join(cli("serve", "--help").stdout.split())
    for shown in ("(default 4194304)", "(default 2)", "(default info)", "(default 8081)"):
        assert shown in serve_help
    assert "Print every rule" in cli("rules", "--help").stdout
    assert "JSON Schema" in cli("schemas", "--help").stdout
    certs_help = " ".join(cli("certs", "--help").stdout.split())
    assert "(default certs/service;" in certs_help and "(default 365)" in certs_help


def test_messages_speak_the_api_words_not_python(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [\n")
    result = cli("check", str(bad))
    assert "in the file, line 2" in result.stderr and "<byte string>" not in result.stderr
    body = review(volume_snapshot("s", pvc="p"))
    body["request"]["object"]["spec"]["source"] = None
    body["request"]["object"]["spec"]["volumeSnapshotClassName"] = ["x"]
    answer = cli("review", "-", stdin=json.dumps(body).encode())
    message = json.loads(answer.stdout)["response"]["status"]["message"]
    assert 'must be a string, got ["x"]' in message
    for python in ("None", "got list", "got str", "Value error"):
        assert python not in message


@pytest.mark.parametrize(("fail_on", "status"), [(None, 0), ("deny", 0), ("warn", 1)])
def test_audit_fails_on_violations_by_default_and_on_warnings_when_asked(
    tmp_path: Path, fail_on: str | None, status: int
) -> None:
    """A cluster whose only finding is a warning (a stale ref uid): a pipeline
    gated on `audit` passes unless it asks to fail on warnings too."""
    import yaml
    from builders import snapshot_content

    stale = snapshot_content(
        "snapcontent-old",
        ref=("shop", "postgres-data-snap-1"),
        ref_uid="0b0b0b0b-dead-4bad-8bad-000000000000",
    )
    state = tmp_path / "state.yaml"
    cluster = (ROOT / "tests" / "fixtures" / "cluster.yaml").read_text()
    state.write_text(cluster + "\n---\n" + yaml.safe_dump(stale))
    flags = ["--fail-on", fail_on] if fail_on else []
    result = cli("audit", "--state", str(state), *flags)
    assert result.returncode == status, result.stderr
    assert "content.ref.stale-uid" in result.stdout and "(warning)" in result.stdout
    assert result.stderr.strip() == "audit found 1 problem: content.ref.stale-uid 1"


def test_the_drain_delay_is_for_pods_behind_a_service_not_for_a_terminal() -> None:
    from webhook.cli.main import build_parser, settings_from

    def delay(*args: str) -> float:
        return settings_from(build_parser().parse_args(["serve", *args])).drain_delay

    assert delay() == 0.0  # Ctrl-C in a terminal stops at once
    assert delay("--kube") == 5.0  # EndpointSlices drop the pod first
    assert delay("--shutdown-delay-seconds", "1.5") == 1.5
    assert delay("--kube", "--shutdown-delay-seconds", "0") == 0.0
