"""Benchmark 8 (the archive) in smoke mode: it runs and its correctness checks hold.

No speed is asserted here: ``make bench`` judges the targets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(60)
def test_archive_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    argv = [sys.executable, "-m", "benchmarks", "--smoke", "--only", "archive", "--no-write"]
    done = subprocess.run(
        [*argv, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["problems"] == []
    sizes, raw = report["sizes"], report["raw"]["archive"]
    for name, turns in (("big", sizes["archive_turns"]), ("small", sizes["archive_small_turns"])):
        for fmt in ("native", "sillytavern"):
            assert [r["turns"] for r in raw["export"][f"{fmt}/{name}"]] == [turns]
    [backup] = raw["backup"]
    assert backup["ok"] and backup["chats"] == sizes["backup_chats"]
    assert backup["turns"] == sizes["backup_chats"] * (2 * sizes["backup_messages"] + 1)
    assert backup["unchanged_requests"] == backup["minimum_requests"]
    labels = [row["label"] for row in report["rows"]]
    assert sum(label.startswith("8.") for label in labels) == 7
