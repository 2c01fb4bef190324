"""The benchmark's profiles put each sample in the part it belongs to.

`docs/performance.md` names what separates the webhook from the null endpoint
by these parts, so a frame put in the wrong one would misreport where the time
goes. The inputs are lines as py-spy and cachegrind write them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.instructions import part_of
from bench.live_profile import LAYERS, layer_of, samples_by_layer

UVICORN = "RequestResponseCycle.run_asgi (uvicorn/protocols/http/httptools_impl.py:420)"
FAST_PATH = "AdmissionFastPath.__call__ (webhook/serving/app.py:236)"
JUDGE = "AdmissionEndpoint._judge (webhook/serving/app.py:173)"


@pytest.mark.parametrize(
    ("frames", "layer"),
    [
        ([UVICORN, FAST_PATH, JUDGE, "read_review_json (webhook/decide/admission.py:119)"], 5),
        ([UVICORN, FAST_PATH, JUDGE, "json_too_deep (webhook/model/values.py:108)"], 5),
        ([UVICORN, FAST_PATH, JUDGE, "evaluate (webhook/decide/judge.py:245)"], 6),
        # generated code and the standard library count for the caller
        (
            [JUDGE, "exactly_one (webhook/rules/base.py:219)", "__init__ (<string>:3)"],
            6,
        ),
        ([JUDGE, "AdmissionLog.admission (webhook/serving/logs.py:115)"], 7),
        ([JUDGE, "AdmissionStats.record (webhook/serving/metrics.py:276)"], 8),
        ([UVICORN, FAST_PATH, "send_json (webhook/serving/app.py:244)"], 4),
        (["null_app (bench/null_app.py:39)"], 4),
        (
            [UVICORN, "RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:559)"],
            0,
        ),
        (["CorkedTransport.write (webhook/serving/protocol.py:55)"], 1),
        (["SSLObject.write (ssl.py:930)"], 2),
        (["Runner.run (asyncio/runners.py:118)"], 3),
        ([], 9),
    ],
)
def test_python_frames_go_to_their_layer(frames: list[str], layer: int) -> None:
    assert layer_of(frames) == LAYERS[layer]


def test_raw_stacks_are_counted_by_layer(tmp_path: Path) -> None:
    data = tmp_path / "raw.txt"
    data.write_text(
        f"{UVICORN};{FAST_PATH};{JUDGE};read_review_json (webhook/decide/admission.py:119) 7\n"
        f"{UVICORN};{FAST_PATH};{JUDGE};AdmissionLog.admission (webhook/serving/logs.py:115) 2\n"
        f"{UVICORN} 3\n"
        " 4\n"
    )
    assert samples_by_layer(data) == {LAYERS[5]: 7, LAYERS[7]: 2, LAYERS[0]: 3, LAYERS[9]: 4}


@pytest.mark.parametrize(
    ("source", "function", "part"),
    [
        ("Python-3.11.7/Objects/bytesobject.c", "bytes_translate_impl", "nesting"),
        ("???", "json_skip_string", "msgspec: skipping"),
        ("???", "json_decode_struct_map_inner", "msgspec and orjson"),
        ("Python-3.11.7/Python/ceval.c", "_PyEval_EvalFrameDefault", "interpreter"),
        ("Python-3.11.7/./Include/object.h", "_PyFrame_Clear", "interpreter"),
        ("Python-3.11.7/Objects/obmalloc.c", "_PyObject_Free", "allocation"),
        ("Python-3.11.7/Objects/unicodeobject.c", "PyUnicode_New", "strings"),
        ("Python-3.11.7/Objects/dictobject.c", "_Py_dict_lookup", "dictionaries"),
        ("Python-3.11.7/Objects/object.c", "PyObject_GetAttr", "dictionaries"),
        ("./string/../sysdeps/x86_64/multiarch/memmove-vec.S", "__memcpy_avx", "libc"),
        ("???", "???", "other"),
    ],
)
def test_instructions_go_to_their_part(source: str, function: str, part: str) -> None:
    assert part_of(source, function).startswith(part)


def test_the_in_process_stage_answers_as_the_server_decides(tmp_path: Path) -> None:
    """The stage `bench.profile` times is real work: every benchmark body gets,
    through the server's own ASGI app, the answer the decision gives it."""
    import orjson

    from bench.payloads import SMALL_STATE, payloads
    from bench.profile import served_in_process
    from webhook.decide.admission import response, review_from_bytes
    from webhook.decide.service import Webhook
    from webhook.rules import Policy
    from webhook.serving.logs import AdmissionLog
    from webhook.state.fixtures import ObjectStore

    def webhook() -> Webhook:
        store = ObjectStore()
        store.load([str(SMALL_STATE)])
        return Webhook(store.index, Policy(), embedded=True)

    direct = webhook()
    with (tmp_path / "log").open("wb") as stream:
        log = AdmissionLog(stream=stream)
        served = served_in_process(webhook(), log)
        bodies = [p.read_bytes() for p in payloads(tmp_path / "payloads")]
        for body in bodies:
            review = review_from_bytes(body)
            expected = orjson.dumps(response(review.api_version, review.uid, direct.judge(review)))
            assert served(body) == {"type": "http.response.body", "body": expected}
        log.close()
    assert len(bodies) >= 20
    lines = [orjson.loads(line) for line in (tmp_path / "log").read_bytes().splitlines()]
    assert [line["uid"] for line in lines] == [review_from_bytes(b).uid for b in bodies]
