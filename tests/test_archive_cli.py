"""``cai backup`` and ``cai export`` through ``main(argv)``, and the README's session."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import _cli_support as support
from _cli_support import cai
from caiclient import Client, Endpoints
from caiclient.archive import Archive
from caiclient.emulator import Emulator

cli_env = support.cli_env
bg_emu = support.bg_emu
logged_in = support.logged_in

README = Path(__file__).resolve().parent.parent / "README.md"
SESSION = re.compile(r"<!-- session: archive -->\n```sh\n(.*?)```", re.DOTALL)


@pytest.fixture
def chats(logged_in: Emulator) -> list[str]:
    """Three chats on the emulator the CLI talks to: Sage's with a swipe, Sage's archived
    one, Echo's."""
    with Client(logged_in.token, endpoints=Endpoints.local(logged_in.url)) as client:
        sage, echo = (logged_in.character(name).id for name in ("Sage", "Echo"))
        first, _ = client.chats.create(sage)
        client.chats.regenerate(client.chats.send(first, "hello Sage"))
        old, _ = client.chats.create(sage)
        client.chats.send(old, "an old question")
        client.chats.archive(old)
        last, _ = client.chats.create(echo)
        client.chats.send(last, "hello Echo")
        return [first.chat_id, old.chat_id, last.chat_id]


def test_backup_then_an_unchanged_backup(
    capsys: pytest.CaptureFixture[str], chats: list[str], cli_env: Path, logged_in: Emulator
) -> None:
    archive = cli_env / "a.cai"
    status, out, err = cai(capsys, "backup", "--archive", str(archive), "--rate", "0")
    assert status == 0, err
    assert "chats:   3 new, 0 changed, 0 unchanged" in out
    assert "0 errors" in out and f"archive: {archive}" in out
    assert "checking 3 chats" in err and "new" in err  # plain progress lines, not a terminal
    status, out, _ = cai(capsys, "backup", "--archive", str(archive), "--rate", "0")
    assert status == 0 and "0 new, 0 changed, 3 unchanged" in out
    with Archive(archive, readonly=True) as stored:
        assert {c.id for c in stored.chats()} >= set(chats)


def test_backup_json_is_one_event_per_line(
    capsys: pytest.CaptureFixture[str], chats: list[str], cli_env: Path
) -> None:
    status, out, _ = cai(capsys, "backup", "--archive", str(cli_env / "a.cai"), "--json")
    assert status == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0]["event"] == "started" and events[-1]["event"] == "finished"
    assert events[-1]["summary"]["ok"] is True and events[-1]["summary"]["chats_new"] == 3
    done = [e for e in events if e["event"] == "chat"]
    assert {e["chat_id"] for e in done} >= set(chats)
    assert all("requests_per_second" in e["counters"] for e in events)


def test_default_archive_is_per_profile_in_the_data_folder(
    capsys: pytest.CaptureFixture[str], chats: list[str], cli_env: Path
) -> None:
    status, out, _ = cai(capsys, "backup", "--chat", chats[0], "--rate", "0")
    assert status == 0
    path = cli_env / "data" / "archives" / "default.cai"
    assert f"archive: {path}" in out and path.exists()
    assert "1 new" in out


def test_a_failing_chat_is_reported_and_the_exit_status_says_so(
    capsys: pytest.CaptureFixture[str], chats: list[str], cli_env: Path, logged_in: Emulator
) -> None:
    logged_in.faults.http_status(500, times=1, path_prefix=f"/neo/turns/{chats[0]}/")
    status, out, err = cai(capsys, "backup", "--archive", str(cli_env / "a.cai"), "--rate", "0")
    assert status == 1
    assert "2 new" in out and "1 errors" in out
    assert f"error:   chat {chats[0]}: ServerError" in out
    assert f"failed {chats[0]}: ServerError" in err


def test_an_expired_token_stops_the_backup_with_the_auth_status(
    capsys: pytest.CaptureFixture[str], chats: list[str], cli_env: Path, logged_in: Emulator
) -> None:
    logged_in.faults.http_status(401, times=100, path_prefix="/neo/turns/")
    status, out, _ = cai(capsys, "backup", "--archive", str(cli_env / "a.cai"), "--rate", "0")
    assert status == 3
    assert "stopped: AuthError" in out


def test_bad_backup_arguments_are_usage_errors(
    capsys: pytest.CaptureFixture[str], cli_env: Path, logged_in: Emulator
) -> None:
    status, _, err = cai(capsys, "backup", "--all", "--chat", "x")
    assert status == 2 and "--all cannot be combined" in err
    status, _, err = cai(capsys, "backup", "--since", "last tuesday")
    assert status == 2 and "not a date" in err


