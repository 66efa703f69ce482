"""The scriptable commands through `main(argv)` against the emulator: characters, chats,
personas, voices, tts, `chat` as a filter, exit statuses, completion and start-up."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import _cli_support as support
from _cli_support import cai, cai_json
from caiclient import Client, Endpoints
from caiclient.cli import _app
from caiclient.emulator import Emulator

cli_env = support.cli_env
bg_emu = support.bg_emu
logged_in = support.logged_in


def _client(emu: Emulator) -> Client:
    return Client(emu.token, endpoints=Endpoints.local(emu.url))


def test_characters_search_info_similar_mine(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    found = cai_json(capsys, "characters", "search", "captain")
    assert found[0]["name"] == "Captain Byte"
    assert set(found[0]) >= {"id", "name", "title", "creator", "interactions", "avatar_url"}
    info = cai_json(capsys, "characters", "info", "Sage")
    assert info["id"] == logged_in.character("Sage").id and "definition" in info
    url = f"https://character.ai/chat/{info['id']}"
    assert cai_json(capsys, "characters", "info", url)["name"] == "Sage"
    assert isinstance(cai_json(capsys, "characters", "similar", info["id"]), list)
    assert cai_json(capsys, "characters", "mine") == []
    status, out, _ = cai(capsys, "characters", "search", "captain")
    assert status == 0 and "Captain Byte" in out and found[0]["id"] in out  # a table


def test_unknown_character_suggests_close_matches(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = cai(capsys, "characters", "info", "Sagee")
    assert status == 5 and out == ""
    assert "close matches: Sage" in err and "Traceback" not in err


def test_chat_once_and_chats_commands(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = cai(capsys, "chat", "Echo", "--once", "Hello from the filter")
    assert status == 0, err
    assert out.startswith("Hello from the filter")
    chats = cai_json(capsys, "chats", "list", "Echo")
    assert len(chats) == 1 and chats[0]["character_id"] == logged_in.character("Echo").id
    chat_id = chats[0]["chat_id"]
    shown = cai_json(capsys, "chats", "show", chat_id, "-n", "2")
    assert [t["is_human"] for t in shown["turns"]] == [True, False]
    assert shown["turns"][0]["text"] == "Hello from the filter"
    assert cai_json(capsys, "chats", "rename", chat_id, "Filter test")["name"] == "Filter test"
    copied = cai_json(capsys, "chats", "copy", chat_id)
    assert copied["chat_id"] != chat_id
    assert cai_json(capsys, "chats", "archive", copied["chat_id"])["archived"] is True
    assert len(cai_json(capsys, "chats", "list", "Echo", "--all")) == 2
    assert cai_json(capsys, "chats", "unarchive", copied["chat_id"])["archived"] is False
    recent = cai_json(capsys, "chats", "list")
    assert {c["chat_id"] for c in recent} == {chat_id, copied["chat_id"]}


def test_chat_resumes_the_latest_chat_unless_new(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    first = cai_json(capsys, "chat", "Echo", "--once", "one")
    again = cai_json(capsys, "chat", "Echo", "--once", "two")
    assert first["chat_id"] == again["chat_id"]
    fresh = cai_json(capsys, "chat", "Echo", "--new", "--once", "three")
    assert fresh["chat_id"] != first["chat_id"]
    chosen = cai_json(capsys, "chat", "--chat", first["chat_id"], "--once", "four")
    assert chosen["chat_id"] == first["chat_id"]
    url = f"https://character.ai/chat/{logged_in.character('Echo').id}?hist={fresh['chat_id']}"
    assert cai_json(capsys, "chat", url, "--once", "five")["chat_id"] == fresh["chat_id"]


def test_chat_as_a_filter(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("first line\n\nsecond line\n"))
    status, out, err = cai(capsys, "chat", "Echo", "--json")
    assert status == 0, err
    replies = [json.loads(line) for line in out.splitlines()]
    assert [r["text"].split(" —")[0] for r in replies] == ["first line", "second line"]
    assert all(not r["is_human"] and r["author"] == "Echo" for r in replies)


def test_filtered_message_is_one_line(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = cai(capsys, "chat", "Echo", "--once", "[[self-harm]]")
    assert status == 1
    assert err.startswith("cai: refused: Self harm message detected")
    assert err.count("\n") == 1


def test_rate_limited_exit_status(logged_in: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    logged_in.rate_limit(generations=1, per=60)
    assert cai(capsys, "chat", "Echo", "--once", "ok")[0] == 0
    status, _, err = cai(capsys, "chat", "Echo", "--once", "too many")
    assert status == 7 and "rate limited" in err


def test_network_failure_exit_status(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAI_BASE_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    monkeypatch.setenv("CAI_TOKEN", "0" * 40)
    status, _, err = cai(capsys, "whoami", "--timeout", "2")
    assert status == 6 and err.startswith("cai: network:") and "Traceback" not in err


def test_debug_shows_the_traceback_and_redacts_the_token(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = cai(capsys, "-v", "chats", "show", "00000000-0000-4000-8000-000000000000")
    assert status == 5
    assert "Traceback" in err and "ChatNotFound" in err
    assert logged_in.token not in out + err


def test_an_id_that_starts_with_a_dash_goes_after_double_dash(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    dash_id = "-nG3bOKOMaBRrLVgaQzetftrkaVG9bk9ktyRAf10gVg"  # 43 base64url characters
    status, out, err = cai(capsys, "personas", "delete", dash_id)
    assert status == 2 and out == ""
    assert "No such option" in err and "put it after '--'" in err
    status, _, err = cai(capsys, "personas", "delete", "--", dash_id)
    assert status == 5  # Parsed as the id: there is no such persona.
    assert f"no persona '{dash_id}'" in err


def test_personas_lifecycle(logged_in: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    made = cai_json(capsys, "personas", "create", "Ada", "--definition", "Loves engines.")
    assert made["name"] == "Ada" and made["definition"] == "Loves engines."
    assert cai_json(capsys, "personas", "default", "Ada")["default"]["id"] == made["id"]
    listed = cai_json(capsys, "personas", "list")
    assert [(p["name"], p["default"]) for p in listed] == [("Ada", True)]
    changed = cai_json(capsys, "personas", "update", "ada", "--greeting", "Hello, I am Ada.")
    assert changed["greeting"] == "Hello, I am Ada."
    assert cai_json(capsys, "personas", "default", "--clear")["default"] is None
    cai_json(capsys, "personas", "delete", "--", made["id"])  # (An id may start with "-".)
    assert cai_json(capsys, "personas", "list") == []
    status, _, err = cai(capsys, "personas", "delete", "Ada")
    assert status == 5 and "no persona 'Ada'" in err


def test_voices_and_tts(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    voices = cai_json(capsys, "voices", "search", "narrator")
    assert voices and voices[0]["name"] == "Narrator"
    reply = cai_json(capsys, "chat", "Sage", "--once", "read to me")
    target = tmp_path / "reply.mp3"
    result = cai_json(
        capsys, "tts", reply["chat_id"], "--voice", voices[0]["id"], "-o", str(target)
    )
    assert result["turn"]["turn_id"] == reply["turn_id"]
    assert target.read_bytes()[:3] in (b"ID3", b"\xff\xfb")  # an MP3
    turn_ref = f"{reply['chat_id']}:{reply['turn_id']}"
    assert cai_json(capsys, "tts", turn_ref, "--voice", "soft whisper", "-o", str(target))["bytes"]
    status, _, err = cai(capsys, "tts", "--text", "hi", "--voice", "x", "-o", str(target))
    assert status == 2 and "only chat turns" in err


def test_usage_errors_exit_2(logged_in: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert cai(capsys, "chats", "list", "--all")[0] == 2
    assert cai(capsys, "frobnicate")[0] == 2
    assert cai(capsys, "chat")[0] == 2
    status, _, err = cai(capsys, "chat", "https://example.com/nothing", "--once", "x")
    assert status == 2 and "not a character.ai" in err


def test_exit_status_table_is_documented() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    for error, status, label, _fix in _app.EXIT_STATUSES:
        assert f"| {status} | {label} |" in doc, (error, status, label)
    assert f"| {_app.EXIT_INTERRUPTED} | interrupted |" in doc
    for name in _app.COMMANDS:
        assert f"`cai {name}" in doc, name


def test_common_options_go_before_or_after_the_command(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    before = cai(capsys, "--json", "whoami")
    after = cai(capsys, "whoami", "--json")
    assert before[0] == after[0] == 0
    assert json.loads(before[1]) == json.loads(after[1])


def test_completion_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    for shell, marker in (("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete ")):
        status, out, _ = cai(capsys, "completion", shell)
        assert status == 0 and marker in out and "_CAI_COMPLETE" in out
    env = {**support.env_without_secrets(), "_CAI_COMPLETE": "bash_complete"}
    env.update(COMP_WORDS="cai chats l", COMP_CWORD="2")
    done = subprocess.run(
        [sys.executable, "-m", "caiclient.cli"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "plain,list" in done.stdout


def test_help_imports_nothing_heavy() -> None:
    probe = (
        "import sys; from caiclient.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('rich', 'prompt_toolkit', 'keyring', 'platformdirs', "
        "'curl_cffi', 'aiohttp', 'caiclient.emulator', 'caiclient.cli.chat') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert "HEAVY []" in done.stderr, done.stderr
