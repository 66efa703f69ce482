"""`cai login`, `logout`, `whoami` and the token store (caiclient.profiles), end to end."""

from __future__ import annotations

import io
import json
import os
import stat
import threading
import time
import urllib.request
from pathlib import Path

import pytest

import _cli_support as support
from _cli_support import cai, reload_keyring
from caiclient import NotLoggedIn, ValidationError, profiles
from caiclient.emulator import Emulator

cli_env = support.cli_env
bg_emu = support.bg_emu
logged_in = support.logged_in

EMAIL = "ada@example.com"


def _click_when_mailed(emu: Emulator, email: str, done: threading.Event) -> threading.Thread:
    """What the user does: wait for the mail, open its link in "a browser" (a plain GET)."""

    def click() -> None:
        deadline = time.monotonic() + 20
        url = f"{emu.url}/__emulator__/mailbox?email={email}"
        mailbox = urllib.request.Request(url, headers={"X-Emulator-Control": emu.control_token})
        while time.monotonic() < deadline and not done.is_set():
            with urllib.request.urlopen(mailbox, timeout=5) as answer:
                mails = json.loads(answer.read())
            if mails:
                with urllib.request.urlopen(mails[-1]["link"], timeout=5) as page:
                    page.read()
                return
            done.wait(0.05)

    thread = threading.Thread(target=click, daemon=True)
    thread.start()
    return thread


