"""README examples marked `<!-- example: NAME -->` are run, so they cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```python\n(.*?)```", re.DOTALL)
EXAMPLES = dict(EXAMPLE.findall(README.read_text(encoding="utf-8")))
# What each example must print: proof that it did its work, not just that it exited.
EXPECTED = {
    "bridge": "Hello through the bridge",
    "emulator": "Hello there",
    "sync": "Hello from sync code",
}


def test_readme_has_examples_and_quick_start() -> None:
    text = README.read_text(encoding="utf-8")
    assert EXAMPLES
    quick = re.search(r"## Quick start\n+```sh\n(.*?)```", text, re.DOTALL)
    assert quick is not None
    assert quick.group(1).strip().splitlines() == ["make demo", "make test"]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_readme_example_runs(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", EXAMPLES[name]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert EXPECTED[name] in done.stdout
    assert done.stderr == ""


API_DOC = README.parent / "docs" / "api.md"
API_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
# Complete programs only (async ones run a loop, sync ones an emulator thread); the fragment
# at the top shows the shared set-up.
API_EXAMPLES = [
    b
    for b in API_BLOCK.findall(API_DOC.read_text(encoding="utf-8"))
    if "asyncio.run(" in b or "with BackgroundEmulator(" in b
]


def test_api_doc_has_an_example_per_area() -> None:
    assert len(API_EXAMPLES) >= 6


@pytest.mark.parametrize("index", range(len(API_EXAMPLES)))
def test_api_doc_example_runs(index: int) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", API_EXAMPLES[index]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "the example printed nothing"
