"""`cai doctor`: every cause it names, produced by the emulator's fault injection; and the
schema-drift comparison (caiclient._schema) on literal JSON."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

import _cli_support as support
from _cli_support import cai
from caiclient._schema import compare
from caiclient.emulator import Emulator

cli_env = support.cli_env
bg_emu = support.bg_emu
logged_in = support.logged_in


def doctor(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, dict[str, Any]]:
    status, out, _err = cai(capsys, "doctor", "--json", *extra)
    return status, json.loads(out)


def by_name(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def test_everything_ok(logged_in: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    status, report = doctor(capsys)
    assert status == 0 and report["ok"] is True
    names = [c["name"] for c in report["checks"]]
    assert names[0] == "token" and names[1].startswith("reach 127.0.0.1:")
    assert names[2:] == ["account", "chat socket", "clock", "proxy", "impersonation"]
    assert {c["status"] for c in report["checks"]} == {"ok"}
    assert by_name(report, "token")["data"]["source"] == "env"
    assert logged_in.token not in json.dumps(report)


def test_human_output_says_cause_and_fix(
    bg_emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = cai(capsys, "doctor")
    assert status == 3
    assert "failed   token" in out and "fix:   run `cai login --profile default`" in out
    assert "skipped  account" in out
    assert "Traceback" not in out + err


def test_bad_token(
    bg_emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAI_TOKEN", "0" * 40)
    status, report = doctor(capsys)
    assert status == 3
    account = by_name(report, "account")
    assert account["status"] == "failed" and account["cause"] == "bad or expired token"
    assert "cai login" in account["fix"]
    assert by_name(report, "chat socket")["status"] == "skipped"


def test_block_on_rest_is_not_a_bad_token(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    logged_in.faults.cloudflare(rest=True, websocket=False)
    status, report = doctor(capsys)
    assert status == 4
    account = by_name(report, "account")
    assert account["status"] == "failed"
    assert "blocked" in account["cause"] and "not a bad token" in account["cause"]
    assert account["data"]["ray"] == "8f00dead0000beef-FRA"
    assert "cf-ray 8f00dead0000beef-FRA" in account["detail"]
    assert by_name(report, "chat socket")["status"] == "ok"


def test_block_on_the_upgrade_only(logged_in: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    logged_in.faults.cloudflare(rest=False, websocket=True)
    status, report = doctor(capsys)
    assert status == 4
    assert by_name(report, "account")["status"] == "ok"
    socket = by_name(report, "chat socket")
    assert socket["status"] == "failed" and "upgrade is blocked" in socket["cause"]


def test_service_unavailable(logged_in: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    logged_in.faults.http_status(503, seconds=30, path_prefix="/plus/chat/user/")
    status, report = doctor(capsys, "--timeout", "1.5")
    assert status == 1
    account = by_name(report, "account")
    assert account["status"] == "failed" and "HTTP 503" in account["cause"]
    assert account["data"]["status"] == 503


def test_silent_socket(logged_in: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    logged_in.faults.silence(seconds=10)
    status, report = doctor(capsys, "--timeout", "1")
    assert status == 6
    socket = by_name(report, "chat socket")
    assert socket["status"] == "failed" and "silent socket" in socket["cause"]


def test_unknown_fields_are_listed(logged_in: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    logged_in.faults.mutate_json(path_prefix="/plus/chat/user/", add={"surprise": 1})
    status, report = doctor(capsys, "--schema")
    assert status == 0
    user = next(d for d in report["schema"] if d["endpoint"] == "GET plus /chat/user/")
    assert "surprise" in user["new"] or "user.surprise" in user["new"]


def test_schema_lists_real_drift_without_values(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    status, report = doctor(capsys, "--schema")
    assert status == 0
    drift = {d["endpoint"]: d for d in report["schema"]}
    # The emulator sends /chat/user/ fields the client does not model (PROTOCOL.md §4.1).
    assert "user.date_joined" in drift["GET plus /chat/user/"]["new"]
    assert drift["GET neo /chats/recent/"]["error"] is None
    text = json.dumps(report["schema"])
    assert "emulator_user" not in text and "@" not in text  # Paths only, never values.


def test_proxy_variables_are_reported_without_passwords(
    logged_in: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://me:secret@proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    _status, report = doctor(capsys)
    proxy = by_name(report, "proxy")
    assert proxy["status"] == "warning"
    assert "secret" not in json.dumps(report) and "me:***@proxy.invalid:3128" in proxy["detail"]


def test_embedded_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = cai(capsys, "--emulator", "doctor")
    assert status == 0, out + err
    assert "the embedded emulator" in out


# --- compare() on literal JSON -------------------------------------------------------------


class Inner(msgspec.Struct):
    a: int
    b: str = ""


class Outer(msgspec.Struct):
    items: list[Inner]
    by_id: dict[str, Inner] | None = None
    name: str | None = None
    one: Inner | None = None


def test_compare_new_missing_and_absent_paths() -> None:
    raw = {
        "items": [{"a": 1, "x": "value-one"}, {"b": "two"}],
        "by_id": {"id-1": {"a": 1, "z": True}},
        "one": None,
        "extra": {"deep": 1},
    }
    new, missing, absent = compare(raw, Outer)
    assert new == ["by_id{}.z", "extra", "items[].x"]
    assert missing == []  # items[].a was sent by one item
    assert absent == ["by_id{}.b", "name"]
    assert "value-one" not in repr((new, missing, absent))


def test_compare_required_field_never_sent() -> None:
    new, missing, absent = compare({"items": [{"b": "x"}]}, Outer)
    assert (new, missing) == ([], ["items[].a"])
    assert absent == ["by_id", "name", "one"]


def test_compare_tolerates_wrong_kinds() -> None:
    assert compare({"items": "not a list", "one": 3}, Outer) == ([], [], ["by_id", "name"])
    assert compare([1, 2], Outer) == ([], [], [])