def test_export_every_format_offline_and_refuse_to_overwrite(
    capsys: pytest.CaptureFixture[str],
    chats: list[str],
    cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive = cli_env / "a.cai"
    assert cai(capsys, "backup", "--archive", str(archive), "--rate", "0")[0] == 0
    monkeypatch.delenv("CAI_TOKEN")  # export needs no login, no network
    monkeypatch.setenv("CAI_BASE_URL", "http://127.0.0.1:9")
    for fmt in ("native", "sillytavern", "ooba", "cai-dump", "markdown", "html", "card"):
        out = cli_env / "out" / fmt
        status, text, err = cai(
            capsys, "export", "--format", fmt, "--archive", str(archive), "-o", str(out)
        )
        assert status == 0, err
        assert "files" in text and any(out.rglob("*"))
    target = cli_env / "one.jsonl"
    args = ["export", "--format", "sillytavern", "--chat", chats[0], "--archive", str(archive)]
    data = json.loads(cai(capsys, *args, "-o", str(target), "--json")[1])
    assert data["files"] == [str(target)] and data["turns"] == 3
    status, _, err = cai(capsys, *args, "-o", str(target))
    assert status == 1 and "already exists" in err and "--force" in err
    assert cai(capsys, *args, "-o", str(target), "--force")[0] == 0


def test_group_chats_are_backed_up_and_exported_by_their_id(
    capsys: pytest.CaptureFixture[str], cli_env: Path, logged_in: Emulator
) -> None:
    with Client(logged_in.token, endpoints=Endpoints.local(logged_in.url)) as client:
        cast = [logged_in.character(name).id for name in ("Echo", "Sage")]
        room = client.rooms.create(cast, title="Book club")
        client.rooms.send(room, "what are we reading?")
        client.rooms.generate(room)
    archive = cli_env / "a.cai"
    args = ("--archive", str(archive), "--rate", "0")
    status, out, err = cai(capsys, "backup", "--chat", room.id, *args)
    assert status == 0, err
    assert "rooms:   1 new, 0 changed, 0 unchanged" in out and "chats:   0 new" in out
    target = cli_env / "club.jsonl"
    status, out, err = cai(
        capsys, "export", "--format", "sillytavern", "--chat", room.id,
        "--archive", str(archive), "-o", str(target),
    )  # fmt: skip
    assert status == 0, err
    assert out.startswith("1 files, 1 chats, 4 turns")  # two greetings, a message, a reply
    header, *messages = (json.loads(line) for line in target.read_text().splitlines())
    assert header["character_name"] == "Book club"
    assert [m["name"] for m in messages][:2] == ["Echo", "Sage"]


def test_export_errors_are_clear_and_typed(
    capsys: pytest.CaptureFixture[str], cli_env: Path
) -> None:
    status, _, err = cai(capsys, "export", "--format", "pdf", "-o", str(cli_env / "x"))
    assert status == 2 and "'pdf' is not one of" in err
    status, _, err = cai(
        capsys, "export", "--format", "native", "--archive", str(cli_env / "none.cai"), "-o", "x"
    )
    assert status == 1 and "no archive at this path" in err
    foreign = cli_env / "notes.db"
    foreign.write_text("not a database")
    status, _, err = cai(
        capsys, "export", "--format", "native", "--archive", str(foreign), "-o", "x"
    )
    assert status == 1 and "not a caiclient archive" in err
    assert "Traceback" not in err
    with Archive(cli_env / "empty.cai"):
        pass
    status, _, err = cai(
        capsys,
        "export",
        "--format",
        "native",
        "--chat",
        "nope",
        "--archive",
        str(cli_env / "empty.cai"),
        "-o",
        "x",
    )
    assert status == 5 and "not in the archive" in err


# --- the README's session ----------------------------------------------------------------


def _steps() -> list[tuple[str, list[str]]]:
    match = SESSION.search(README.read_text(encoding="utf-8"))
    assert match is not None, "README lost its backup session"
    steps: list[tuple[str, list[str]]] = []
    for line in match.group(1).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def test_readme_backup_session_runs(cli_env: Path) -> None:
    env = {
        **support.env_without_secrets(),
        "CAI_EMULATOR_STATE": str(cli_env / "emulator.sqlite"),
        "PYTHONWARNINGS": "error",
    }
    steps = _steps()
    assert [s[0].split()[:3] for s in steps][1:3] == [
        ["cai", "--emulator", "backup"],
        ["cai", "--emulator", "backup"],
    ]
    for command, expected in steps:
        argv = [sys.executable, "-m", "caiclient.cli", *shlex.split(command)[1:]]
        done = subprocess.run(
            argv, env=env, cwd=cli_env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, (command, done.stderr)
        lines = done.stdout.splitlines()
        assert len(lines) == len(expected), (command, done.stdout)
        for got, want in zip(lines, expected, strict=True):
            pattern = "^" + ".*?".join(map(re.escape, want.split("..."))) + r"\s*$"
            assert re.match(pattern, got), (command, want, got)
