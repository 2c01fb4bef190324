"""Instructions per admission, by part: a count that does not move with the load.

    .venv/bin/python -m bench.instructions [--rounds 50]

Timings on a shared machine move by 10% from one run to the next, so a change
of a few microseconds cannot be seen in them. Instructions executed can: this
runs all the server does per admission in process (the ASGI fast path, the
decision, the answer, the log line, the metrics: `bench.profile`'s last stage)
under valgrind's cachegrind, once with no admissions and once with `--rounds`
rounds of the benchmark payloads, and divides the difference by the
admissions. Each C function is put in a part by its name and source file.
Fewer instructions are not always less time (memory and caches decide the
rest), so a change is kept on its timings; the count says where the work is.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.payloads import EXAMPLES, ROOT, SMALL_STATE, payloads

PARTS = [
    ("nesting and ASCII checks: bytes methods over the whole body", r"bytes_(translate|isascii)"),
    ("msgspec: skipping what no rule reads", r"^json_skip"),
    ("msgspec and orjson: decoding and encoding what is read", r"^(json_|Struct_|ms_)|orjson"),
    (
        "interpreter: bytecode, frames, calls, generators and coroutines",
        r"(?i)ceval|frame|call|pystate|genobject|funcobject|methodobject|abstract\.c|getargs|"
        r"specialize|eval",
    ),
    (
        "allocation and deallocation, reference counts, garbage collector",
        r"obmalloc|dealloc|_alloc|NewReference|GC_|gcmodule|pycore_object|PyMem_",
    ),
    ("strings, numbers, tuples and lists", r"unicodeobject|longobject|tupleobject|listobject"),
    (
        "dictionaries, hashing, attributes and types",
        r"dictobject|typeobject|^object\.[ch]|descrobject|pyhash|unionobject",
    ),
    ("libc: copies, compares, formatting", r"^\./|libc|sysdeps"),
]


def run_admissions(rounds: int) -> None:
    """The measured work: `rounds` rounds of the payloads through the server's
    own ASGI app, in process."""
    from bench.profile import served_in_process
    from webhook.decide.service import Webhook
    from webhook.rules import Policy
    from webhook.serving.logs import AdmissionLog
    from webhook.state.fixtures import ObjectStore

    workdir = Path(tempfile.mkdtemp(prefix="snapshot-webhook-instructions-"))
    bodies = [p.read_bytes() for p in payloads(workdir)]
    shutil.rmtree(workdir, ignore_errors=True)
    store = ObjectStore()
    store.load([str(SMALL_STATE)])
    with open(os.devnull, "wb") as sink:
        log = AdmissionLog(stream=sink)
        serve = served_in_process(Webhook(store.index, Policy(), embedded=True), log)
        for _ in range(rounds):
            for body in bodies:
                serve(body)
        log.close()


def counted(rounds: int, out: Path) -> Counter[tuple[str, str]]:
    """Instructions by (source file, function) of a run with `rounds` rounds."""
    subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--cachegrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--run",
            str(rounds),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=1800,
    )
    found: Counter[tuple[str, str]] = Counter()
    source = function = ""
    for line in out.read_text().splitlines():
        if line.startswith("fl="):
            source = line[3:]
        elif line.startswith("fn="):
            function = line[3:]
        elif line[:1].isdigit():
            found[(source, function)] += int(line.split()[1])
    return found


def part_of(source: str, function: str) -> str:
    for part, pattern in PARTS:
        if re.search(pattern, function) or re.search(pattern, source.rsplit("/", 1)[-1]):
            return part
    if source.startswith("./") or "sysdeps" in source:
        return PARTS[-1][0]
    return "other"


def measure(rounds: int) -> tuple[int, Counter[str]]:
    """(admissions, instructions per admission by part)."""
    admissions = rounds * len(list(EXAMPLES.glob("*.json")))  # the bodies `payloads` writes
    with tempfile.TemporaryDirectory(prefix="snapshot-webhook-cachegrind-") as where:
        base = counted(0, Path(where) / "base.out")
        busy = counted(rounds, Path(where) / "busy.out")
    parts: Counter[str] = Counter()
    for key, count in busy.items():
        parts[part_of(*key)] += count - base.get(key, 0)
    return admissions, Counter({p: round(n / admissions) for p, n in parts.items()})


def table(parts: Counter[str]) -> str:
    total = sum(parts.values())
    lines = ["| part | instructions per admission | share |", "| --- | --- | --- |"]
    for part in [p for p, _ in PARTS] + ["other"]:
        lines.append(f"| {part} | {parts.get(part, 0):,} | {parts.get(part, 0) / total:.0%} |")
    lines.append(f"| **all** | **{total:,}** | |")
    return "\n".join(lines)


NOTE = """Instructions per admission, by part (`python -m bench.instructions`, run
by `scripts/bench` when valgrind is installed): all the server does per
admission in process, counted by cachegrind, a count that does not move with
the machine's load. The C parts (the nesting check, msgspec, orjson, libc) are
single passes over the body or the answer; the rest is the interpreter running
the decision's, the edge's, the log line's and the metrics' Python."""


def section(rounds: int = 50) -> str:
    _, parts = measure(rounds)
    return NOTE + "\n\n" + table(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--run", type=int, help=argparse.SUPPRESS)  # the measured child
    args = parser.parse_args()
    if args.run is not None:
        run_admissions(args.run)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed: apt-get install valgrind")
    print(section(args.rounds))


if __name__ == "__main__":
    main()
