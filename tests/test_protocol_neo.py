"""Tier 1: the WebSocket protocol core with literal JSON; no loop, no sockets."""

from __future__ import annotations

import json

import pytest

from caiclient import (
    CharacterNotFound,
    ChatNotFound,
    DuplicateRequest,
    Filtered,
    RateLimited,
    ServerError,
)
from caiclient.protocol import neo

BOT_ADD_TURN = """{"command": "add_turn", "request_id": "r-1",
 "turn": {"turn_key": {"chat_id": "c-1", "turn_id": "t-2"},
          "create_time": "2024-05-01T12:34:56.117205Z",
          "last_update_time": "2024-05-01T12:34:56.117205Z", "state": "STATE_OK",
          "author": {"author_id": "00nGgJmkFv7Ntw1QUfnzGRxnU1h0Un7VHg5N7qhg4Cs", "name": "Sage"},
          "candidates": [{"candidate_id": "k-1", "create_time": "2024-05-01T12:34:56.117205Z",
                          "raw_content": "Hel", "model_type": "MODEL_TYPE_SMART"}],
          "primary_candidate_id": "k-1"},
 "chat_info": {"type": "TYPE_ONE_ON_ONE"},
 "generation_mode": {"mode": "MODE_NORMAL", "remaining_quota_frac": 1.0}}"""


def test_bot_add_turn_parses_with_absent_is_final_and_is_human() -> None:
    event = neo.parse_frame(BOT_ADD_TURN)
    assert isinstance(event, neo.AddTurn)
    assert event.request_id == "r-1"
    turn = event.turn
    assert (turn.chat_id, turn.turn_id) == ("c-1", "t-2")
    assert turn.is_human is False
    assert turn.text == "Hel"
    assert turn.is_final is False
    assert turn.create_time is not None and turn.create_time.microsecond == 117205


def test_final_update_turn_uses_primary_candidate() -> None:
    frame = {
        "command": "update_turn",
        "request_id": "r-1",
        "turn": {
            "turn_key": {"chat_id": "c", "turn_id": "t"},
            "author": {"author_id": "x", "name": "X"},
            "candidates": [
                {"candidate_id": "old", "raw_content": "old text", "is_final": True},
                {"candidate_id": "new", "raw_content": "new text", "is_final": True},
            ],
            "primary_candidate_id": "new",
        },
    }
    event = neo.parse_frame(json.dumps(frame).encode())
    assert isinstance(event, neo.UpdateTurn)
    assert event.turn.text == "new text"
    assert event.turn.is_final is True


def test_create_chat_response_and_ok() -> None:
    event = neo.parse_frame(
        '{"command": "create_chat_response", "request_id": "q", "chat": {"chat_id": "c",'
        ' "create_time": "2024-05-01T12:34:56.000001Z", "creator_id": "474480773",'
        ' "character_id": "abc", "state": "STATE_ACTIVE", "type": "TYPE_ONE_ON_ONE",'
        ' "visibility": "VISIBILITY_PRIVATE"}}'
    )
    assert isinstance(event, neo.ChatCreated)
    assert (event.chat.chat_id, event.chat.creator_id, event.chat.character_id) == (
        "c",
        "474480773",
        "abc",
    )
    assert neo.parse_frame('{"command": "ok", "request_id": null}') == neo.Ok(request_id=None)


def test_keepalive_unknown_and_malformed_frames() -> None:
    assert isinstance(neo.parse_frame("{}"), neo.Keepalive)
    unknown = neo.parse_frame('{"command": "state_update", "request_id": "z", "x": 1}')
    assert isinstance(unknown, neo.UnknownFrame)
    assert (unknown.command, unknown.request_id, unknown.data["x"]) == ("state_update", "z", 1)
    for raw in ("not json", "[1, 2]", '"text"', '{"request_id": "r", "turn": 5}'):
        assert isinstance(neo.parse_frame(raw), neo.Malformed), raw
    # A known command with the wrong shape keeps its request_id so its caller can be told.
    bad = neo.parse_frame('{"command": "add_turn", "request_id": "r-9", "turn": "oops"}')
    assert isinstance(bad, neo.Malformed)
    assert (bad.request_id, bad.command) == ("r-9", "add_turn")


