"""No answer depends on the hash seed, and none is a 500: `review` gives the same
output under PYTHONHASHSEED 0 to 8 for every example review and for UPDATEs
built to make set order matter (many changed keys, deep identical values)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from builders import changed, group_snapshot, review, snapshot_class
from serving import ROOT


def deep_expressions(levels: int) -> str:
    """Objects and arrays alternating, `levels` deep."""
    return '{"k": [' * (levels // 2) + '"leaf"' + "]}" * (levels // 2)


def write_cases(folder: Path) -> None:
    for example in sorted((ROOT / "examples" / "reviews").glob("*.json")):
        shutil.copy(example, folder / example.name)
    # a group snapshot UPDATE: matchLabels changed beside an identical, deep
    # matchExpressions in both objects (deeper than the limit, and just under it)
    for levels in (300, 240):
        old = group_snapshot("g", selector={"matchLabels": {"app": "a"}, "matchExpressions": "X"})
        new = changed(old, **{"spec.source.selector.matchLabels": {"app": "b", "tier": "db"}})
        text = json.dumps(review(new, operation="UPDATE", old=old))
        (folder / f"group-{levels}.json").write_text(text.replace('"X"', deep_expressions(levels)))
    # a class whose parameters change in many keys at once
    old = snapshot_class("many", parameters={f"key-{n}": f"v{n}" for n in range(40)})
    new = changed(old, parameters={f"key-{n}": f"w{n}" for n in range(0, 40, 3)})
    (folder / "class-parameters.json").write_text(
        json.dumps(review(new, operation="UPDATE", old=old))
    )


def test_answers_are_the_same_under_every_hash_seed(tmp_path: Path) -> None:
    write_cases(tmp_path)
    outputs = set()
    for seed in range(9):
        result = subprocess.run(
            [sys.executable, "-m", "webhook", "review", str(tmp_path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            check=False,
        )
        assert "Traceback" not in result.stderr
        answers = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(answers) == len(list(tmp_path.glob("*.json"))) - 1  # one too deep to read
        assert all(a["response"].get("status", {}).get("code") != 500 for a in answers)
        outputs.add((result.returncode, result.stdout, result.stderr))
    assert len(outputs) == 1
    ((_, _, stderr),) = outputs
    assert "group-300.json: body is nested deeper than 256 levels" in stderr