def test_login_by_polling_end_to_end(bg_emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    done = threading.Event()
    clicker = _click_when_mailed(bg_emu, EMAIL, done)
    try:
        status, out, err = cai(
            capsys, "login", "--email", EMAIL, "--wait", "20", "--poll-interval", "0.05"
        )
    finally:
        done.set()
        clicker.join(10)
    assert status == 0, err
    assert "Logged in as" in out and "profile 'default'" in out
    assert "no keyring backend" in out  # The clear fallback message.
    creds = profiles.load_credentials()
    assert creds.source == "file"
    assert creds.token not in out + err
    status, out, err = cai(capsys, "whoami", "--json")
    assert status == 0, err
    who = json.loads(out)
    assert who["source"] == "file" and who["profile"] == "default"
    assert who["token"] == "…" + creds.token[-4:]
    assert who["user"]["username"].startswith("ada")


def test_login_polling_times_out_with_network_status(
    bg_emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = cai(
        capsys, "login", "--email", EMAIL, "--wait", "1", "--poll-interval", "0.05", "--json"
    )
    assert status == 6
    assert "not opened" in err and "Traceback" not in err
    with pytest.raises(NotLoggedIn):
        profiles.load_credentials()


def test_login_with_a_token_on_stdin_checks_it_first(
    bg_emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("not-a-real-token\n"))
    status, _, err = cai(capsys, "login", "--token", "--profile", "work")
    assert status == 3 and "refused" in err
    with pytest.raises(NotLoggedIn):
        profiles.load_credentials("work")
    monkeypatch.setattr("sys.stdin", io.StringIO(f"Token {bg_emu.token}\n"))
    status, out, err = cai(capsys, "login", "--token", "--profile", "work")
    assert status == 0, err
    assert "@emulator_user" in out and bg_emu.token not in out + err
    assert profiles.load_credentials("work").token == bg_emu.token
    with pytest.raises(NotLoggedIn):
        profiles.load_credentials()  # Another profile: still logged out.


def test_login_with_the_link_flow(
    bg_emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class PasteLink(io.StringIO):
        """stdin that holds the mailed link by the time the prompt reads it."""

        def readline(self, size: int | None = -1) -> str:
            return bg_emu.mailbox(EMAIL)[-1].link + "\n"

    monkeypatch.setattr("sys.stdin", PasteLink())
    status, out, err = cai(capsys, "login", "--link", "--email", EMAIL)
    assert status == 0, err
    assert "Logged in as" in out
    assert profiles.load_credentials().source == "file"


def test_guest_login_and_logout(bg_emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cai(capsys, "login", "--guest", "--profile", "guest")
    assert status == 0, err
    assert "@Guest" in out
    status, out, _ = cai(capsys, "logout", "--profile", "guest")
    assert status == 0 and "removed" in out
    status, out, _ = cai(capsys, "logout", "--profile", "guest")
    assert status == 0 and "no stored token" in out
    status, _, err = cai(capsys, "whoami", "--profile", "guest")
    assert status == 3 and "cai login --profile guest" in err


def test_whoami_prefers_cai_token(logged_in: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cai(capsys, "whoami")
    assert status == 0, err
    assert "from $CAI_TOKEN" in out
    assert "…" + logged_in.token[-4:] in out and logged_in.token not in out


def test_embedded_emulator_needs_no_login(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cai(capsys, "--emulator", "whoami", "--json")
    assert status == 0, err
    assert json.loads(out)["source"] == "emulator"


# --- the token store ------------------------------------------------------------------------


TOKEN = "0123456789abcdef0123456789abcdef01234567"


def test_token_file_is_private_and_checked_on_every_read() -> None:
    where = profiles.save_token(TOKEN, "p1")
    path = profiles.token_file("p1")
    assert where == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert profiles.load_credentials("p1").token == TOKEN
    path.chmod(0o644)
    with pytest.raises(NotLoggedIn, match="other users can read it") as refused:
        profiles.load_credentials("p1")
    assert TOKEN not in str(refused.value)
    assert "chmod 600" in str(refused.value)
    path.chmod(0o600)
    assert profiles.load_credentials("p1").token == TOKEN


def test_world_readable_token_file_is_refused_by_the_cli(
    bg_emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    profiles.save_token(bg_emu.token)
    profiles.token_file().chmod(0o604)
    status, out, err = cai(capsys, "whoami")
    assert status == 3
    assert "other users can read it" in err and "Traceback" not in err
    assert bg_emu.token not in out + err


def test_damaged_token_file_says_log_in_again(capsys: pytest.CaptureFixture[str]) -> None:
    profiles.save_token(TOKEN)
    profiles.token_file().write_text("{not json")
    status, _, err = cai(capsys, "whoami")
    assert status == 3
    assert "damaged" in err and "cai login" in err


def test_unwritable_config_dir_keeps_the_old_token(cli_env: Path) -> None:
    profiles.save_token(TOKEN)
    tokens = profiles.token_file().parent
    tokens.chmod(0o500)
    try:
        if os.access(tokens, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(profiles.CaiError, match="cannot write the token file"):
            profiles.save_token("f" * 40)
    finally:
        tokens.chmod(0o700)
    assert profiles.load_credentials().token == TOKEN


def test_unwritable_config_dir_is_one_line_in_the_cli(
    bg_emu: Emulator,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    cli_env: Path,
) -> None:
    blocker = cli_env / "not-a-dir"
    blocker.write_text("a file where the config folder should be")
    monkeypatch.setenv("CAI_CONFIG_DIR", str(blocker))
    monkeypatch.setattr("sys.stdin", io.StringIO(bg_emu.token + "\n"))
    status, _, err = cai(capsys, "login", "--token")
    assert status == 1
    assert "cannot write the token file" in err and "Traceback" not in err


def test_keyring_is_used_when_a_backend_exists(
    monkeypatch: pytest.MonkeyPatch, cli_env: Path
) -> None:
    # A real backend (keyrings.alt's file keyring), chosen explicitly as a user would.
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XDG_DATA_HOME", str(cli_env / "xdg"))
    reload_keyring()
    profiles.save_token(TOKEN, "p2", store="file")
    where = profiles.save_token(TOKEN, "p2")
    assert where.startswith("keyring (keyrings.alt.file.PlaintextKeyring")
    assert not profiles.token_file("p2").exists()  # One token per profile.
    creds = profiles.load_credentials("p2")
    assert (creds.source, creds.token) == ("keyring", TOKEN)
    assert TOKEN not in repr(creds)
    assert profiles.forget("p2") == [where]
    with pytest.raises(NotLoggedIn):
        profiles.load_credentials("p2")


def test_cai_token_overrides_both_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    profiles.save_token(TOKEN)
    monkeypatch.setenv("CAI_TOKEN", "Token " + "e" * 40)
    creds = profiles.load_credentials()
    assert (creds.source, creds.token) == ("env", "e" * 40)


def test_bad_profile_names_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValidationError):
        profiles.token_file("../escape")
    status, _, err = cai(capsys, "whoami", "--profile", "../x")
    assert status == 2 and "profile name" in err
