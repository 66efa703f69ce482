"""Tier 1: REST response parsing and error mapping with literal bodies."""

from __future__ import annotations

import email.utils

import pytest

from caiclient import (
    AuthError,
    BlockedError,
    CaiError,
    CharacterNotFound,
    ChatNotFound,
    DuplicateRequest,
    Endpoints,
    Filtered,
    NotFound,
    PersonaNotFound,
    ProtocolError,
    RateLimited,
    RoomNotFound,
    ServerError,
    TurnNotFound,
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
    limited = http.error_for(response(429, b"{}", retry_after="12"))
    assert isinstance(limited, RateLimited) and limited.retry_after == 12
    date = email.utils.formatdate(1030.0, usegmt=True)
    # An HTTP date counts from when the transport received the answer (no clock in here).
    dated = http.Response(429, {"retry-after": date}, b"{}", received_at=1000.0)
    limited = http.error_for(dated)
    assert isinstance(limited, RateLimited) and limited.retry_after == pytest.approx(30.0)
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


# --- the one reader of errors inside 2xx bodies (every shape the service uses) ---------------

NEO = b'{"command": "neo_error", '


@pytest.mark.parametrize(
    ("body", "not_found", "error"),
    [
        # neo_error objects, classified like the socket's error frames
        (NEO + b'"comment": "Chat not found", "error_code": 404}', None, ChatNotFound),
        (NEO + b'"comment": "Turn not found", "error_code": 404}', None, TurnNotFound),
        # The call's own kind for a generic or a chat "not found"; another kind is kept.
        (NEO + b'"comment": "Turn not found"}', ChatNotFound, TurnNotFound),
        (NEO + b'"comment": "Turn not found"}', NotFound, TurnNotFound),
        (NEO + b'"comment": "Chat not found"}', RoomNotFound, RoomNotFound),
        (NEO + b'"comment": "Character not found"}', RoomNotFound, CharacterNotFound),
        (NEO + b'"comment": "nothing here", "error_code": 404}', RoomNotFound, RoomNotFound),
        (NEO + b'"comment": "x", "retry_after_seconds": 3}', None, RateLimited),
        (NEO + b'"comment": "Self harm", "sub_code": 101}', None, Filtered),
        (NEO + b'"comment": "create_chat already exists"}', None, DuplicateRequest),
        (NEO + b'"comment": "boom", "error_code": 500}', None, ServerError),
        # Django status envelopes
        (b'{"status": "NOT_OK", "error": "no permission"}', None, ServerError),
        (
            b'{"status": "NOT_OK", "error": "Character not found"}',
            CharacterNotFound,
            CharacterNotFound,
        ),
        (b'{"status": "NOT_OK", "error": "Character not found"}', None, ServerError),
        (b'{"status": "Error: nope"}', None, ServerError),
        (b'{"status": "not_ok"}', None, ServerError),
        # {"success": false}
        (b'{"success": false}', None, ServerError),
        (b'{"success": false, "error": "Persona not found"}', PersonaNotFound, PersonaNotFound),
        # {"error": ...} as text or as a Firebase-style object
        (b'{"error": "boom"}', None, ServerError),
        (b'{"error": {"message": "EMAIL_NOT_FOUND"}}', None, ServerError),
        (b'{"error": "Too many requests"}', None, RateLimited),
        (b'{"error": "this does not exist"}', PersonaNotFound, PersonaNotFound),
    ],
)
def test_refusal_reads_every_in_band_error_shape(
    body: bytes, not_found: type[NotFound] | None, error: type[CaiError]
) -> None:
    found = http.refusal(body, "thing", not_found=not_found)
    assert type(found) is error
    with pytest.raises(error):
        http.check_refusal(body, "thing", not_found=not_found)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b'{"status": "OK"}',
        b'{"status": "ok"}',
        b'{"success": true}',
        b'{"persona": {}}',
        b'{"error": null}',
        b'{"error": ""}',
        b'{"command": "ok"}',
    ],
)
def test_refusal_finds_nothing_in_successes(body: bytes) -> None:
    assert http.refusal(body, "thing", not_found=PersonaNotFound) is None


@pytest.mark.parametrize("body", [b"[]", b'"ok"', b"<html>", b"[1, 2]", b"[" * 2000])
def test_refusal_of_a_non_object_depends_on_whether_one_was_expected(body: bytes) -> None:
    assert http.refusal(body, "thing") is None
    found = http.refusal(body, "follow", object_expected=True)
    assert isinstance(found, ProtocolError) and "follow" in str(found)


def test_text_of_a_refusal_names_the_call() -> None:
    found = http.refusal(b'{"status": "NOT_OK", "error": "Name must be 3-20"}', "create")
    assert isinstance(found, ServerError)
    assert str(found) == "create was refused: Name must be 3-20"
    assert (found.status, found.body) == (200, "Name must be 3-20")


@pytest.mark.parametrize(
    ("url", "params", "target"),
    [
        ("https://h/a/b/", None, "https://h/a/b/"),
        ("https://h/s/", {"q": "a b/é"}, "https://h/s/?q=a+b%2F%C3%A9"),
        ("https://h/s/?page=2", {"q": "x&y=z"}, "https://h/s/?page=2&q=x%26y%3Dz"),
        ("https://h/s/?page=2", {}, "https://h/s/?page=2"),
        ("https://h/ch%41rs/é x", None, "https://h/ch%41rs/%C3%A9%20x"),  # escapes kept
        ("https://h/a/?k=v w#frag", None, "https://h/a/?k=v%20w"),  # no fragment is sent
        ("http://127.0.0.1:8080/x", {"n": "1", "m": "2"}, "http://127.0.0.1:8080/x?n=1&m=2"),
    ],
)
def test_request_target_is_encoded_once_by_the_core(
    url: str, params: dict[str, str] | None, target: str
) -> None:
    request = http.Request("GET", url, params=params)
    assert request.target() == target
    assert http.Request("GET", target).target() == target  # Encoding an encoded URL: no change.
