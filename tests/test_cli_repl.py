"""`cai chat` in a real terminal: tmux runs it, send-keys types, capture-pane reads the screen.

The emulator runs in the test process (on its own thread), so the tests can inject faults
and read what the server stored through a real client.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

import _cli_support as support
from caiclient import Client, Endpoints, Turn
from caiclient.emulator import Emulator
from caiclient.emulator.background import BackgroundEmulator

cli_env = support.cli_env

if shutil.which("tmux") is None:  # CI installs it (.ci/run); elsewhere say why nothing ran.
    if os.environ.get("CI"):
        raise RuntimeError("tmux is required for the terminal tests; .ci/run installs it")
    pytest.skip("tmux is not installed", allow_module_level=True)

SOCKET = f"caitest-{os.getpid()}"  # Our own tmux server: other tmux users are untouched.
PROMPT = "you>"


class Terminal:
    """One tmux window running a command, 100x40."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.name = f"cai-{uuid.uuid4().hex[:8]}"
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        line = f"env {assignments} {shlex.join(command)}; echo EXITED $?; sleep 120"
        self._tmux("new-session", "-d", "-s", self.name, "-x", "100", "-y", "40", line)

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", SOCKET, *args], capture_output=True, text=True, timeout=10, check=True
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", self.name, "-l", text)
        self.keys("Enter")

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", self.name)

    def wait(self, check: Callable[[str], bool], timeout: float = 20.0) -> str:
        """Poll the screen until ``check`` holds; fail with the screen at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if check(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"terminal never showed what was expected; screen:\n{screen}")
            time.sleep(0.03)

    def wait_for(self, text: str, timeout: float = 20.0, count: int = 1) -> str:
        return self.wait(lambda screen: screen.count(text) >= count, timeout)

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-L", SOCKET, "kill-session", "-t", self.name],
            capture_output=True,
            timeout=10,
            check=False,
        )


@pytest.fixture(scope="module", autouse=True)
def tmux_server() -> Iterator[None]:
    yield
    subprocess.run(
        ["tmux", "-L", SOCKET, "kill-server"], capture_output=True, timeout=10, check=False
    )


@pytest.fixture
def slow_emu() -> Iterator[Emulator]:
    """Replies of 6 frames 0.25 s apart: slow enough to watch them grow."""
    with BackgroundEmulator(chunk_delay=0.25, chunks=6) as emu:
        yield emu


@pytest.fixture
def chat_in_terminal(slow_emu: Emulator, cli_env: object) -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def start(*argv: str) -> Terminal:
        env = {
            **{k: os.environ[k] for k in ("CAI_CONFIG_DIR", "CAI_DATA_DIR", "PATH")},
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "CAI_BASE_URL": slow_emu.url,
            "CAI_TOKEN": slow_emu.token,
            "TERM": "xterm-256color",
            "PYTHONWARNINGS": "error",
        }
        terminal = Terminal([sys.executable, "-m", "caiclient.cli", "chat", *argv], env)
        opened.append(terminal)
        terminal.wait_for(PROMPT)
        return terminal

    yield start
    for terminal in opened:
        terminal.close()


def _history(emu: Emulator) -> list[Turn]:
    with Client(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        chats = client.chats.recent(emu.character("Echo").id)
        return client.chats.history(chats[0], all_candidates=True)


def test_reply_streams_progressively(
    chat_in_terminal: Callable[..., Terminal], slow_emu: Emulator
) -> None:
    term = chat_in_terminal("Echo")
    term.type("watch me grow")
    # Echo's reply starts with the message; catch it once begun and not yet finished.
    partial = term.wait(lambda s: "watch me grow —" in s and s.rstrip().endswith(PROMPT) is False)
    term.wait_for(PROMPT, count=2)
    final = _history(slow_emu)[-1].text
    assert final.startswith("watch me grow")
    assert final[-25:] not in partial  # The first screen had only part of the reply.
    assert final[-25:] in " ".join(term.screen().split())


def test_swipe_next_prev_and_select(
    chat_in_terminal: Callable[..., Terminal], slow_emu: Emulator
) -> None:
    term = chat_in_terminal("Echo")
    term.type("first")
    term.wait_for(PROMPT, count=2)
    term.type("/swipe")
    term.wait_for("(candidate 2 of this reply)")
    term.type("/prev")
    term.wait_for("(1/2)")
    reply = _history(slow_emu)[-1]
    assert len(reply.candidates) == 2
    oldest = min(reply.candidates, key=lambda c: c.create_time or 0)
    assert reply.primary_candidate_id == oldest.candidate_id
    term.type("/select 2")
    term.wait_for("(2/2)")
    term.type("/next")
    term.wait_for("this is the last candidate")


def test_edit_regenerates_and_undo_removes_the_exchange(
    chat_in_terminal: Callable[..., Terminal], slow_emu: Emulator
) -> None:
    term = chat_in_terminal("Echo")
    term.type("a typo here")
    term.wait_for(PROMPT, count=2)
    turns_before = len(_history(slow_emu))
    term.type("/edit")
    term.wait_for("edit> a typo here")
    term.keys("C-u")  # Clear the pre-filled line, as a user would.
    term.type("fixed text")
    term.wait_for(PROMPT, count=3, timeout=30)
    turns = _history(slow_emu)
    assert len(turns) == turns_before
    assert turns[-2].text == "fixed text"
    assert len(turns[-1].candidates) == 2  # The reply was regenerated.
    term.type("/undo")
    term.wait_for("(removed 2 turns)")
    assert len(_history(slow_emu)) == turns_before - 2


def test_ctrl_c_stops_the_reply_and_the_chat_goes_on(
    chat_in_terminal: Callable[..., Terminal], slow_emu: Emulator
) -> None:
    term = chat_in_terminal("Echo")
    term.type("stop me")
    term.wait_for("stop me —")
    term.keys("C-c")
    term.wait_for("(stopped)")
    term.wait_for(PROMPT, count=2)
    term.type("still here?")  # Usable at once: the next message streams in full.
    screen = term.wait_for(PROMPT, count=3, timeout=30)
    assert "still here? —" in screen
    assert "EXITED" not in screen
    assert _history(slow_emu)[-2].text == "still here?"


def test_ctrl_c_tells_the_server_to_stop(
    chat_in_terminal: Callable[..., Terminal], slow_emu: Emulator
) -> None:
    term = chat_in_terminal("Echo")
    term.type("stop me")
    term.wait_for("stop me —")
    term.keys("C-c")
    term.wait_for("(stopped)")
    deadline = time.monotonic() + 10
    while not slow_emu.aborts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow_emu.aborts


def test_ctrl_c_and_ctrl_d_at_the_prompt_quit(chat_in_terminal: Callable[..., Terminal]) -> None:
    term = chat_in_terminal("Echo")
    term.keys("C-c")
    assert "Traceback" not in term.wait_for("EXITED 0")
    term = chat_in_terminal("Echo")
    term.keys("C-d")
    term.wait_for("EXITED 0")


def test_socket_drop_mid_reply_is_noted_and_nothing_is_lost(
    chat_in_terminal: Callable[..., Terminal], slow_emu: Emulator
) -> None:
    term = chat_in_terminal("Echo")
    slow_emu.faults.drop_after(3)
    term.type("across a drop")
    screen = term.wait_for("(the connection dropped and was reopened; nothing lost)", timeout=30)
    final = _history(slow_emu)[-1].text
    assert final.startswith("across a drop")
    assert final[-25:] in " ".join(screen.split())


def test_unknown_slash_command_sends_nothing(
    chat_in_terminal: Callable[..., Terminal], slow_emu: Emulator
) -> None:
    term = chat_in_terminal("Echo")
    count = len(_history(slow_emu))
    term.type("/frobnicate")
    term.wait_for("unknown command /frobnicate; /help lists them")
    term.type("/help")
    term.wait_for("/export")
    assert len(_history(slow_emu)) == count
