"""Coverage-guided fuzzing of the admission path with atheris (libFuzzer).

    pip install atheris
    python -m fuzz.body -atheris_runs=200000 fuzz/corpus

Each input is a request body. The only acceptable outcomes are the ones the
HTTP edge turns into a 400 (not JSON, not an AdmissionReview) or a
well-formed answer; any other exception is a crash that libFuzzer reports with
the input that caused it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["webhook"]):
    import orjson

    from webhook.decide.admission import BadReviewError, read_review, response
    from webhook.decide.service import Webhook
    from webhook.rules import Policy
    from webhook.state.fixtures import ObjectStore

ROOT = Path(__file__).resolve().parents[1]
store = ObjectStore()
store.load([str(ROOT / "tests" / "fixtures" / "cluster.yaml")])
webhook = Webhook(store.index, Policy(), embedded=False)


def one_input(data: bytes) -> None:
    try:
        review = read_review(orjson.loads(data))
    except (orjson.JSONDecodeError, BadReviewError):
        return
    verdict = webhook.judge(review)
    answer = orjson.loads(orjson.dumps(response(review.api_version, review.uid, verdict)))
    assert answer["response"]["uid"] == review.uid
    assert verdict.code in (200, 400, 403), verdict


def seed_corpus(directory: Path) -> None:
    """The shipped example reviews, as a starting corpus."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "examples" / "reviews").glob("*.json")):
        (directory / path.name).write_bytes(path.read_bytes())


if __name__ == "__main__":
    corpus = [Path(a) for a in sys.argv[1:] if not a.startswith("-")]
    for directory in corpus:
        seed_corpus(directory)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