def test_neo_error_frames_map_to_typed_errors() -> None:
    def error_of(raw: str) -> Exception:
        event = neo.parse_frame(raw)
        assert isinstance(event, (neo.ErrorFrame, neo.FilterFrame))
        return neo.error_from_frame(event)

    self_harm = error_of(
        '{"command": "neo_error", "request_id": null, "comment": "Self harm message detected",'
        ' "error_code": 400, "sub_code": 101}'
    )
    assert isinstance(self_harm, Filtered)
    assert self_harm.sub_code == 101
    limited = error_of(
        '{"command": "neo_error", "request_id": "r", "comment": "slow down",'
        ' "error_code": 429, "retry_after_seconds": 7}'
    )
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 7
    exists = error_of(
        '{"command": "neo_error", "request_id": "r", "comment": "create_chat already exists",'
        ' "error_code": 400, "sub_code": null}'
    )
    # Decided in the protocol layer, so no caller tests message text.
    assert type(exists) is DuplicateRequest and isinstance(exists, ServerError)
    assert exists.status == 400 and "already exists" in str(exists)
    missing_character = error_of(
        '{"command": "neo_error", "request_id": "r", "comment": "Character not found",'
        ' "error_code": 404}'
    )
    assert isinstance(missing_character, CharacterNotFound)
    assert isinstance(
        error_of('{"command": "neo_error", "comment": "Chat not found", "error_code": 404}'),
        ChatNotFound,
    )
    assert isinstance(error_of('{"command": "filter_user_input_self_harm"}'), Filtered)


def test_create_and_generate_turn_envelope() -> None:
    raw = neo.create_and_generate_turn(
        request_id="r",
        chat_id="c",
        character_id="char",
        turn_id="t",
        candidate_id="k",
        author_id="474480773",
        text='quote " and ünïcode',
    )
    frame = json.loads(raw)
    assert frame["command"] == "create_and_generate_turn"
    assert frame["request_id"] == "r"
    assert frame["origin_id"] == "web-next"
    payload = frame["payload"]
    assert payload["character_id"] == "char"
    turn = payload["turn"]
    assert turn["turn_key"] == {"chat_id": "c", "turn_id": "t"}
    assert turn["author"] == {"author_id": "474480773", "is_human": True, "name": ""}
    assert turn["candidates"] == [{"candidate_id": "k", "raw_content": 'quote " and ünïcode'}]
    assert turn["primary_candidate_id"] == "k"


@pytest.mark.parametrize("greeting", [True, False])
def test_create_chat_envelope(greeting: bool) -> None:
    frame = json.loads(
        neo.create_chat(
            request_id="r", chat_id="c", character_id="x", creator_id="7", with_greeting=greeting
        )
    )
    assert frame["command"] == "create_chat"
    assert frame["payload"] == {
        "chat": {
            "chat_id": "c",
            "creator_id": "7",
            "visibility": "VISIBILITY_PRIVATE",
            "character_id": "x",
            "type": "TYPE_ONE_ON_ONE",
        },
        "with_greeting": greeting,
    }


# --- the other commands of §8.5 --------------------------------------------------------------

ZEROS = {
    f"{prefix}{name}": 0
    for name in (
        "boring",
        "inaccurate",
        "repetitive",
        "out_of_character",
        "bad_memory",
        "long",
        "short",
        "ends_chat_early",
        "funny",
        "interesting",
        "helpful",
    )
    for prefix in ("", "not_")
}


