"""The benchmark harness in smoke mode: it runs, and its correctness checks hold and can fail.

No speed is asserted here: speed targets are judged by ``make bench`` on a quiet machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import Row, check_completion, table  # noqa: E402


@pytest.mark.timeout(60)
def test_smoke_run_completes_and_routes_every_reply(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--no-write", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["problems"] == []
    sizes, raw = report["sizes"], report["raw"]
    implementations = {"floor", "ours/curl", "ours/aiohttp"}
    assert set(raw["cpu"]) == set(raw["concurrency"]) == implementations
    for runs in raw["cpu"].values():
        assert [(r["completed"], r["misrouted"]) for r in runs] == [(sizes["cpu_messages"], 0)]
    for runs in raw["concurrency"].values():
        assert [(r["completed"], r["misrouted"]) for r in runs] == [(sizes["conc_generations"], 0)]
    for key in ("ours/curl", "ours/aiohttp"):
        assert raw["concurrency"][key][0]["left_in_flight"] == 0
    for runs in raw["latency"].values():
        assert runs[0]["samples"] == sizes["lat_messages"] * sizes["lat_frames"]
    for runs in raw["memory_inflight"].values():
        assert runs[0]["inflight"] == sizes["mem_inflight"]
    assert raw["capacity"][0]["generations"] > 0
    labels = [row["label"] for row in report["rows"]]
    for number in "123456":
        assert any(label.startswith(f"{number}.") for label in labels), number
    assert sum("aiohttp" in label for label in labels) >= 3  # 7: both transports compared
    assert "| benchmark | ours | floor |" in done.stdout


def test_completion_check_reports_lost_and_misrouted_replies() -> None:
    good = {"completed": 10, "misrouted": 0, "errors": [], "left_in_flight": 0}
    assert check_completion("x", good, 10) == []
    problems = check_completion(
        "x", {"completed": 9, "misrouted": 2, "errors": ["Timeout"], "left_in_flight": 1}, 10
    )
    assert len(problems) == 4
    assert any("9 of 10" in p for p in problems)
    assert any("2 replies went to the wrong request" in p for p in problems)


def test_rows_compare_run_by_run_and_judge_the_median() -> None:
    ratio = Row("r", "µs", [2.0, 3.0, 4.0], [2.0, 2.0, 2.0], "ratio", "≤ 1.0×", lambda v: v <= 1)
    assert ratio.compared() == [1.0, 1.5, 2.0]
    assert ratio.verdict() is False
    minus = Row("m", "MB", [5.0], [1.0], "minus", "", lambda v: v <= 10, "ours")
    assert minus.compared() == [4.0]
    assert minus.verdict() is True
    text = table([ratio, minus])
    assert "**NO**" in text
    assert "1.50 × (1.00–2.00)" in text
