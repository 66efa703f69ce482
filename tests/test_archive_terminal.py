"""``cai backup`` in a real terminal (tmux): rich progress bars, then the summary."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import _cli_support as support
from caiclient import Client, Endpoints
from caiclient.emulator import Emulator
from test_cli_repl import SOCKET, Terminal  # skips this module too where tmux is missing

cli_env = support.cli_env
bg_emu = support.bg_emu


@pytest.fixture(scope="module", autouse=True)
def tmux_server() -> Iterator[None]:
    yield
    subprocess.run(
        ["tmux", "-L", SOCKET, "kill-server"], capture_output=True, timeout=10, check=False
    )


def test_backup_draws_progress_bars_on_a_terminal(cli_env: Path, bg_emu: Emulator) -> None:
    emu = bg_emu
    with Client(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        for name in ("Sage", "Echo", "Nova"):
            chat, _ = client.chats.create(emu.character(name).id)
            client.chats.send(chat, "hello")
    env = {
        **support.env_without_secrets(),
        "CAI_TOKEN": emu.token,
        "CAI_BASE_URL": emu.url,
        "TERM": "xterm-256color",
        "COLUMNS": "100",
    }
    archive = cli_env / "a.cai"
    command = [sys.executable, "-m", "caiclient.cli", "backup", "--archive", str(archive)]
    terminal = Terminal([*command, "--rate", "20"], env)
    try:
        screen = terminal.wait_for("EXITED", timeout=60)
    finally:
        terminal.close()
    assert "EXITED 0" in screen, screen
    bar = next(line for line in screen.splitlines() if line.startswith("chats"))
    assert "3/3" in bar and "turns" in bar and "req/s" in bar, screen
    assert "━" in bar  # rich's bar, drawn because stderr is a terminal
    assert "chats:   3 new" in screen and "0 errors" in screen
    assert "checking 3 chats" not in screen  # the plain lines are for pipes only
