"""The real server over real TLS on 127.0.0.1: endpoints, bad input, embedded state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from builders import review, snapshot_class
from serving import JSON_HEADERS, ROOT, Server, cli, running_server

MAX_BODY = 65536
REVIEWS = sorted((ROOT / "examples" / "reviews").glob("*.json"))
EXPECTED = yaml.safe_load((ROOT / "examples" / "reviews" / "expected.yaml").read_text())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("server")
    with running_server(workdir, "--max-body-bytes", str(MAX_BODY)) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def post(client: httpx.Client, body: object, path: str = "/validate") -> httpx.Response:
    return client.post(path, content=json.dumps(body), headers=JSON_HEADERS)


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "problems": []}


def test_embedded_state_second_default_is_denied_after_first(client: httpx.Client) -> None:
    driver = "embedded-flow.csi.example.com"
    dry = post(
        client,
        review(snapshot_class("flow-a", driver=driver, default="true"), dry_run=True, uid="a"),
    )
    assert dry.json()["response"]["allowed"] is True
    first = post(client, review(snapshot_class("flow-b", driver=driver, default="true"), uid="b"))
    assert first.json()["response"] == {"uid": "b", "allowed": True}
    second = post(
        client,
        review(snapshot_class("flow-c", driver=driver, default="true"), uid="c"),
        path="/volumesnapshot",
    )
    answer = second.json()["response"]
    assert answer["uid"] == "c" and answer["allowed"] is False
    assert answer["status"]["code"] == 403
    assert '"flow-b" is already the default' in answer["status"]["message"]


def test_metrics_count_admissions_state_and_certificate(client: httpx.Client) -> None:
    post(client, review(snapshot_class("metrics-x", driver="m.csi.example.com", default="True")))
    text = client.get("/metrics").text
    assert (
        'snapshot_webhook_admissions_total{kind="VolumeSnapshotClass",operation="CREATE",'
        'verdict="allowed"}' in text
    )
    assert 'rule="class.default.annotation"' in text
    assert "snapshot_webhook_admission_duration_seconds_bucket" in text
    assert 'snapshot_webhook_state_objects{kind="VolumeSnapshotClass"}' in text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith("snapshot_webhook_certificate_not_after_timestamp_seconds ")
    )
    assert float(line.split()[1]) > 1.7e9


@pytest.mark.parametrize(
    ("content", "headers", "status", "needle"),
    [
        (b"{not json", JSON_HEADERS, 400, "body is not valid JSON"),
        (b'{"kind": "Pod"}', JSON_HEADERS, 400, 'kind must be "AdmissionReview"'),
        (
            b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v2"}',
            JSON_HEADERS,
            400,
            'apiVersion "admission.k8s.io/v2" is not supported',
        ),
        (
            b'{"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}}',
            JSON_HEADERS,
            400,
            "request.uid must be a non-empty string",
        ),
        (b"{}", {"Content-Type": "text/plain"}, 415, "Content-Type must be application/json"),
        (b"x" * (MAX_BODY + 1), JSON_HEADERS, 413, f"limit of {MAX_BODY} bytes"),
    ],
)
def test_bad_requests_get_a_json_error(
    client: httpx.Client, content: bytes, headers: dict[str, str], status: int, needle: str
) -> None:
    answer = client.post("/validate", content=content, headers=headers)
    assert answer.status_code == status
    assert needle in answer.json()["error"]


def test_chunked_body_over_the_limit_is_refused_before_it_is_read_whole(
    client: httpx.Client,
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: 64 x 16 KiB, 16 times the limit
        for _ in range(64):
            yield b" " * 16384

    answer = client.post("/validate", content=chunks(), headers=JSON_HEADERS)
    assert answer.status_code == 413


def test_content_type_parameters_are_accepted(client: httpx.Client) -> None:
    body = json.dumps(review(snapshot_class("ct", driver="ct.csi.example.com")))
    answer = client.post(
        "/validate", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert answer.status_code == 200 and answer.json()["response"]["allowed"] is True


def test_unreadable_object_is_answered_with_its_uid(client: httpx.Client) -> None:
    body = review(snapshot_class("bad", driver="b.csi.example.com"), uid="bad-1")
    body["request"]["object"]["driver"] = ["not", "a", "string"]
    answer = post(client, body, path="/volumegroupsnapshot").json()["response"]
    assert answer["uid"] == "bad-1" and answer["allowed"] is False
    assert answer["status"]["code"] == 400
    assert "request.object.driver must be a string" in answer["status"]["message"]


def test_one_structured_log_line_per_admission(server: Server, client: httpx.Client) -> None:
    post(client, review(snapshot_class("logged", driver="l.csi.example.com"), uid="log-uid-1"))
    line = server.wait_for_log(lambda record: record.get("uid") == "log-uid-1")
    assert line["kind"] == "VolumeSnapshotClass" and line["object"] == "logged"
    assert line["operation"] == "CREATE" and line["allowed"] is True
    assert line["rules"] == [] and line["duration_ms"] >= 0 and line["dry_run"] is False
    assert "driver" not in json.dumps(line)  # names only, never object contents


def test_shipped_examples_give_their_documented_verdicts(tmp_path: Path) -> None:
    with running_server(tmp_path) as fresh, fresh.client() as http:
        for path in REVIEWS:
            answer = http.post("/validate", content=path.read_bytes(), headers=JSON_HEADERS)
            body = answer.json()
            sent = json.loads(path.read_bytes())
            assert body["apiVersion"] == sent["apiVersion"]
            assert body["response"]["uid"] == sent["request"]["uid"]
            expected = EXPECTED[path.stem]
            assert body["response"]["allowed"] is expected["allowed"], path.name
            message = body["response"].get("status", {}).get("message", "")
            denied = sorted({part.split(": ", 1)[0] for part in message.split("; ") if part})
            warned = sorted(w.split(": ", 1)[0] for w in body["response"].get("warnings", []))
            assert (denied, warned) == (expected["denied"], expected["warned"]), path.name


def test_review_command_agrees_with_the_server_on_the_examples() -> None:
    result = cli("review", *map(str, REVIEWS))
    verdicts = [json.loads(line)["response"]["allowed"] for line in result.stdout.splitlines()]
    assert verdicts == [EXPECTED[p.stem]["allowed"] for p in REVIEWS]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--tls-cert-file", "x.crt"], "--tls-cert-file was given without --tls-private-key-file"),
        (["--port", "70000"], "--port (SNAPSHOT_WEBHOOK_PORT): Input should be less than or equal"),
        (["--rule", "nope=off"], "unknown rule id 'nope'"),
    ],
)
def test_bad_flags_fail_at_start_naming_them(args: list[str], needle: str) -> None:
    result = cli("serve", *args)
    assert result.returncode == 2
    assert needle in result.stderr


def test_environment_variables_configure_the_server(tmp_path: Path) -> None:
    env = {"SNAPSHOT_WEBHOOK_RULES": '["class.default.unique=off"]'}
    with running_server(tmp_path, env=env) as running, running.client() as http:
        for name in ("env-a", "env-b"):
            body = review(snapshot_class(name, driver="env.csi.example.com", default="true"))
            assert post(http, body).json()["response"]["allowed"] is True


def test_readme_curl_examples_give_the_documented_answers(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- curl-example:begin -->", 1)[1].split("<!-- curl-example:end -->")[0]
    lines = [line for line in block.splitlines() if line and not line.startswith("```")]
    pairs = list(zip(lines[::2], lines[1::2], strict=True))
    assert len(pairs) == 2
    with running_server(tmp_path) as fresh, fresh.client() as http:
        for command, documented in pairs:
            words = command.split()
            assert words[:2] == ["$", "curl"] and words[-1].endswith("/validate")
            data = next(w for w in words if w.startswith("@"))[1:]
            answer = http.post(
                "/validate", content=(ROOT / data).read_bytes(), headers=JSON_HEADERS
            )
            assert answer.text == documented
