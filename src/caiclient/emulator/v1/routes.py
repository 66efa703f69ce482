"""Legacy Chat V1 of ``plus``/``beta`` (docs/protocol.md §10): histories, messages, streaming.

Routes are served under both Django prefixes. ``/chat/streaming/`` answers newline-delimited
JSON snapshots of the reply, written one by one with ``chunk_delay`` between them, so a
client can read them as they come. Deterministic triggers: a user text containing
``[[unsafe-reply]]`` makes the output filter abort the reply after some partial snapshots;
a guest (``Guest…`` username) gets ``{"force_login": true}`` once it has sent
``guest_limit`` messages (``/__emulator__/v1/guest_limit``; default 10, docs/protocol.md §3.1).

The records are in :mod:`.store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from .._http import DJANGO_PREFIXES, ApiError, authenticate, json_response, query_count, read_json
from .._util import new_id
from ..characters.cast import SeedCharacter, split_cumulative
from ..state import STATE
from ..store import User
from ..wire import user_account
from .store import V1, V1HistoryRecord, V1MessageRecord, V1Store

__all__ = ["FILTER_TRIGGER", "MAX_CANDIDATES", "PAGE_SIZE", "add_routes"]

PAGE_SIZE = 20
"""Messages per ``/chat/history/msgs/user/`` page."""
FILTER_TRIGGER = "[[unsafe-reply]]"
"""A user text containing this makes the output filter abort the reply."""
MAX_CANDIDATES = 4
_NO_HISTORY = "there is no history between user and character"
_NO_SUCH_HISTORY = "No Such History"


class _PlainError(Exception):
    """Answered as a plain-text body, as the live Django views do (docs/protocol.md §2.4.4)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _plain(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _PlainError as exc:
            return web.Response(status=exc.status, text=exc.text, content_type="text/plain")

    return wrapped


def _bad_request(text: str) -> ApiError:
    return ApiError(400, {"status": "NOT_OK", "error": text})


def _number(seed: str, modulo: int) -> int:
    return int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") % modulo


def _src_char(character: SeedCharacter) -> dict[str, Any]:
    return {
        "participant": {"name": character.name},
        "avatar_file_name": character.avatar_file_name,
    }


def _user_participant(user: User, messages: int) -> dict[str, Any]:
    return {
        "user": {
            "username": user.username,
            "id": int(user.id),
            "first_name": user.name,
            "account": user_account(user),
            "is_staff": False,
        },
        "is_human": True,
        "name": user.name,
        "num_interactions": messages,
    }


def _character_participant(character: SeedCharacter) -> dict[str, Any]:
    username = character.participant_username
    return {
        "user": {
            "username": username,
            "id": 10**8 + _number(username, 9 * 10**8),
            "first_name": character.name,
            "account": None,
            "is_staff": False,
        },
        "is_human": False,
        "name": character.name,
        "num_interactions": character.num_interactions,
    }


def _message_wire(message: V1MessageRecord, user: User, character: SeedCharacter) -> dict[str, Any]:
    tgt = character.participant_username
    if message.is_human:
        src, src_name, tgt = user.username, user.name, tgt
        avatar: str | None = None
    else:
        src, src_name, tgt = tgt, character.name, user.username
        avatar = character.avatar_file_name
    return {
        "id": message.id,
        "uuid": message.uuid,
        "text": message.text,
        "src": src,
        "tgt": tgt,
        "is_alternative": message.is_alternative,
        "image_rel_path": "",
        "image_prompt_text": "",
        "deleted": None,
        "src__name": src_name,
        "src__user__username": src,
        "src__is_human": message.is_human,
        "src__character__avatar_file_name": avatar,
        "src_char": _src_char(character),
        "responsible_user__username": user.username,
    }


def _history_head(
    v1: V1Store, rec: V1HistoryRecord, user: User, character: SeedCharacter
) -> dict[str, Any]:
    messages = v1.messages[rec.external_id]
    humans = sum(1 for m in messages if m.is_human)
    return {
        "title": character.title,
        "participants": [_user_participant(user, humans), _character_participant(character)],
        "external_id": rec.external_id,
        "created": rec.created,
        "last_interaction": rec.last_interaction,
        "type": "ONE_ON_ONE",
        "description": character.description,
    }


# ---- request helpers --------------------------------------------------------------------


def _v1(request: web.Request) -> V1Store:
    return request.app[V1]


async def _object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise _bad_request("Expected a JSON object")
    return body


def _character_or_404(v1: V1Store, user: User, character_id: object) -> SeedCharacter:
    character = v1.character(user, character_id)
    if character is None:
        raise _PlainError(404, f"no character found for {character_id}")
    return character


def _history_or_404(v1: V1Store, user: User, history_id: object) -> V1HistoryRecord:
    rec = v1.history(user, history_id)
    if rec is None:
        raise _PlainError(404, _NO_SUCH_HISTORY)
    return rec


def _character_of(v1: V1Store, rec: V1HistoryRecord) -> SeedCharacter:
    character = v1.store.characters.get(rec.character_id)
    if character is None:  # Not expected: archiving keeps a character's record.
        raise _PlainError(404, _NO_SUCH_HISTORY)
    return character


# ---- history management -----------------------------------------------------------------


async def create_history(request: web.Request) -> web.StreamResponse:
    """``POST /chat/history/create/`` → the new history with its greeting (§10.1)."""
    user = authenticate(request)
    v1 = _v1(request)
    body = await _object(request)
    character = _character_or_404(v1, user, body.get("character_external_id"))
    rec = v1.create(user, character)
    payload = _history_head(v1, rec, user, character)
    payload.update(
        speech="",
        status="OK",
        has_more=False,
        messages=[_message_wire(m, user, character) for m in v1.messages[rec.external_id]],
    )
    return json_response(payload)


async def continue_history(request: web.Request) -> web.StreamResponse:
    """``POST /chat/history/continue/``: the named history, or the latest with the
    character; none → 404 with the plain-text sentence clients match on (§2.4.4)."""
    user = authenticate(request)
    v1 = _v1(request)
    body = await _object(request)
    character = _character_or_404(v1, user, body.get("character_external_id"))
    history_id = body.get("history_external_id")
    if history_id is None:
        found = v1.histories_of(user, character.id)
        rec = found[0] if found else None
    else:
        rec = v1.history(user, history_id)
        if rec is not None and rec.character_id != character.id:
            rec = None
    if rec is None:
        raise _PlainError(404, _NO_HISTORY)
    payload = _history_head(v1, rec, user, character)
    payload.update(
        avatars=[
            {"name": user.name, "user__account__avatar_file_name": user.avatar_file_name},
            {"name": character.name, "character__avatar_file_name": character.avatar_file_name},
        ],
        room_img_gen_enabled=False,
    )
    return json_response(payload)


async def character_histories(request: web.Request) -> web.StreamResponse:
    """``POST /chat/character/histories[_v2]/`` → the user's histories with a character,
    most recently active first, each with all its messages."""
    user = authenticate(request)
    v1 = _v1(request)
    body = await _object(request)
    character = _character_or_404(v1, user, body.get("external_id"))
    number = body.get("number", 50)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise _bad_request("number must be a positive integer")
    histories = [
        {
            "external_id": rec.external_id,
            "created": rec.created,
            "last_interaction": rec.last_interaction,
            "msgs": [_message_wire(m, user, character) for m in v1.messages[rec.external_id]],
        }
        for rec in v1.histories_of(user, character.id)[:number]
    ]
    return json_response({"histories": histories})


async def history_messages(request: web.Request) -> web.StreamResponse:
    """``GET /chat/history/msgs/user/?history_external_id=&page_num=``: page 1 holds the
    newest messages; each page is oldest first; ``next_page`` = page + 1."""
    user = authenticate(request)
    v1 = _v1(request)
    history_id = request.query.get("history_external_id")
    if not history_id:
        raise _bad_request("history_external_id is required")
    try:
        page_num = query_count(request.query.get("page_num", "1"), 1, 10**9) or 1
    except ValueError:
        raise _bad_request("page_num must be a positive integer") from None
    rec = _history_or_404(v1, user, history_id)
    character = _character_of(v1, rec)
    messages = v1.messages[rec.external_id]
    end = max(len(messages) - (page_num - 1) * PAGE_SIZE, 0)
    start = max(end - PAGE_SIZE, 0)
    return json_response(
        {
            "messages": [_message_wire(m, user, character) for m in messages[start:end]],
            "next_page": page_num + 1,
            "has_more": start > 0,
        }
    )


async def delete_messages(request: web.Request) -> web.StreamResponse:
    """``POST /chat/history/msgs/delete/`` ``{"history_id", "uuids_to_delete"}``; unknown
    uuids are ignored."""
    user = authenticate(request)
    v1 = _v1(request)
    body = await _object(request)
    uuids = body.get("uuids_to_delete")
    if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
        raise _bad_request("uuids_to_delete must be a list of strings")
    rec = _history_or_404(v1, user, body.get("history_id"))
    async with v1.lock(rec.external_id):
        v1.delete(rec, set(uuids))
    return json_response({"status": "OK"})


# ---- streaming --------------------------------------------------------------------------


class _Generation(msgspec.Struct):
    """What one ``/chat/streaming/`` call will produce, decided before streaming starts."""

    parent: V1MessageRecord
    texts: list[str]
    filtered: bool
    regenerating: bool


def _candidates(body: dict[str, Any]) -> int:
    number = body.get("num_candidates", 1)
    if number is None:
        return 1
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 20:
        raise _bad_request("num_candidates must be an integer from 1 to 20")
    return min(number, MAX_CANDIDATES)


def _reply_texts(
    character: SeedCharacter, text: str, turn: int, earlier: int, count: int, chunks: int
) -> list[str]:
    """``count`` replies; ``earlier`` replies to this message exist, so regenerated ones
    differ from them."""
    texts = []
    for k in range(count):
        reply = character.reply(text, turn + earlier + k)
        if len(reply) < chunks:
            reply += " …" * ((chunks - len(reply) + 1) // 2)
        texts.append(reply)
    return texts


def _plan(
    v1: V1Store, rec: V1HistoryRecord, character: SeedCharacter, body: dict[str, Any], chunks: int
) -> _Generation:
    """Validate a streaming request and store the user's message; raises ApiError."""
    messages = v1.messages[rec.external_id]
    by_uuid = {m.uuid: m for m in messages}
    parent_uuid = body.get("parent_msg_uuid") or body.get("retry_last_user_msg_uuid")
    primary_uuid = body.get("primary_msg_uuid")
    text = body.get("text")
    count = _candidates(body)
    chosen: V1MessageRecord | None = None
    if primary_uuid is not None:
        chosen = by_uuid.get(primary_uuid) if isinstance(primary_uuid, str) else None
        if chosen is None or chosen.is_human or chosen.parent_uuid is None:
            raise _bad_request("primary_msg_uuid is not a reply in this history")
    parent: V1MessageRecord | None = None
    if parent_uuid is not None:
        parent = by_uuid.get(parent_uuid) if isinstance(parent_uuid, str) else None
        if parent is None or not parent.is_human:
            raise _bad_request("parent_msg_uuid is not a user message in this history")
    elif not isinstance(text, str) or not text.strip():
        raise _bad_request("text is required")
    # Valid: now change things.
    if chosen is not None:
        v1.make_primary(rec, chosen)
    regenerating = parent is not None
    if parent is None:
        parent = v1.add_message(rec, str(text), is_human=True)
    turn = sum(1 for m in v1.messages[rec.external_id] if m.is_human and m.id <= parent.id)
    earlier = sum(1 for m in v1.messages[rec.external_id] if m.parent_uuid == parent.uuid)
    texts = _reply_texts(character, parent.text, turn, earlier, count, chunks)
    return _Generation(
        parent=parent,
        texts=texts,
        filtered=FILTER_TRIGGER in parent.text,
        regenerating=regenerating,
    )


def _line(body: dict[str, Any]) -> bytes:
    return msgspec.json.encode(body) + b"\n"


async def _write(response: web.StreamResponse, data: bytes) -> bool:
    """Write one line; False once the client has gone (the generation still completes)."""
    try:
        await response.write(data)
    except ConnectionError:
        return False
    return True


async def streaming(request: web.Request) -> web.StreamResponse:
    """``POST /chat/streaming/``: send a message (``text``) or regenerate
    (``parent_msg_uuid``) and stream cumulative NDJSON snapshots (§10.2)."""
    user = authenticate(request)
    v1 = _v1(request)
    body = await _object(request)
    state = request.app[STATE]
    if user.username.startswith("Guest") and v1.guest_usage(user).messages >= v1.guest_limit:
        # Verbatim capture: HTTP 200 and this one line (docs/protocol.md §2.4.3).
        return web.Response(body=_line({"force_login": True}), content_type="text/plain")
    rec = _history_or_404(v1, user, body.get("history_external_id"))
    character = _character_of(v1, rec)
    tgt = body.get("tgt")
    if tgt is not None and tgt != character.participant_username:
        raise _bad_request("tgt is not a participant of this history")
    character_id = body.get("character_external_id")
    if character_id is not None and character_id != character.id:
        raise _bad_request("character_external_id does not match the history")
    chunks = state.chunks
    async with v1.lock(rec.external_id):
        plan = _plan(v1, rec, character, body, chunks)
        if user.username.startswith("Guest"):
            v1.count_guest_message(user)
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        await _stream(v1, rec, character, plan, response, chunks, state.chunk_delay)
    return response


async def _stream(
    v1: V1Store,
    rec: V1HistoryRecord,
    character: SeedCharacter,
    plan: _Generation,
    response: web.StreamResponse,
    chunks: int,
    delay: float,
) -> None:
    parent = plan.parent
    pieces = [split_cumulative(text, chunks) for text in plan.texts]
    ids = [(v1.new_message_id(), new_id()) for _ in plan.texts]
    head = {"last_user_msg_id": parent.id, "last_user_msg_uuid": parent.uuid}
    total = max(1, chunks // 2) if plan.filtered else len(pieces[0])
    connected = True
    for i in range(total):
        if i and delay > 0:
            await asyncio.sleep(delay)
        final = i == total - 1 and not plan.filtered
        if final:
            _store_replies(v1, rec, plan, ids)
        replies = [
            {"text": p[min(i, len(p) - 1)], "uuid": uuid, "id": message_id}
            for p, (message_id, uuid) in zip(pieces, ids, strict=True)
        ]
        line = {"replies": replies, "src_char": _src_char(character), "is_final_chunk": final}
        line.update(head)
        if connected:
            connected = await _write(response, _line(line))
    if plan.filtered:
        abort = {"abort": True, "error": "No eligible candidates", **head}
        if connected:
            connected = await _write(response, _line(abort))
    if connected:
        with contextlib.suppress(ConnectionError):  # The client left after the last line.
            await response.write_eof()


def _store_replies(
    v1: V1Store, rec: V1HistoryRecord, plan: _Generation, ids: list[tuple[int, str]]
) -> None:
    """Store the replies just before the final line goes out, so a client that reads it
    and lists the history at once finds them."""
    answered = any(m.parent_uuid == plan.parent.uuid for m in v1.messages[rec.external_id])
    for k, (text, (message_id, uuid)) in enumerate(zip(plan.texts, ids, strict=True)):
        v1.add_message(
            rec,
            text,
            is_human=False,
            parent_uuid=plan.parent.uuid,
            is_alternative=answered or k > 0,
            message_id=message_id,
            uuid=uuid,
        )


# ---- emulator control -------------------------------------------------------------------


async def get_guest_limit(request: web.Request) -> web.Response:
    return json_response({"limit": _v1(request).guest_limit})


async def set_guest_limit(request: web.Request) -> web.Response:
    """``POST /__emulator__/v1/guest_limit`` ``{"limit": n}``: messages a guest may send."""
    body = await read_json(request)
    limit = body.get("limit") if isinstance(body, dict) else None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ApiError(400, {"detail": "limit must be an integer >= 0"})
    _v1(request).guest_limit = limit
    return json_response({"limit": limit})


def add_routes(app: web.Application) -> None:
    """Add the Chat V1 routes under both Django prefixes, and the guest-limit control."""
    for prefix in DJANGO_PREFIXES:
        add_post = app.router.add_post
        add_post(f"{prefix}/chat/history/create/", _plain(create_history))
        add_post(f"{prefix}/chat/history/continue/", _plain(continue_history))
        add_post(f"{prefix}/chat/character/histories/", _plain(character_histories))
        add_post(f"{prefix}/chat/character/histories_v2/", _plain(character_histories))
        app.router.add_get(f"{prefix}/chat/history/msgs/user/", _plain(history_messages))
        add_post(f"{prefix}/chat/history/msgs/delete/", _plain(delete_messages))
        add_post(f"{prefix}/chat/streaming/", _plain(streaming))
    app.router.add_get("/__emulator__/v1/guest_limit", get_guest_limit)
    app.router.add_post("/__emulator__/v1/guest_limit", set_guest_limit)
