"""Shared helpers of the CLI tests: an isolated config/keyring, an emulator on its own thread."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caiclient.cli import main
from caiclient.emulator import Emulator
from caiclient.emulator.background import BackgroundEmulator

CLEARED = ("CAI_TOKEN", "CAI_BASE_URL", "CAI_PROFILE", "CAI_EMULATOR_STATE")


@pytest.fixture(autouse=True)
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every CLI test gets its own config and data folders and no usable keyring, so it
    never reads or writes the developer's real token."""
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CAI_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("CAI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    reload_keyring()
    return tmp_path


def reload_keyring() -> None:
    """keyring picks its backend once per process; pick again from the environment."""
    import keyring.core

    keyring.core.init_backend()


@pytest.fixture
def bg_emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An emulator on its own thread (``main()`` runs its own event loop), with
    ``$CAI_BASE_URL`` pointing at it."""
    with BackgroundEmulator(chunk_delay=0.0) as emu:
        monkeypatch.setenv("CAI_BASE_URL", emu.url)
        yield emu


@pytest.fixture
def logged_in(bg_emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator's user, through ``$CAI_TOKEN``."""
    monkeypatch.setenv("CAI_TOKEN", bg_emu.token)
    return bg_emu


def cai(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``cai ARGV`` in-process; return (status, stdout, stderr)."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def cai_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    status, out, err = cai(capsys, "--json", *argv)  # (Before the command: ARGV may hold "--".)
    assert status == 0, err
    return json.loads(out)


def env_without_secrets() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in CLEARED}
