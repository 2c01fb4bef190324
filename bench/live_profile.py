"""Where the live server's CPU goes, part by part, next to the null endpoint's.

    .venv/bin/python -m bench.live_profile [--seconds 10]

Each server runs as `scripts/bench` runs it (TLS, keep-alive, pinned to core 0;
wrk on core 1, 16 connections). While wrk saturates it, a sampling profiler
attached to the live process records where it is:

- `perf record` (Debian's linux-perf) at 999 Hz with native symbols, so the C
  parts are seen: TLS in OpenSSL, uvloop, httptools, msgspec, the interpreter,
  the allocator, the garbage collector, the kernel. Python 3.11 gives perf no
  Python frames.
- `py-spy record --nonblocking` at 250 Hz, Python frames: each sample is put
  in the layer of the Python function it is in (uvicorn's request cycle, the
  HTTP edge, reading the review, the rules, the log line, the metrics), C
  called from Python counting for its caller.

Each sample is put in a part, and each part's share of the samples is turned
into microseconds of the server's CPU per admission, measured from /proc over
the same window.

Then the calibration: the null endpoint made to run 0, 50 and 100 µs of
Python per admission before answering (`bench/null_app.py --busy-us`), to
measure what a microsecond of work on the request path costs the live server.
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
from collections.abc import Callable
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


def py_spy() -> str | None:
    """The py-spy binary next to this Python (scripts/bench installs it there), or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def sampler_command(sampler: str, pid: int, data: Path) -> list[str]:
    if sampler == "perf":
        return ["perf", "record", "-F", "999", "-p", str(pid), "-o", str(data)]
    spy = py_spy()
    assert spy is not None
    options = ("--nonblocking", "-r", "250", "-f", "raw", "-o", str(data))
    return [spy, "record", *options, "-p", str(pid)]


Result = tuple[Counter[str], float, float]  # samples by part, admissions/s, CPU µs per admission


