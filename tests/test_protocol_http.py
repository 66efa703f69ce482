"""Tier 1: REST response parsing and error mapping with literal bodies."""

from __future__ import annotations

import email.utils

import pytest

from caiclient import (
    AuthError,
    BlockedError,
    ChatNotFound,
    Endpoints,
    NotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    ValidationError,
)
from caiclient.protocol import account, chats, http


def response(status: int, body: bytes, **headers: str) -> http.Response:
    return http.Response(status, {k.replace("_", "-"): v for k, v in headers.items()}, body)


def test_user_id_is_normalised_to_a_digit_string() -> None:
    body = (
        b'{"user": {"user": {"username": "ExampleUser", "id": 123456789, "first_name": null,'
        b' "account": {"name": "Example", "avatar_type": "DEFAULT", "avatar_file_name": null},'
        b' "is_staff": false, "subscription": null}, "is_human": true, "name": "Example",'
        b' "email": "e@example.com", "bio": null}}'
    )
    user = account.parse_user(body)
    assert (user.id, user.username, user.name) == ("123456789", "ExampleUser", "Example")
    assert user.is_guest is False


def test_turns_page_and_end_of_history() -> None:
    body = (
        b'{"turns": [{"turn_key": {"chat_id": "c", "turn_id": "t2"}, "author": {"author_id":'
        b' "1", "is_human": true}, "candidates": [{"candidate_id": "a", "raw_content": "hi",'
        b' "is_final": true}], "primary_candidate_id": "a"}], "meta": {"next_token": "abc="}}'
    )
    turns, token = chats.parse_turns_page(body)
    assert [t.turn_id for t in turns] == ["t2"]
    assert token == "abc="
    assert chats.parse_turns_page(b'{"turns": [], "meta": {"next_token": null}}') == ([], None)
    assert chats.parse_turns_page(b'{"turns": []}') == ([], None)


def test_missing_chats_list_means_none() -> None:
    assert chats.parse_chats(b"{}") == []
    listed = chats.parse_chats(b'{"chats": [{"chat_id": "c", "character_id": "x"}]}')
    assert [c.chat_id for c in listed] == ["c"]


def test_unparseable_body_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        account.parse_user(b"<html>oops</html>")
    with pytest.raises(ProtocolError):
        chats.parse_turns_page(b'{"turns": 3}')


def test_error_mapping() -> None:
    assert http.error_for(response(200, b"{}")) is None
    assert isinstance(http.error_for(response(401, b'{"detail": "Invalid token."}')), AuthError)
    assert isinstance(http.error_for(response(401, b"Unauthorized")), AuthError)
    cloudflare = http.error_for(
        response(403, b"<!DOCTYPE html><title>Just a moment...</title>", cf_ray="8abc-FRA")
    )
    assert isinstance(cloudflare, BlockedError)
    assert cloudflare.ray == "8abc-FRA"
    assert not isinstance(cloudflare, AuthError)
    mitigated = http.error_for(response(403, b"{}", cf_mitigated="challenge"))
    assert isinstance(mitigated, BlockedError)
    neo_missing = http.error_for(
        response(404, b'{"command": "neo_error", "comment": "Chat not found", "error_code": 404}'),
        not_found=ChatNotFound,
    )
    assert isinstance(neo_missing, ChatNotFound)
    assert type(http.error_for(response(404, b'{"detail": "Not found."}'))) is NotFound
    server = http.error_for(response(503, b"upstream down"))
    assert isinstance(server, ServerError) and server.status == 503


def test_retry_after_in_seconds_and_as_http_date() -> None:
    limited = http.error_for(response(429, b"{}", retry_after="12"), now=1000.0)
    assert isinstance(limited, RateLimited) and limited.retry_after == 12
    date = email.utils.formatdate(1030.0, usegmt=True)
    assert http.retry_after_seconds(date, now=1000.0) == pytest.approx(30.0)
    assert http.retry_after_seconds("garbage", now=0) is None
    assert http.retry_after_seconds(None, now=0) is None


def test_endpoints_local_maps_each_host_to_a_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    local = Endpoints.local("http://127.0.0.1:8765/")
    assert local.plus == "http://127.0.0.1:8765/plus"
    assert local.neo == "http://127.0.0.1:8765/neo"
    assert local.neo_ws == "ws://127.0.0.1:8765/neo/ws/"
    assert local.identitytoolkit == "http://127.0.0.1:8765/identitytoolkit"
    assert chats.turns_page(local, "c", "tok").url == "http://127.0.0.1:8765/neo/turns/c/"
    assert Endpoints.live().neo_ws == "wss://neo.character.ai/ws/"
    assert Endpoints.live().is_live and not local.is_live
    monkeypatch.setenv("CAI_BASE_URL", "http://127.0.0.1:9")
    assert Endpoints.from_env() == Endpoints.local("http://127.0.0.1:9")
    monkeypatch.delenv("CAI_BASE_URL")
    assert Endpoints.from_env() == Endpoints.live()
    with pytest.raises(ValidationError):
        Endpoints.local("127.0.0.1:8765")