def test_create_turn_envelope_has_the_send_payload() -> None:
    args: dict[str, str] = {
        "request_id": "r",
        "chat_id": "c",
        "character_id": "char",
        "turn_id": "t",
        "candidate_id": "k",
        "author_id": "7",
        "text": "hi",
    }
    manual = json.loads(neo.create_and_generate_turn(**args, command="create_turn"))
    generate = json.loads(neo.create_and_generate_turn(**args))
    assert manual["command"] == "create_turn"
    assert manual["payload"] == generate["payload"]
    assert manual["request_id"] == "r" and manual["origin_id"] == "web-next"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            neo.generate_turn_candidate(request_id="r", chat_id="c", turn_id="t", character_id="x"),
            {
                "command": "generate_turn_candidate",
                "request_id": "r",
                "origin_id": "web-next",
                "payload": {
                    "character_id": "x",
                    "turn_key": {"chat_id": "c", "turn_id": "t"},
                    "tts_enabled": False,
                    "selected_language": "",
                    "user_name": "",
                    "previous_annotations": ZEROS,
                },
            },
        ),
        (
            neo.edit_turn_candidate(
                request_id="r", chat_id="c", turn_id="t", candidate_id="k", text="new"
            ),
            {
                "command": "edit_turn_candidate",
                "request_id": "r",
                "origin_id": "web-next",
                "payload": {
                    "turn_key": {"chat_id": "c", "turn_id": "t"},
                    "current_candidate_id": "k",
                    "new_candidate_raw_content": "new",
                },
            },
        ),
        (
            neo.update_primary_candidate(
                request_id="r", chat_id="c", turn_id="t", candidate_id="k"
            ),
            {
                "command": "update_primary_candidate",
                "request_id": "r",
                "origin_id": "web-next",
                "payload": {"candidate_id": "k", "turn_key": {"chat_id": "c", "turn_id": "t"}},
            },
        ),
        (
            neo.set_turn_pin(request_id="r", chat_id="c", turn_id="t", pinned=False),
            {
                "command": "set_turn_pin",
                "request_id": "r",
                "origin_id": "web-next",
                "payload": {"is_pinned": False, "turn_key": {"chat_id": "c", "turn_id": "t"}},
            },
        ),
        (
            neo.remove_turns(request_id="r", chat_id="c", turn_ids=["t1", "t2"]),
            {
                "command": "remove_turns",
                "request_id": "r",
                "origin_id": "web-next",
                "payload": {"chat_id": "c", "turn_ids": ["t1", "t2"]},
            },
        ),
        (
            neo.abort_generation(request_id="gen-1"),
            {
                "command": "abort_generation",
                "request_id": "gen-1",
                "origin_id": "web-next",
                "payload": {},
            },
        ),
    ],
)
def test_command_envelopes(raw: bytes, expected: dict[str, object]) -> None:
    assert json.loads(raw) == expected


def test_swipe_and_edit_frames_parse() -> None:
    swipe = neo.parse_frame(
        '{"command": "update_turn", "request_id": "r",'
        ' "turn": {"turn_key": {"chat_id": "c", "turn_id": "t"},'
        ' "author": {"author_id": "x", "name": "X"},'
        ' "candidates": [{"candidate_id": "new", "raw_content": "Swiped", "is_final": true,'
        ' "safety_truncated": true}], "primary_candidate_id": "new"},'
        ' "chat_info": {"type": "TYPE_ONE_ON_ONE"}}'
    )
    assert isinstance(swipe, neo.UpdateTurn)
    primary = swipe.turn.primary
    assert primary is not None and primary.safety_truncated and primary.text == "Swiped"
    edit = neo.parse_frame(
        '{"command": "update_turn", "request_id": "e",'
        ' "turn": {"turn_key": {"chat_id": "c", "turn_id": "t"}, "is_pinned": true,'
        ' "author": {"author_id": "7", "name": "me", "is_human": true},'
        ' "candidates": [{"candidate_id": "k2", "raw_content": "Fixed", "is_final": true,'
        ' "base_candidate_id": "k1", "editor": {"author_id": "7"}}],'
        ' "primary_candidate_id": "k2"}}'
    )
    assert isinstance(edit, neo.UpdateTurn)
    candidate = edit.turn.candidate("k2")
    assert candidate is not None and candidate.base_candidate_id == "k1"
    assert candidate.editor is not None and candidate.editor.author_id == "7"
    assert edit.turn.is_pinned and edit.turn.candidate("k1") is None
    assert neo.parse_frame('{"command": "remove_turns_response", "request_id": "q"}') == (
        neo.TurnsRemoved(request_id="q")
    )
