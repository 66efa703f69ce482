"""Chat V2 WebSocket protocol: request envelopes out, typed events in. No I/O.

Client frames are ``{"command", "request_id", "origin_id", "payload"}``; server frames are
``{"command", "request_id", ...event fields...}`` (docs/protocol.md §8.2–8.3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ..errors import (
    CaiError,
    CharacterNotFound,
    ChatNotFound,
    DuplicateRequest,
    Filtered,
    ProtocolError,
    RateLimited,
    RoomNotFound,
    ServerError,
    TurnNotFound,
)
from ..models import Chat, Turn

__all__ = [
    "AddTurn",
    "ChatCreated",
    "ErrorFrame",
    "Event",
    "FilterFrame",
    "Keepalive",
    "Malformed",
    "Ok",
    "SelfHarmFrame",
    "TurnsRemoved",
    "UnknownFrame",
    "UpdateTurn",
    "abort_generation",
    "create_and_generate_turn",
    "create_chat",
    "edit_turn_candidate",
    "envelope",
    "error_from_frame",
    "error_from_malformed",
    "error_from_neo",
    "generate_turn_candidate",
    "parse_frame",
    "previous_annotations",
    "remove_turns",
    "set_turn_pin",
    "turn_key",
    "turn_payload",
    "update_primary_candidate",
]

ORIGIN_ID = "web-next"
KEEPALIVE = b"{}"


# --- events (server -> client) ---------------------------------------------------------------


class _Tagged(msgspec.Struct, frozen=True, kw_only=True, tag_field="command"):
    request_id: str | None = None


class AddTurn(_Tagged, frozen=True, tag="add_turn"):
    """A new turn: the echo of the user's message, or the first chunk of a reply."""

    turn: Turn


class UpdateTurn(_Tagged, frozen=True, tag="update_turn"):
    """A newer state of a turn: a cumulative streaming chunk, an edit or a pin."""

    turn: Turn


class ChatCreated(_Tagged, frozen=True, tag="create_chat_response"):
    chat: Chat


class Ok(_Tagged, frozen=True, tag="ok"):
    """Acknowledges ``update_primary_candidate``."""


class TurnsRemoved(_Tagged, frozen=True, tag="remove_turns_response"):
    pass


class ErrorFrame(_Tagged, frozen=True, tag="neo_error"):
    """The server refused the request (§8.6)."""

    comment: str = ""
    error_code: int | None = None
    sub_code: int | str | None = None
    retry_after_seconds: float | None = None


class FilterFrame(_Tagged, frozen=True, tag="filter_user_input"):
    """The input filter refused the message (older form of a filtered ``neo_error``)."""

    comment: str = ""


class SelfHarmFrame(FilterFrame, frozen=True, tag="filter_user_input_self_harm"):
    """The self-harm filter refused the message (§8.5)."""


class Keepalive(msgspec.Struct, frozen=True):
    """A bare ``{}``: the peer's keepalive probe, or its answer to ours (§8.1)."""

    request_id: None = None


class UnknownFrame(msgspec.Struct, frozen=True, kw_only=True):
    """A well-formed frame with a command this library does not know; logged and dropped."""

    command: str
    request_id: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)


class Malformed(msgspec.Struct, frozen=True, kw_only=True):
    """A frame that is not valid JSON or whose known command has the wrong shape."""

    reason: str
    request_id: str | None = None
    command: str | None = None


Event = (
    AddTurn
    | UpdateTurn
    | ChatCreated
    | Ok
    | TurnsRemoved
    | ErrorFrame
    | FilterFrame
    | Keepalive
    | UnknownFrame
    | Malformed
)

_KnownEvent = (
    AddTurn
    | UpdateTurn
    | ChatCreated
    | Ok
    | TurnsRemoved
    | ErrorFrame
    | FilterFrame
    | SelfHarmFrame
)
_decode_known: Callable[[str | bytes], _KnownEvent] = msgspec.json.Decoder(_KnownEvent).decode
_decode_any = msgspec.json.Decoder().decode


