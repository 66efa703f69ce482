"""The README's "Command line" session is run, command by command, and its output checked."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import _cli_support as support

cli_env = support.cli_env

README = Path(__file__).resolve().parent.parent / "README.md"
SESSION = re.compile(r"<!-- session: cli -->\n```sh\n(.*?)```", re.DOTALL)


def _steps() -> list[tuple[str, list[str]]]:
    match = SESSION.search(README.read_text(encoding="utf-8"))
    assert match is not None, "README lost its Command line session"
    steps: list[tuple[str, list[str]]] = []
    for line in match.group(1).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def _pattern(expected: str) -> re.Pattern[str]:
    """A line of expected output; ``...`` stands for what differs per run (ids, times)."""
    return re.compile("^" + ".*?".join(map(re.escape, expected.split("..."))) + r"\s*$")


def test_readme_session_has_commands() -> None:
    commands = [command for command, _ in _steps()]
    assert len(commands) >= 3
    assert all(c.startswith("cai --emulator ") for c in commands)


def test_readme_session_runs(cli_env: Path) -> None:
    env = {
        **support.env_without_secrets(),
        "CAI_EMULATOR_STATE": str(cli_env / "emulator.sqlite"),
        "PYTHONWARNINGS": "error",
    }
    for command, expected in _steps():
        argv = [sys.executable, "-m", "caiclient.cli", *_split(command)[1:]]
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (command, done.stderr)
        lines = done.stdout.splitlines()
        assert len(lines) == len(expected), (command, done.stdout)
        for got, want in zip(lines, expected, strict=True):
            assert _pattern(want).match(got), (command, want, got)


def _split(command: str) -> list[str]:
    return shlex.split(command)
