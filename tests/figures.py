"""Figures that the reliability document quotes, recorded by the tests that measure them.

With SNAPSHOT_WEBHOOK_FIGURES=path set (as `scripts/reliability` sets it), each
figure is appended to that JSON Lines file; otherwise nothing is written.
"""

from __future__ import annotations

import json
import os
import time


def record_figure(name: str, value: str) -> None:
    path = os.environ.get("SNAPSHOT_WEBHOOK_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"figure": name, "value": value, "time": time.time()}) + "\n")