def parse_frame(data: str | bytes) -> Event:
    """Turn one received text frame into a typed event. Never raises.

    Frames of unknown commands become :class:`UnknownFrame`; frames that are not JSON objects,
    or known commands with the wrong shape, become :class:`Malformed` (keeping the
    ``request_id`` when one can be read, so the waiting caller can be told).
    """
    try:
        return _decode_known(data)
    except msgspec.DecodeError:
        pass  # Not one of the known shapes; look closer below.
    except RecursionError:
        return Malformed(reason="JSON nested too deeply")
    try:
        obj = _decode_any(data)
    except msgspec.DecodeError as exc:
        return Malformed(reason=f"not JSON: {exc}")
    except RecursionError:
        return Malformed(reason="JSON nested too deeply")
    if not isinstance(obj, dict):
        return Malformed(reason=f"expected a JSON object, got {type(obj).__name__}")
    request_id = obj.get("request_id")
    request_id = request_id if isinstance(request_id, str) else None
    command = obj.get("command")
    if not obj or (command is None and set(obj) <= {"request_id"}):
        return Keepalive()
    if not isinstance(command, str):
        return Malformed(reason="frame has no command", request_id=request_id)
    if command in _KNOWN_COMMANDS:
        try:
            _decode_known(data)
        except msgspec.ValidationError as exc:
            return Malformed(reason=str(exc), request_id=request_id, command=command)
    return UnknownFrame(command=command, request_id=request_id, data=obj)


_KNOWN_COMMANDS = frozenset(
    {
        "add_turn",
        "update_turn",
        "create_chat_response",
        "ok",
        "remove_turns_response",
        "neo_error",
        "filter_user_input",
        "filter_user_input_self_harm",
    }
)


# --- errors ----------------------------------------------------------------------------------


def error_from_frame(frame: ErrorFrame | FilterFrame) -> CaiError:
    """Map a ``neo_error`` (or filter) frame to the matching :mod:`caiclient.errors` class."""
    if isinstance(frame, FilterFrame):
        default = "self-harm filter" if isinstance(frame, SelfHarmFrame) else "input filter"
        return Filtered(frame.comment or f"message refused by the {default}")
    return error_from_neo(
        frame.comment,
        error_code=frame.error_code,
        sub_code=frame.sub_code,
        retry_after=frame.retry_after_seconds,
    )


def error_from_neo(
    comment: str,
    *,
    error_code: int | None = None,
    sub_code: int | str | None = None,
    retry_after: float | None = None,
) -> CaiError:
    """Classify a neo error (WS frame or REST body) by its fields; see docs/protocol.md."""
    text = comment.lower()
    if "already exists" in text:
        # A chat or turn id we chose was used before (§8.5): after a re-send, the first
        # send did arrive. Decided here so that no caller tests message text.
        return DuplicateRequest(comment, status=error_code, body=comment)
    if retry_after is not None or error_code == 429 or "rate limit" in text:
        return RateLimited(comment or "rate limited", retry_after=retry_after)
    if sub_code is not None or "harm" in text or "filter" in text:
        return Filtered(comment or "message filtered", sub_code=sub_code)
    if "not found" in text or error_code == 404:
        if "character" in text:
            return CharacterNotFound(comment)
        if "room" in text:
            return RoomNotFound(comment)
        if "turn" in text:
            return TurnNotFound(comment)
        return ChatNotFound(comment or "chat not found")
    return ServerError(comment or "neo_error", status=error_code, body=comment)


def error_from_malformed(event: Malformed) -> ProtocolError:
    what = f"{event.command!r} frame" if event.command else "frame"
    return ProtocolError(f"malformed {what} from server: {event.reason}")


# --- requests (client -> server) -------------------------------------------------------------

_encode = msgspec.json.Encoder().encode


def envelope(command: str, request_id: str, payload: dict[str, Any]) -> bytes:
    return _encode(
        {"command": command, "request_id": request_id, "origin_id": ORIGIN_ID, "payload": payload}
    )


def create_chat(
    *, request_id: str, chat_id: str, character_id: str, creator_id: str, with_greeting: bool
) -> bytes:
    """Envelope of ``create_chat`` (§8.5)."""
    return envelope(
        "create_chat",
        request_id,
        {
            "chat": {
                "chat_id": chat_id,
                "creator_id": creator_id,
                "visibility": "VISIBILITY_PRIVATE",
                "character_id": character_id,
                "type": "TYPE_ONE_ON_ONE",
            },
            "with_greeting": with_greeting,
        },
    )


