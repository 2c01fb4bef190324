"""The real server over real TLS on 127.0.0.1: endpoints, bad input, embedded state."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from builders import review, snapshot_class
from serving import JSON_HEADERS, ROOT, Server, cli, running_server

from webhook import __version__

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


def test_the_version_is_in_the_first_log_line(server: Server) -> None:
    first = server.log_records()[0]
    assert first["message"] == f"snapshot-webhook {__version__} starting"
    # one line says where each listener is; uvicorn's own, once per listener and
    # naming neither, are not repeated
    listening = server.wait_for_log(lambda r: str(r["message"]).startswith("listening"))
    assert f"https://127.0.0.1:{server.port}/validate" in str(listening["message"])
    assert "/healthz /readyz /metrics on http://127.0.0.1:" in str(listening["message"])
    messages = [str(r["message"]) for r in server.log_records()]
    assert not [m for m in messages if "server process" in m or "Uvicorn running" in m]


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
    assert (
        'snapshot_webhook_admission_duration_seconds_count{kind="VolumeSnapshotClass",'
        'operation="CREATE",verdict="allowed"}' in text
    )
    assert "snapshot_webhook_requests_in_flight 0.0" in text
    assert f'snapshot_webhook_build_info{{version="{__version__}"}} 1.0' in text
    assert "process_resident_memory_bytes" in text and "python_info" in text
    assert "_created" not in text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith("snapshot_webhook_certificate_not_after_timestamp_seconds ")
    )
    assert float(line.split()[1]) > 1.7e9


def test_metric_labels_come_from_a_fixed_set(client: httpx.Client) -> None:
    """Made-up kinds and operations never become label values: /metrics stays small."""
    before = len(client.get("/metrics").text)
    for n in range(20):
        body = review(snapshot_class(f"k{n}", driver="k.csi.example.com"), uid=f"k-{n}")
        body["request"]["kind"]["kind"] = f"Made{n}" + "K" * 5000
        body["request"]["operation"] = "DELETE"
        post(client, body)
    text = client.get("/metrics").text
    assert "KKKKKKKKKK" not in text
    assert len(text) - before < 5000
    assert 'kind="other",operation="DELETE",verdict="allowed"' in text


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
        (
            gzip.compress(json.dumps(review(snapshot_class("zipped"))).encode()),
            {**JSON_HEADERS, "Content-Encoding": "gzip"},
            415,
            'Content-Encoding "gzip" is not supported',
        ),
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
    body = review(
        snapshot_class("logged", driver="l.csi.example.com", default="True"), uid="log-uid-1"
    )
    body["request"]["userInfo"] = {"username": "alice", "groups": ["dev"]}
    post(client, body)
    line = server.wait_for_log(lambda record: record.get("uid") == "log-uid-1")
    assert line["kind"] == "VolumeSnapshotClass" and line["object"] == "logged"
    assert line["operation"] == "CREATE" and line["verdict"] == "allowed"
    assert line["user"] == "alice" and line["dryRun"] is False and line["code"] == 200
    assert line["denied"] == [] and line["warned"] == ["class.default.annotation"]
    assert line["durationMs"] >= 0
    assert "driver" not in json.dumps(line)  # names only, never object contents
    # the README lists exactly these fields
    readme = (ROOT / "README.md").read_text()
    for field in ("uid", "kind", "object", "operation", "dryRun", "user", "verdict", "code"):
        assert f"`{field}`" in readme


def test_requests_refused_before_a_verdict_are_logged_at_a_bounded_rate(
    server: Server, client: httpx.Client
) -> None:
    sent = 40
    for _ in range(sent):
        client.post("/validate", content=b"{not json", headers=JSON_HEADERS)
    deadline = time.monotonic() + 10
    while True:  # once the budget refills, the next refused line counts the held-back ones
        client.post("/validate", content=b"{}", headers={"Content-Type": "text/plain"})
        sent += 1
        refused = [r for r in server.log_records() if r.get("message") == "request refused"]
        if any(r["status"] == 415 and int(r.get("suppressed", 0)) > 0 for r in refused):
            break
        assert time.monotonic() < deadline, refused[-3:]
        time.sleep(0.2)
    assert any(r["status"] == 400 and "not valid JSON" in str(r["error"]) for r in refused)
    assert len(refused) < sent  # rate-limited: the flood is counted, not written out


def test_every_startup_line_is_json(server: Server) -> None:
    lines = [line for line in server.log().splitlines() if line.strip()]
    assert lines and all(line.startswith("{") for line in lines), lines[:5]
    assert any("try: curl" in str(r["message"]) for r in server.log_records())


def test_paths_with_a_trailing_slash_and_unknown_paths(client: httpx.Client) -> None:
    body = review(snapshot_class("slash", driver="s.csi.example.com"), uid="slash-1")
    for path in ("/validate/", "/volumesnapshot/"):
        answer = post(client, body, path)
        assert answer.status_code == 200 and answer.json()["response"]["uid"] == "slash-1"
    for path in ("/nope", "/docs", "/openapi.json", "/redoc"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert "POST /validate" in answer.json()["error"]
    assert client.get("/validate").status_code == 405


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


@pytest.mark.parametrize("where", ["managedFields", "parameters"])
def test_one_body_gets_one_answer_from_the_server_and_from_review(
    client: httpx.Client, tmp_path: Path, where: str
) -> None:
    """A number out of range: skipped unread in managedFields, refused where it
    is read; `review` reads a file exactly as the server reads a body."""
    obj = snapshot_class("huge", driver="huge.csi.example.com")
    if where == "managedFields":
        obj["metadata"]["managedFields"][0]["fieldsV1"] = {"f:n": "NUMBER"}
    else:
        obj["parameters"] = {"n": "NUMBER"}
    text = json.dumps(review(obj)).replace('"NUMBER"', "1e400")
    served = client.post("/validate", content=text, headers=JSON_HEADERS)
    path = tmp_path / "huge.json"
    path.write_text(text)
    offline = cli("review", str(path))
    assert served.status_code == 200
    assert json.loads(offline.stdout) == served.json()
    answer = served.json()["response"]
    if where == "managedFields":  # never read, as the apiserver's own decoder skips it
        assert answer["allowed"] is True
    else:
        assert (answer["allowed"], answer["status"]["code"]) == (False, 400)
        assert answer["status"]["message"].startswith("request.object does not read as JSON")
        assert offline.returncode == 2


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_every_path_takes_its_trailing_slash_and_head(client: httpx.Client, path: str) -> None:
    for url in (path, f"{path}/"):
        got = client.get(url)
        assert got.status_code == 200, url
        head = client.head(url)
        assert head.status_code == 200 and head.content == b"", url
        assert head.headers["content-type"] == got.headers["content-type"]


def test_a_404_lists_the_paths_of_the_port_that_answered(tmp_path: Path) -> None:
    from serving import free_port

    probe_port = free_port()
    with running_server(tmp_path, "--probe-port", str(probe_port)) as running:
        with httpx.Client(base_url=f"http://127.0.0.1:{probe_port}", timeout=5.0) as probes:
            missing = probes.get("/nothing").json()["error"]
            assert "/healthz, /readyz, /metrics" in missing and "/validate" not in missing
            assert probes.head("/healthz/").status_code == 200
        with running.client() as admission:
            assert "POST /validate" in admission.get("/nothing").json()["error"]
