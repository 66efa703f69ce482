"""Tier 1: Chat V2 REST requests and parsers with literal JSON; no loop, no sockets."""

from __future__ import annotations

import pytest

from caiclient import (
    ChatNotFound,
    Endpoints,
    Filtered,
    ProtocolError,
    RateLimited,
    ServerError,
    TurnKey,
    TurnNotFound,
)
from caiclient.protocol import chats

E = Endpoints.local("http://h")
CHAT = (
    b'{"chat_id": "c", "create_time": "2024-05-01T12:34:56.117205Z", "creator_id": "7",'
    b' "character_id": "x", "state": "STATE_ARCHIVED", "type": "TYPE_ONE_ON_ONE",'
    b' "visibility": "VISIBILITY_PRIVATE", "name": "Tides", "preferred_model_type":'
    b' "MODEL_TYPE_FAST", "streak": {"streak": 3}}'
)


def test_request_shapes() -> None:
    page = chats.turns_page(E, "c", "tok", pinned_only=True, all_candidates=True)
    assert (page.method, page.url) == ("GET", "http://h/neo/turns/c/")
    assert page.params == {"next_token": "tok", "pinned_only": "true", "candidate_filter": "all"}
    assert chats.turns_page(E, "c").params is None
    listed = chats.list_chats(E, "x")
    assert (listed.url, listed.params) == ("http://h/neo/chats/", {"character_ids": "x"})
    rename = chats.rename(E, "c", "Tides")
    assert (rename.method, rename.url, rename.json) == (
        "PATCH",
        "http://h/neo/chat/c/update_name",
        {"name": "Tides"},
    )
    assert rename.is_idempotent
    assert chats.archive(E, "c", True).url == "http://h/neo/chat/c/archive"
    assert chats.archive(E, "c", False).url == "http://h/neo/chat/c/unarchive"
    assert chats.archive(E, "c", False).json == {}
    model = chats.set_model(E, "c", "MODEL_TYPE_SMART")
    assert (model.url, model.json) == (
        "http://h/neo/chat/c/preferred-model-type",
        {"preferred_model_type": "MODEL_TYPE_SMART"},
    )
    copy = chats.copy_chat(E, "c", "t")
    assert (copy.method, copy.json, copy.is_idempotent) == ("POST", {"end_turn_id": "t"}, False)
    remove = chats.remove_turns(E, "c", ["t1"])
    assert (remove.url, remove.json) == ("http://h/neo/turns/c/remove", {"turn_ids": ["t1"]})
    key = TurnKey(chat_id="c", turn_id="t")
    note = chats.create_annotation(E, key, "k", "star", 3)
    assert note.json == {
        "annotation": {"annotation_type": "star", "annotation_value": 3},
        "candidate_id": "k",
        "turn_key": {"chat_id": "c", "turn_id": "t"},
    }
    unnote = chats.remove_annotation(E, key, "k", "a")
    assert (unnote.url, unnote.json) == (
        "http://h/neo/annotation/remove",
        {"annotation_id": "a", "candidate_id": "k", "turn_key": {"chat_id": "c", "turn_id": "t"}},
    )


def test_parsers() -> None:
    chat = chats.parse_chat(b'{"chat": ' + CHAT + b"}")
    assert chat is not None
    assert (chat.name, chat.is_archived, chat.preferred_model_type) == (
        "Tides",
        True,
        "MODEL_TYPE_FAST",
    )
    assert chats.parse_chat(b"") is None
    assert chats.parse_chat(b"{}") is None
    assert [c.chat_id for c in chats.parse_chats(b'{"chats": [' + CHAT + b"]}")] == ["c"]
    assert chats.parse_chats(b"{}") == []
    assert chats.parse_new_chat_id(b'{"new_chat_id": "n"}') == "n"
    assert chats.parse_annotation_id(b'{"annotation": {"annotation_id": "a"}}') == "a"
    turns, token = chats.parse_turns_page(b'{"turns": [], "meta": {"next_token": ""}}')
    assert (turns, token) == ([], None)
    with pytest.raises(ProtocolError):
        chats.parse_new_chat_id(b'{"chat_id": "n"}')
    with pytest.raises(ProtocolError):
        chats.parse_chat(b"<html>")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"command": "neo_error", "comment": "Chat not found", "error_code": 404}', ChatNotFound),
        (b'{"command": "neo_error", "comment": "Turn not found", "error_code": 404}', TurnNotFound),
        (b'{"command": "neo_error", "comment": "x", "retry_after_seconds": 3}', RateLimited),
        (b'{"command": "neo_error", "comment": "Self harm", "sub_code": 101}', Filtered),
        (b'{"status": "NOT_OK", "error": "no permission"}', ServerError),
        (b'{"error": "boom"}', ServerError),
    ],
)
def test_errors_inside_2xx_bodies(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        chats.parse_chat(body)
