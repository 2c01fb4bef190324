"""Run the hardening tests with long budgets and write docs/reliability.md.

`scripts/reliability` runs this (CI runs the same tests with small budgets).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/test_fuzz.py",
    "tests/test_hostile.py",
    "tests/test_server_lifecycle.py",
    "tests/test_kube_server.py",
    "tests/test_server.py",
]

# (case, test, figure name or None)
CASES = [
    (
        "Fuzzing: raw request bodies (hypothesis)",
        "test_fuzz.py::test_raw_bytes",
        "fuzzed: raw bodies",
    ),
    (
        "Fuzzing: any JSON value anywhere in the envelope (hypothesis)",
        "test_fuzz.py::test_envelope_with_any_value_anywhere",
        "fuzzed: envelopes",
    ),
    (
        "Fuzzing: any JSON value anywhere in each kind's object (hypothesis)",
        "test_fuzz.py::test_objects_with_any_value_anywhere",
        "fuzzed: objects",
    ),
    ("Fuzzing: coverage-guided raw bytes (atheris)", "fuzz/body.py", "atheris"),
    (
        "Wrong types at every level of a review",
        "test_hostile.py::test_wrong_types_at_every_level",
        "wrong types at every level",
    ),
    ("Truncated JSON", "test_hostile.py::test_truncated_json", None),
    ("Invalid UTF-8; nesting 200,000 deep", "test_hostile.py::test_undecodable_bodies", None),
    (
        "Nesting as deep as parses, in a free-form field",
        "test_hostile.py::test_deep_nesting_inside_a_readable_review",
        None,
    ),
    ("Duplicate keys", "test_hostile.py::test_duplicate_keys_take_the_last_value", None),
    (
        "Huge strings: bounded answer",
        "test_hostile.py::test_huge_strings_get_a_bounded_answer",
        None,
    ),
    ("`object` of the wrong kind", "test_hostile.py::test_object_of_the_wrong_kind", None),
    (
        "Body over the limit (declared, and chunked)",
        "test_server.py::test_chunked_body_over_the_limit_is_refused_before_it_is_read_whole",
        None,
    ),
    (
        "Silent client: header deadline",
        "test_hostile.py::test_silent_connection_is_closed_after_the_header_deadline",
        "silent connection closed after",
    ),
    ("Headers dribbled slowly", "test_hostile.py::test_headers_dribbled_slowly_are_cut_off", None),
    ("Body sent too slowly: 408", "test_hostile.py::test_body_sent_too_slowly_gets_408", None),
    (
        "Many idle connections",
        "test_hostile.py::test_many_idle_connections_do_not_stop_service",
        "150 idle connections",
    ),
    ("HTTP/1.1 pipelining", "test_hostile.py::test_pipelined_requests_are_answered_in_order", None),
    ("Plain HTTP refused", "test_hostile.py::test_plain_http_is_refused", None),
    ("TLS below 1.2 refused", "test_hostile.py::test_tls_below_1_2_is_refused", None),
    (
        "Client certificates required with --client-ca-file",
        "test_hostile.py::test_client_certificates_are_required_with_a_client_ca",
        None,
    ),
    (
        "Flood of large requests: memory bound",
        "test_hostile.py::test_flood_of_large_requests_stays_within_the_memory_bound",
        "flood: 24 clients x 6 bodies of 1 MiB",
    ),
    (
        "Certificate rotation under load",
        "test_server_lifecycle.py::test_rotation_under_load_fails_no_request",
        "certificate rotation under load",
    ),
    (
        "A bad new certificate pair is rejected, the old one keeps serving",
        "test_server_lifecycle.py::test_a_bad_new_pair_is_rejected_and_the_old_one_keeps_serving",
        None,
    ),
    (
        "SIGTERM under load: readiness first, in-flight requests finish",
        "test_server_lifecycle.py::test_sigterm_turns_readiness_off_first_and_finishes_in_flight",
        "SIGTERM under load",
    ),
    (
        "Watch faults under load: dropped streams, 410 Gone, an unanswering API server",
        "test_kube_server.py::test_watch_faults_under_load_recover_to_the_cluster_state",
        "watch faults under load",
    ),
]


def run_atheris(runs: int) -> str:
    corpus = Path(tempfile.mkdtemp(prefix="snapshot-webhook-corpus-"))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "fuzz.body", f"-atheris_runs={runs}", str(corpus)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=3600,
    )
    if result.returncode != 0:
        raise SystemExit(f"atheris found a crash:\n{result.stderr[-4000:]}")
    done = re.search(r"Done (\d+) in (\d+) second", result.stderr)
    coverage = re.findall(r"cov: (\d+)", result.stderr)
    ran = done.group(1) if done else str(runs)
    return (
        f"{int(ran):,} inputs, 0 crashes, {coverage[-1] if coverage else '?'} coverage "
        f"edges, {time.monotonic() - started:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fuzz-examples", type=int, default=5000)
    parser.add_argument("--atheris-runs", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args()
    figures_file = Path(tempfile.mkstemp(prefix="figures-", suffix=".jsonl")[1])
    env = {
        **os.environ,
        "SNAPSHOT_WEBHOOK_FIGURES": str(figures_file),
        "SNAPSHOT_WEBHOOK_FUZZ_EXAMPLES": str(args.fuzz_examples),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
        cwd=ROOT,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit("the hardening tests failed; docs/reliability.md not written")
    figures = {}
    for line in figures_file.read_text().splitlines():
        record = json.loads(line)
        figures[record["figure"]] = record["value"]
    figures["atheris"] = run_atheris(args.atheris_runs) if args.atheris_runs else "not run"
    command = (
        f"scripts/reliability --fuzz-examples {args.fuzz_examples} "
        f"--atheris-runs {args.atheris_runs}"
    )
    lines = [
        "# Reliability",
        "",
        "Every case below is a test that fails if the behaviour regresses. CI runs them all "
        "with small budgets (200 inputs per fuzzing property, no atheris); the figures here "
        f"come from a long run: `{command}` (generated by that command).",
        "",
        "The rule for every reply: HTTP 400, 408, 413, 415 or 503 with a JSON error naming the "
        "problem, or a well-formed AdmissionReview carrying the request's uid. Never a 500, a "
        "traceback, a hang or a crash.",
        "",
        "| case | test | figure |",
        "| --- | --- | --- |",
    ]
    for case, test, figure in CASES:
        value = figures.get(figure, "passes") if figure else "passes"
        lines.append(f"| {case} | `{test}` | {value} |")
    lines += [
        "",
        "## Bounds the server enforces",
        "",
        "| what | default | flag |",
        "| --- | --- | --- |",
        "| one request body | 4 MiB (413 past it) | `--max-body-bytes` |",
        "| request bodies held at once | 64 MiB (503 past it) | `--max-inflight-bytes` |",
        "| request headers complete | 10 s (connection closed) | `--header-timeout-seconds` |",
        "| request body complete | 10 s (408) | `--body-timeout-seconds` |",
        "| idle keep-alive connection | 30 s (closed) | `--keep-alive-seconds` |",
        "| connections and requests at once | 1000 (503 past it) | `--max-connections` |",
        "| a denial's message; each warning | 4096; 255 characters | |",
        "| JSON nesting | 1024 levels (orjson; 400 past it) | |",
        "",
        "Memory under a flood: bodies held at once are capped by `--max-inflight-bytes`; "
        "what a held body costs while it is parsed and judged comes on top (about ten times "
        "its size in Python objects). The flood test asserts the bound for its settings "
        "(1 MiB bodies, a 4 MiB budget): less than 96 MiB of growth with 24 clients sending "
        "at once; the figure above is what it measured.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
