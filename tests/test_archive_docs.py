"""The examples of docs/archive.md run, so they cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "archive.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
# What each example must print: proof that it did its work.
EXPECTED = ["True 1 3", "True [3]", "rooms 1 turns 4"]


def test_the_doc_has_its_examples() -> None:
    assert len(EXAMPLES) == len(EXPECTED)


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_archive_doc_example_runs(index: int) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", EXAMPLES[index]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert EXPECTED[index] in done.stdout, done.stdout
    assert done.stderr == ""
