"""``cai serve``: through ``main(argv)`` in-process for what ends at once, and as a real
process (it runs until stopped) with the official ``openai`` client against it."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import openai
import pytest

import caiclient.bridge as bridge
from caiclient import CaiError, RateLimited, TransportError, ValidationError
from caiclient.cli import main
from caiclient.emulator import Emulator


def test_the_bridge_errors_are_importable_from_one_place() -> None:
    assert issubclass(bridge.WireError, ValidationError)
    assert issubclass(bridge.StateUnavailable, TransportError)
    assert issubclass(bridge.Busy, RateLimited)
    assert all(issubclass(e, CaiError) for e in (bridge.WireError, bridge.Busy))
    assert {"Busy", "StateUnavailable", "WireError"} <= set(bridge.__all__)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::"])
def test_a_public_address_without_a_key_is_a_usage_error(
    host: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAI_SERVE_API_KEY", raising=False)
    monkeypatch.delenv("CAI_TOKEN", raising=False)  # refused before any login is needed
    assert main(["serve", "--host", host]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("cai: usage: refusing to listen on")
    assert "CAI_SERVE_API_KEY" in err and "Traceback" not in err


def test_help_names_the_contract_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--state", "--api-key", "CAI_SERVE_API_KEY"):
        assert option in out


@asynccontextmanager
async def cai_serve(
    emu: Emulator, tmp_path: Path, *argv: str, key: str | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, list[str]]]:
    """``cai serve`` as a process on the emulator's account; (process, base URL, banner)."""
    env = {
        **os.environ,
        "CAI_BASE_URL": emu.url,
        "CAI_TOKEN": emu.token,
        "CAI_CONFIG_DIR": str(tmp_path / "config"),
        "CAI_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("CAI_SERVE_API_KEY", None)
    if key is not None:
        env["CAI_SERVE_API_KEY"] = key
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "caiclient.cli", "serve", "--port", "0", *argv,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        banner: list[str] = []
        while not banner or not banner[-1].lstrip().startswith("models:"):  # its last line
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "cai serve ended before it listened"
            banner.append(line.rstrip("\n"))
        url = banner[0].split()[4]
        assert url.startswith("http://127.0.0.1:")
        yield process, url, banner
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_cai_serve_answers_the_openai_client_and_stops_cleanly(
    emu: Emulator, tmp_path: Path
) -> None:
    state = tmp_path / "bridge.sqlite3"
    echo = emu.character("Echo").id
    async with cai_serve(emu, tmp_path, "--state", f"sqlite:///{state}") as (proc, url, banner):
        assert f"{url}/v1" in "\n".join(banner)  # how to point a client at it
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="anything") as oa:
            reply = await oa.chat.completions.create(
                model=echo, messages=[{"role": "user", "content": "Hi from openai"}]
            )
            assert (reply.choices[0].message.content or "").startswith("Hi from openai")
            stream = await oa.chat.completions.create(
                model=echo,
                messages=[{"role": "user", "content": "And a stream"}],
                stream=True,
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
            assert text.startswith("And a stream")
            assert echo in [m.id for m in (await oa.models.list()).data]
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert proc.stdout is not None and proc.stderr is not None
        out = "\n".join(banner) + (await proc.stdout.read()).decode()
        err = (await proc.stderr.read()).decode()
    assert emu.token not in out and emu.token not in err  # never the c.ai token
    assert "cai serve: stopped" in err and "Traceback" not in err
    # Closed cleanly: the state file carries no mark of a crash.
    with sqlite3.connect(state) as db:
        assert db.execute("SELECT count(*) FROM bridge_open").fetchone() == (0,)


async def test_the_api_key_can_come_from_the_environment(emu: Emulator, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'keyed.sqlite3'}"
    async with cai_serve(emu, tmp_path, "--state", state, key="s3cret-key") as (proc, url, banner):
        assert "s3cret-key" not in "\n".join(banner)
        models = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
        async with models as wrong:
            with pytest.raises(openai.AuthenticationError):
                await wrong.models.list()
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="s3cret-key") as right:
            assert (await right.models.list()).data is not None
        proc.send_signal(signal.SIGTERM)  # as a service manager stops it
        assert await asyncio.wait_for(proc.wait(), 30) == 0


def test_the_readme_cai_serve_example_runs() -> None:
    # Marked apart from the `<!-- example: NAME -->` blocks of tests/test_readme.py.
    import re
    import subprocess

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- cai-serve example -->\n```python\n(.*?)```", readme, re.DOTALL)
    assert found is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAI_")}
    env["CAI_EMULATOR_CHUNK_DELAY"] = "0"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", found.group(1)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "['echo']" in done.stdout  # the alias is listed
    assert "Hello, cai serve" in done.stdout  # Echo's reply, streamed
    assert done.stderr == ""