def turn_payload(
    *,
    chat_id: str,
    character_id: str,
    turn_id: str,
    candidate_id: str,
    author_id: str,
    text: str,
    user_name: str,
) -> dict[str, Any]:
    return {
        "character_id": character_id,
        "num_candidates": 1,
        "tts_enabled": False,
        "selected_language": "",
        "user_name": user_name,
        # The web client sends its 22 feedback counters, all zero, with every message
        # (§8.5, a verbatim capture); built once, the same object every time.
        "previous_annotations": _ZERO_ANNOTATIONS,
        "turn": {
            "turn_key": {"chat_id": chat_id, "turn_id": turn_id},
            "author": {"author_id": author_id, "is_human": True, "name": user_name},
            "candidates": [{"candidate_id": candidate_id, "raw_content": text}],
            "primary_candidate_id": candidate_id,
        },
    }


def create_and_generate_turn(
    *,
    request_id: str,
    chat_id: str,
    character_id: str,
    turn_id: str,
    candidate_id: str,
    author_id: str,
    text: str,
    user_name: str = "",
    command: str = "create_and_generate_turn",
) -> bytes:
    """Envelope of ``create_and_generate_turn``: send ``text`` and generate the reply.

    The turn and candidate ids are chosen by the client, which makes a re-send of the same
    message recognisable ("create_and_generate_turn already exists"). With
    ``command="create_turn"`` the same payload adds the user's turn without generating a
    reply (§8.5; answered by the ``add_turn`` echo only).
    """
    payload = turn_payload(
        chat_id=chat_id,
        character_id=character_id,
        turn_id=turn_id,
        candidate_id=candidate_id,
        author_id=author_id,
        text=text,
        user_name=user_name,
    )
    return envelope(command, request_id, payload)


# The 22 feedback counters the web client sends with every generation, all zero (§8.5).
ANNOTATION_COUNTERS = (
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


def previous_annotations() -> dict[str, int]:
    """The web client's 22 feedback counters, all zero (§8.5)."""
    counters: dict[str, int] = {}
    for name in ANNOTATION_COUNTERS:
        counters[name] = 0
        counters[f"not_{name}"] = 0
    return counters


# Encoded once: msgspec copies Raw bytes as they are (this is on every message's path).
_ZERO_ANNOTATIONS = msgspec.Raw(msgspec.json.encode(previous_annotations()))


def turn_key(chat_id: str, turn_id: str) -> dict[str, str]:
    return {"chat_id": chat_id, "turn_id": turn_id}


def generate_turn_candidate(
    *, request_id: str, chat_id: str, turn_id: str, character_id: str, user_name: str = ""
) -> bytes:
    """Envelope of ``generate_turn_candidate``: regenerate ("swipe") a character turn."""
    return envelope(
        "generate_turn_candidate",
        request_id,
        {
            "character_id": character_id,
            "turn_key": turn_key(chat_id, turn_id),
            "tts_enabled": False,
            "selected_language": "",
            "user_name": user_name,
            "previous_annotations": previous_annotations(),
        },
    )


def edit_turn_candidate(
    *, request_id: str, chat_id: str, turn_id: str, candidate_id: str, text: str
) -> bytes:
    """Envelope of ``edit_turn_candidate``: replace the text of candidate ``candidate_id``."""
    return envelope(
        "edit_turn_candidate",
        request_id,
        {
            "turn_key": turn_key(chat_id, turn_id),
            "current_candidate_id": candidate_id,
            "new_candidate_raw_content": text,
        },
    )


def update_primary_candidate(
    *, request_id: str, chat_id: str, turn_id: str, candidate_id: str
) -> bytes:
    """Envelope of ``update_primary_candidate``: select a swipe; answered by ``ok``."""
    return envelope(
        "update_primary_candidate",
        request_id,
        {"candidate_id": candidate_id, "turn_key": turn_key(chat_id, turn_id)},
    )


def set_turn_pin(*, request_id: str, chat_id: str, turn_id: str, pinned: bool) -> bytes:
    """Envelope of ``set_turn_pin``; answered by one ``update_turn`` with ``is_pinned``."""
    return envelope(
        "set_turn_pin",
        request_id,
        {"is_pinned": pinned, "turn_key": turn_key(chat_id, turn_id)},
    )


def remove_turns(*, request_id: str, chat_id: str, turn_ids: list[str]) -> bytes:
    """Envelope of ``remove_turns`` (the older way to delete; answered by
    ``remove_turns_response``)."""
    return envelope("remove_turns", request_id, {"chat_id": chat_id, "turn_ids": turn_ids})


def abort_generation(*, request_id: str) -> bytes:
    """Envelope of ``abort_generation``: ``request_id`` is the generation's own (§8.5)."""
    return envelope("abort_generation", request_id, {})