def saturated(
    command: list[str],
    ready: str,
    seconds: int,
    workdir: Path,
    listing: Path,
    sample: Callable[[int], subprocess.Popen[bytes]] | None = None,
) -> tuple[float, float]:
    """(admissions per second, server CPU µs per admission) of the server that
    `command` starts, saturated by wrk, while `sample(pid)` (if given) samples it."""
    process = subprocess.Popen(
        pinned(0, command),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        context = ssl.create_default_context(cafile=str(workdir / "certs" / "ca.crt"))
        wait_ready(ready, context, process, timeout=120)
        url = ready.rsplit("/", 1)[0] + "/validate"
        wrk(url, listing, 16, 2)  # warm up
        sampler = sample(process.pid) if sample is not None else None
        if sampler is not None:
            time.sleep(0.5)  # attached before the window opens
        cpu_before, _ = cpu_and_switches(process.pid)
        result = wrk(url, listing, 16, seconds)
        cpu_after, _ = cpu_and_switches(process.pid)
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    answered = max(1, int(result["requests"]))
    return answered / seconds, (cpu_after - cpu_before) * 1e6 / answered


def profile(
    server: str, seconds: int, workdir: Path, listing: Path, sampler: str = "perf"
) -> Result:
    """(samples by part, admissions per second, server CPU µs per admission)."""
    state = None if server == "null" else SMALL_STATE
    command, ready = server_command(free_port(), workdir / "certs", state)
    data = workdir / f"{sampler}-{server}.data"

    def sample(pid: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            sampler_command(sampler, pid, data),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    rate, cpu_us = saturated(command, ready, seconds, workdir, listing, sample)
    parts = samples_by_part(data) if sampler == "perf" else samples_by_layer(data)
    return parts, rate, cpu_us


# --- Python layers (py-spy) --------------------------------------------------

LAYERS = [
    "uvicorn: request cycle and protocol",
    "send: TLS encryption and the socket write, under the protocol's write",
    "TLS: ssl module wrappers and OpenSSL",
    "event loop: uvloop's C, between callbacks",
    "HTTP edge: fast path, body read, answer written",
    "reading: nesting check, envelope, objects",
    "deciding: rules, records, state, verdict",
    "admission log line",
    "metrics",
    "no Python frame: C only, the log writer's thread",
]
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")
_READING = ("webhook/decide/admission.py", "webhook/model/reading.py", "webhook/model/values.py")


def layer_of(frames: list[str]) -> str:
    """The layer of a sample, from its innermost Python frame: a frame of no
    known layer (the standard library, generated code) counts for its caller."""
    for frame in reversed(frames):
        match = _FRAME.match(frame)
        if match is None:
            continue
        function, file = match["function"], match["file"]
        if function == "CorkedTransport.write":
            return LAYERS[1]
        if file.endswith("ssl.py"):
            return LAYERS[2]
        if file.endswith("asyncio/runners.py"):
            return LAYERS[3]
        if "uvicorn/" in file or file.endswith("webhook/serving/protocol.py"):
            return LAYERS[0]
        if file.endswith("webhook/serving/logs.py"):
            return LAYERS[7]
        if file.endswith("webhook/serving/metrics.py"):
            return LAYERS[8]
        if file.endswith(("webhook/serving/app.py", "bench/null_app.py")):
            return LAYERS[4]
        if file.endswith(_READING):
            return LAYERS[5]
        if "webhook/" in file or "kubernetes/" in file:
            return LAYERS[6]
    return LAYERS[9]


def samples_by_layer(data: Path) -> Counter[str]:
    """py-spy's raw output (one line per distinct stack, `frame;frame;... count`)
    counted by layer."""
    layers: Counter[str] = Counter()
    for line in data.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            layers[layer_of([f for f in stack.split(";") if f])] += int(count)
    return layers


# --- calibration ---------------------------------------------------------------

BUSY_LEVELS = (0, 50, 100)


def calibration(seconds: int, workdir: Path, listing: Path) -> list[tuple[int, float, float]]:
    """(µs of in-process Python per admission, admissions/s, server CPU µs per
    admission) of the null endpoint made busy, each level in turn."""
    found = []
    for busy in BUSY_LEVELS:
        command, ready = server_command(free_port(), workdir / "certs", None, busy)
        rate, cpu_us = saturated(command, ready, seconds, workdir, listing)
        found.append((busy, rate, cpu_us))
    return found


def calibration_table(found: list[tuple[int, float, float]]) -> str:
    base = found[0][2]
    lines = [
        "| Python per admission, timed in process | admissions/s | server CPU per admission | "
        "added | added per µs in process |",
        "| --- | --- | --- | --- | --- |",
    ]
    for busy, rate, cpu_us in found:
        per = f"{(cpu_us - base) / busy:.2f}" if busy else "-"
        lines.append(
            f"| {busy} µs | {rate:,.0f} | {cpu_us:.1f} µs | {cpu_us - base:+.1f} µs | {per} |"
        )
    return "\n".join(lines)


def table(results: dict[str, Result], order: list[str] = ORDER, sampler: str = "perf") -> str:
    names = list(results)
    lines = [
        "| part | " + " | ".join(f"{n}: µs per admission" for n in names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for part in order:
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
    rates = " | ".join(f"{results[n][1]:,.0f}" for n in names)
    lines.append(f"| admissions/s under {sampler} | {rates} |")
    return "\n".join(lines)


PYTHON_NOTE = """Live, by Python layer (`python -m bench.live_profile`, when py-spy is
installed; `scripts/bench` installs it): each server saturated by wrk while
`py-spy record --nonblocking` samples its Python frames at 250 Hz; a sample
counts for the layer of the innermost project, uvicorn or ssl frame, so C
called from Python (msgspec, orjson, OpenSSL, the socket) counts for its
caller, and a layer's share of the samples times the server's CPU per
admission over the same window gives its µs."""

CALIBRATION_NOTE = """What a microsecond of in-process Python costs live: the null endpoint
made to run, per admission before answering, Python work (small dicts and
tuples made and dropped) that takes a fixed time when timed in process
(`bench/null_app.py --busy-us`), saturated as above, without a profiler."""


def section(workdir: Path, listing: Path, seconds: int) -> str:
    """The live profile by part (perf, when installed), by Python layer (py-spy,
    when installed), and the calibration, as Markdown."""
    parts = []
    samplers = [("perf", LIVE_NOTE, ORDER), ("py-spy", PYTHON_NOTE, LAYERS)]
    for sampler, note, order in samplers:
        if (py_spy() if sampler == "py-spy" else shutil.which(sampler)) is None:
            continue
        try:
            results = {}
            for server in ("null", "webhook"):
                print(f"profiling the {server} server ({sampler}) ...", file=sys.stderr, flush=True)
                results[server] = profile(server, seconds, workdir, listing, sampler)
        except (OSError, subprocess.SubprocessError) as err:  # no data: not allowed to attach
            print(f"{sampler} gave no profile ({err}); left out", file=sys.stderr, flush=True)
            continue
        if not all(sum(found.values()) for found, _, _ in results.values()):
            print(f"{sampler} recorded no samples; left out", file=sys.stderr, flush=True)
            continue
        parts += [note, table(results, order, sampler)]
    print("calibrating: the null endpoint made busy ...", file=sys.stderr, flush=True)
    parts += [CALIBRATION_NOTE, calibration_table(calibration(seconds, workdir, listing))]
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="snapshot-webhook-profile-"))
    certs.ensure(workdir / "certs", certs.LOCAL_NAMES)
    listing = workdir / "payloads.txt"
    listing.write_text("\n".join(str(p) for p in payloads(workdir / "payloads")) + "\n")
    try:
        print(section(workdir, listing, args.seconds))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
