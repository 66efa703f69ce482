"""Tier 4: the `cai` command line, in-process and as a real process."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys

import pytest

from caiclient import AsyncClient, Endpoints
from caiclient.cli import main
from caiclient.cli.demo import SCRIPT, run_demo


async def test_demo_runs_the_scripted_conversation() -> None:
    out = io.StringIO()
    assert await run_demo(character="Echo", out=out) == 0
    text = out.getvalue()
    for message in SCRIPT:
        assert f"you> {message}\n" in text
        # Echo's replies begin with the message, so each reply line proves a streamed answer.
        assert f"Echo> {message}" in text


def test_demo_as_a_process_prints_replies() -> None:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    done = subprocess.run(
        [sys.executable, "-m", "caiclient.cli", "demo"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Sage> " in done.stdout
    assert done.stdout.count("you> ") == len(SCRIPT)
    assert done.stderr == ""


def test_demo_rejects_an_unknown_character(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--script", "--character", "Nobody"]) == 2
    assert "Echo" in capsys.readouterr().err


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out
    assert "emulator" in out


async def test_emulator_command_serves_a_client_until_interrupted() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "caiclient.cli",
        "emulator",
        "--chunk-delay",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = token = ""
        while not (url and token):
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "emulator exited before printing its URL and token"
            if line.startswith("caiclient emulator on "):
                url = line.split()[-1]
            elif line.strip().startswith("token:"):
                token = line.split()[-1]
        async with AsyncClient(token, endpoints=Endpoints.local(url)) as client:
            me = await client.account.me()
            assert me.username
    finally:
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 10)
    assert code in (0, 130)
