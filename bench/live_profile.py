"""Where the live server's CPU goes, part by part, next to the null endpoint's.

    .venv/bin/python -m bench.live_profile [--seconds 10]

Each server runs as `scripts/bench` runs it (TLS, keep-alive, pinned to core 0;
wrk on core 1, 16 connections). While wrk saturates it, `perf record` (Debian's
linux-perf) samples the live process at 999 Hz with native symbols, so the C
parts are seen: TLS in OpenSSL, uvloop, httptools, msgspec, the interpreter,
the allocator, the garbage collector, the kernel. (Python 3.11 gives perf no
Python frames; `bench/profile.py` breaks the Python part down in process.)
Each sample is put in a part by its shared object and symbol, and each part's
share of the samples is turned into microseconds of the server's CPU per
admission, measured from /proc over the same window.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.payloads import ROOT, SMALL_STATE, payloads
from bench.run import cpu_and_switches, free_port, pinned, server_command, wait_ready, wrk
from webhook.tls import certs

GC = re.compile(
    r"gc_collect|^collect|visit_|subtract_refs|update_refs|move_unreachable|unreachable"
)
ALLOCATION = re.compile(
    r"_PyObject_(Malloc|Free|Realloc|Calloc)|^_?(int_)?(malloc|free|realloc|calloc)|dealloc|"
    r"GC_Del|_PyMem_|pymalloc|tuple_alloc|PyType_GenericAlloc|_PyObject_GC_New|free_keys_object"
)
PARTS_BY_DSO = [
    ("kernel: TCP, syscalls, interrupts", re.compile(r"kernel|vdso")),
    ("TLS: OpenSSL and the ssl module", re.compile(r"libssl|libcrypto|_ssl\.")),
    ("event loop: uvloop", re.compile(r"loop\.cpython|_asyncio\.")),
    ("HTTP parsing: httptools", re.compile(r"parser\.cpython|url_parser")),
    ("JSON: msgspec and orjson", re.compile(r"_core\.cpython|orjson")),
]
ORDER = [
    "interpreter: running Python code",
    "allocation and deallocation",
    "bytes.translate and replace: the nesting check",
    "garbage collection",
    *[part for part, _ in PARTS_BY_DSO],
    "libc: copies, compares, formatting",
    "other",
]


LIVE_NOTE = """Live, by part (`python -m bench.live_profile`, run by `scripts/bench` when
Debian's linux-perf is installed): each server saturated by wrk while `perf`
samples it at 999 Hz with native symbols; a part's share of the samples times
the server's CPU per admission over the same window (/proc). perf's own cost is
included, so both columns run higher than the table above. Python 3.11 gives
perf no Python frames: "interpreter" is all Python code, uvicorn's request
cycle included (the null endpoint's column is that part), and the in-process
table above breaks the webhook's own Python down."""


def part_of(dso: str, symbol: str) -> str:
    if "libpython" in dso or dso.startswith("python"):
        if GC.search(symbol):
            return "garbage collection"
        if ALLOCATION.search(symbol):
            return "allocation and deallocation"
        if symbol in ("bytes_translate_impl", "bytes_replace"):
            return "bytes.translate and replace: the nesting check"
        return "interpreter: running Python code"
    for part, pattern in PARTS_BY_DSO:
        if pattern.search(dso):
            return part
    if "libc" in dso:
        return (
            "allocation and deallocation"
            if ALLOCATION.search(symbol)
            else ("libc: copies, compares, formatting")
        )
    return "other"


def samples_by_part(data: Path) -> Counter[str]:
    report = subprocess.run(
        [
            "perf",
            "report",
            "-i",
            str(data),
            "--no-children",
            "-g",
            "none",
            "--sort",
            "dso,sym",
            "--stdio",
            "-F",
            "sample,dso,sym",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    parts: Counter[str] = Counter()
    for line in report.splitlines():
        fields = line.split()
        if not fields or line.startswith("#") or not fields[0].isdigit() or len(fields) < 3:
            continue
        count, dso = int(fields[0]), fields[1]
        symbol = fields[-1]
        parts[part_of(dso, symbol)] += count
    return parts


def profile(
    server: str, seconds: int, workdir: Path, listing: Path
) -> tuple[Counter[str], float, float]:
    """(samples by part, admissions per second, server CPU µs per admission)."""
    state = None if server == "null" else SMALL_STATE
    command, ready = server_command(free_port(), workdir / "certs", state)
    process = subprocess.Popen(
        pinned(0, command),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    data = workdir / f"perf-{server}.data"
    try:
        context = ssl.create_default_context(cafile=str(workdir / "certs" / "ca.crt"))
        wait_ready(ready, context, process, timeout=120)
        url = ready.rsplit("/", 1)[0] + "/validate"
        wrk(url, listing, 16, 2)  # warm up
        sampler = subprocess.Popen(
            ["perf", "record", "-F", "999", "-p", str(process.pid), "-o", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        cpu_before, _ = cpu_and_switches(process.pid)
        result = wrk(url, listing, 16, seconds)
        cpu_after, _ = cpu_and_switches(process.pid)
        sampler.send_signal(signal.SIGINT)
        sampler.wait(timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    answered = max(1, int(result["requests"]))
    return samples_by_part(data), answered / seconds, (cpu_after - cpu_before) * 1e6 / answered


def table(results: dict[str, tuple[Counter[str], float, float]]) -> str:
    names = list(results)
    lines = [
        "| part | " + " | ".join(f"{n}: µs per admission" for n in names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for part in ORDER:
        cells = []
        for name in names:
            parts, _, cpu_us = results[name]
            total = sum(parts.values()) or 1
            cells.append(f"{parts.get(part, 0) / total * cpu_us:.1f}")
        lines.append(f"| {part} | " + " | ".join(cells) + " |")
    lines.append(
        "| **all (server CPU per admission)** | "
        + " | ".join(f"**{results[n][2]:.1f}**" for n in names)
        + " |"
    )
    lines.append(
        "| admissions/s under perf | " + " | ".join(f"{results[n][1]:,.0f}" for n in names) + " |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    for tool, package in (("wrk", "wrk"), ("perf", "linux-perf")):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install {package}")
    workdir = Path(tempfile.mkdtemp(prefix="snapshot-webhook-profile-"))
    certs.ensure(workdir / "certs", certs.LOCAL_NAMES)
    listing = workdir / "payloads.txt"
    listing.write_text("\n".join(str(p) for p in payloads(workdir / "payloads")) + "\n")
    results = {}
    for server in ("null", "webhook"):
        print(f"profiling the {server} server ...", file=sys.stderr, flush=True)
        results[server] = profile(server, args.seconds, workdir, listing)
    shutil.rmtree(workdir, ignore_errors=True)
    print(table(results))


if __name__ == "__main__":
    main()
