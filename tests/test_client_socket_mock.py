"""Tier 2: the chat-socket calls of ``client.chats`` over MockTransport's in-memory socket.

``MockTransport(websocket=neo)`` hands every frame the client sends to a :class:`Neo`
script, which answers with literal frames (docs/protocol.md §8): the exact envelope and
payload of send, stream, regenerate, edit, select, pin and create, the reading of the
answers (echo skipped, deltas, the regenerated candidate, merged candidates), every error
frame, and what the client does on a drop, a cancel or a close. Waits are on frames with a
deadline, never on time.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import datetime, timezone
from typing import Any

import msgspec
import pytest

from caiclient import (
    AsyncClient,
    AuthError,
    BlockedError,
    CharacterNotFound,
    ChatNotFound,
    DuplicateRequest,
    Filtered,
    ProtocolError,
    RateLimited,
    ServerError,
    Timeout,
    TurnNotFound,
    ValidationError,
)
from caiclient.models import Author, Candidate, Chat, Turn, TurnKey
from caiclient.protocol.http import Request, Response
from caiclient.protocol.retry import Backoff
from caiclient.transports import MockTransport, MockWebSocket
from mock_service import (
    CHARACTER_ID,
    CHAT_ID,
    NEO,
    TOKEN,
    USER_ID,
    Neo,
    Service,
    answer_with,
    bot_turn,
    candidate,
    echo_of,
    json_body,
    make_client,
    push,
    refuse,
    replies,
    unauthorized,
)

CHAT = Chat(chat_id=CHAT_ID, character_id=CHARACTER_ID)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
FAST_RECONNECT = Backoff(initial=0.001, factor=1.0, max_delay=0.001, jitter=0.0, attempts=5)
COUNTERS = (
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

REPLY = Turn(
    turn_key=TurnKey(chat_id=CHAT_ID, turn_id="bot-turn-1"),
    author=Author(author_id=CHARACTER_ID, name="Sage"),
    candidates=[Candidate(candidate_id="bot-cand-1", raw_content="First reply", is_final=True)],
    primary_candidate_id="bot-cand-1",
)
MINE = Turn(
    turn_key=TurnKey(chat_id=CHAT_ID, turn_id="user-turn-1"),
    author=Author(author_id=USER_ID, is_human=True),
    candidates=[Candidate(candidate_id="user-cand-1", raw_content="hi", is_final=True)],
)


@pytest.fixture
def neo() -> Neo:
    return Neo()


@pytest.fixture
def service() -> Service:
    return Service().me()


@pytest.fixture
def transport(service: Service, neo: Neo) -> MockTransport:
    return MockTransport(service, websocket=neo)


@pytest.fixture
async def api(transport: MockTransport) -> AsyncIterator[AsyncClient]:
    async with make_client(transport, reconnect=FAST_RECONNECT) as client:
        yield client


# ---- send ---------------------------------------------------------------------------------------


async def test_send_opens_the_socket_with_both_forms_of_auth(
    neo: Neo, api: AsyncClient, transport: MockTransport
) -> None:
    neo.scripts["create_and_generate_turn"] = replies("Hi")
    await api.chats.send(CHAT, "hello")
    [ws] = transport.sockets
    assert ws.url == "wss://neo.character.ai/ws/"
    assert ws.headers == {"Cookie": f'HTTP_AUTHORIZATION="Token {TOKEN}"; edge_rollout=60'}


async def test_send_frame(neo: Neo, api: AsyncClient, transport: MockTransport) -> None:
    neo.scripts["create_and_generate_turn"] = replies("Hi")
    await api.chats.send(CHAT, "Any book about tides? «ü»")
    [frame] = neo.sent("create_and_generate_turn")
    assert set(frame) == {"command", "request_id", "origin_id", "payload"}
    assert frame["origin_id"] == "web-next"
    payload = frame["payload"]
    turn = payload["turn"]
    turn_id, candidate_id = turn["turn_key"]["turn_id"], turn["primary_candidate_id"]
    assert all(UUID.fullmatch(x) for x in (frame["request_id"], turn_id, candidate_id))
    assert len({frame["request_id"], turn_id, candidate_id}) == 3
    assert payload == {
        "character_id": CHARACTER_ID,
        "num_candidates": 1,
        "tts_enabled": False,
        "selected_language": "",
        "user_name": "",
        "previous_annotations": payload["previous_annotations"],  # checked below
        "turn": {
            "turn_key": {"chat_id": CHAT_ID, "turn_id": turn_id},
            "author": {"author_id": USER_ID, "is_human": True, "name": ""},
            "candidates": [
                {"candidate_id": candidate_id, "raw_content": "Any book about tides? «ü»"}
            ],
            "primary_candidate_id": candidate_id,
        },
    }
    # The account id comes from one GET /chat/user/, made before the frame.
    assert [s.request.url for s in transport.sent] == ["https://plus.character.ai/chat/user/"]


async def test_send_frame_carries_the_annotation_counters(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["create_and_generate_turn"] = replies("Hi")
    await api.chats.send(CHAT, "hello")
    payload = neo.sent("create_and_generate_turn")[0]["payload"]
    assert payload["previous_annotations"] == {f"{p}{n}": 0 for n in COUNTERS for p in ("", "not_")}


async def test_each_send_has_fresh_ids_and_one_account_lookup(
    neo: Neo, api: AsyncClient, transport: MockTransport
) -> None:
    neo.scripts["create_and_generate_turn"] = replies("Hi")
    await api.chats.send(CHAT, "one")
    await api.chats.send(CHAT, "two")
    first, second = neo.sent("create_and_generate_turn")
    assert first["request_id"] != second["request_id"]
    key = ("payload", "turn", "turn_key", "turn_id")
    assert _dig(first, key) != _dig(second, key)
    assert len(transport.sent) == 1 and len(transport.sockets) == 1


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = obj[part]
    return obj


async def test_send_returns_the_final_reply(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["create_and_generate_turn"] = replies("Fi", "First", "First reply")
    reply = await api.chats.send(CHAT, "hello")
    assert reply == msgspec.structs.replace(
        REPLY,
        create_time=datetime(2025, 1, 1, 12, tzinfo=timezone.utc),
        last_update_time=datetime(2025, 1, 1, 12, 0, 1, tzinfo=timezone.utc),
    )


async def test_send_skips_its_own_echo_even_without_is_human(neo: Neo, api: AsyncClient) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        echo = echo_of(frame["payload"]["turn"])
        del echo["author"]["is_human"]  # a server that leaves it out
        push(ws, "add_turn", frame["request_id"], turn=echo)
        replies("Hi", echo=False)(frame, ws)

    neo.scripts["create_and_generate_turn"] = script
    reply = await api.chats.send(CHAT, "hello")
    assert (reply.text, reply.turn_id) == ("Hi", "bot-turn-1")


async def test_frames_of_other_requests_are_not_taken(neo: Neo, api: AsyncClient) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        other = bot_turn(CHAT_ID, "Not yours", turn_id="x", candidate_id="y")
        push(ws, "update_turn", "someone-else", turn=other)
        push(ws, "update_turn", None, turn=other)
        push(ws, "state_update", frame["request_id"], data={})
        replies("Yours")(frame, ws)

    neo.scripts["create_and_generate_turn"] = script
    assert (await api.chats.send(CHAT, "hello")).text == "Yours"


async def test_a_reply_the_server_shortens_ends_with_its_final_text(
    neo: Neo, api: AsyncClient
) -> None:
    neo.scripts["create_and_generate_turn"] = replies("A long and risky", "A long")
    assert (await api.chats.send(CHAT, "hello")).text == "A long"


async def test_frames_after_the_final_one_change_nothing(neo: Neo, api: AsyncClient) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        replies("Done")(frame, ws)
        later = bot_turn(CHAT_ID, "Done, and more")
        push(ws, "update_turn", frame["request_id"], turn=later)

    neo.scripts["create_and_generate_turn"] = script
    assert (await api.chats.send(CHAT, "hello")).text == "Done"


# ---- error frames -------------------------------------------------------------------------------

ERROR_FRAMES = [
    (
        {
            "command": "neo_error",
            "comment": "Rate limit exceeded",
            "error_code": 429,
            "retry_after_seconds": 7,
        },
        RateLimited,
        lambda e: e.retry_after == 7.0,
    ),
    (
        {
            "command": "neo_error",
            "comment": "Self harm message detected",
            "error_code": 400,
            "sub_code": 101,
        },
        Filtered,
        lambda e: (e.comment, e.sub_code) == ("Self harm message detected", 101),
    ),
    (
        {"command": "filter_user_input", "comment": "This message was filtered"},
        Filtered,
        lambda e: e.comment == "This message was filtered",
    ),
    (
        {"command": "filter_user_input_self_harm"},
        Filtered,
        lambda e: "self-harm" in e.comment,
    ),
    (
        {"command": "neo_error", "comment": "Chat not found", "error_code": 404},
        ChatNotFound,
        lambda e: "Chat not found" in str(e),
    ),
    (
        {"command": "neo_error", "comment": "Character not found", "error_code": 404},
        CharacterNotFound,
        lambda e: True,
    ),
    (
        {"command": "neo_error", "comment": "Chat is archived", "error_code": 400},
        ServerError,
        lambda e: e.status == 400 and not isinstance(e, DuplicateRequest),
    ),
    (
        {
            "command": "neo_error",
            "comment": "create_and_generate_turn already exists",
            "error_code": 400,
        },
        DuplicateRequest,
        lambda e: e.status == 400,
    ),
    (
        {"command": "neo_error", "comment": "", "error_code": 500},
        ServerError,
        lambda e: e.status == 500,
    ),
    ({"command": "update_turn", "turn": 7}, ProtocolError, lambda e: "update_turn" in str(e)),
    ({"command": "add_turn", "turn": {"candidates": []}}, ProtocolError, lambda e: True),
]


@pytest.mark.parametrize(("frame", "error", "check"), ERROR_FRAMES)
async def test_send_error_frames(
    neo: Neo, api: AsyncClient, frame: dict[str, Any], error: type[Exception], check: Any
) -> None:
    def script(sent: dict[str, Any], ws: MockWebSocket) -> None:
        ws.push(json.dumps({**frame, "request_id": sent["request_id"]}))

    neo.scripts["create_and_generate_turn"] = script
    with pytest.raises(error) as caught:
        await api.chats.send(CHAT, "hello")
    assert check(caught.value)
    assert TOKEN not in str(caught.value)
    # A refusal is not re-sent (the policy raises at once) and the chat is free again.
    assert len(neo.sent("create_and_generate_turn")) == 1
    neo.scripts["create_and_generate_turn"] = replies("Hi")
    assert (await api.chats.send(CHAT, "again")).text == "Hi"


async def test_an_error_after_part_of_a_reply_still_raises(neo: Neo, api: AsyncClient) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        rid = frame["request_id"]
        push(ws, "add_turn", rid, turn=bot_turn(CHAT_ID, "Half", final=False))
        push(ws, "neo_error", rid, comment="Rate limit exceeded", retry_after_seconds=3)

    neo.scripts["create_and_generate_turn"] = script
    with pytest.raises(RateLimited):
        await api.chats.send(CHAT, "hello")


async def test_a_silent_server_times_out(neo: Neo, api: AsyncClient) -> None:
    with pytest.raises(Timeout):
        await api.chats.send(CHAT, "anyone?", timeout=0.2)
    assert len(neo.sent("create_and_generate_turn")) == 1


async def test_first_chunk_timeout_bounds_the_wait_for_the_first_frame(
    service: Service, neo: Neo
) -> None:
    transport = MockTransport(service, websocket=neo)
    async with make_client(transport, first_chunk_timeout=0.1) as client:
        send = client.chats.send(CHAT, "anyone?", timeout=30)
        with pytest.raises(Timeout):
            await asyncio.wait_for(send, 10)


async def test_after_the_first_frame_the_whole_deadline_applies(service: Service, neo: Neo) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        rid = frame["request_id"]
        push(ws, "add_turn", rid, turn=bot_turn(CHAT_ID, "Slow", final=False))
        later = asyncio.get_running_loop().call_later
        later(
            0.4, lambda: push(ws, "update_turn", rid, turn=bot_turn(CHAT_ID, "Slow!", final=True))
        )

    neo.scripts["create_and_generate_turn"] = script
    transport = MockTransport(service, websocket=neo)
    async with make_client(transport, first_chunk_timeout=0.1) as client:
        turn = await asyncio.wait_for(client.chats.send(CHAT, "take your time", timeout=30), 10)
        assert turn.text == "Slow!"
        chunks = [c async for c in client.chats.stream(CHAT, "again", timeout=30)]
        assert [c.text for c in chunks] == ["Slow", "Slow!"]


# ---- stream -------------------------------------------------------------------------------------


async def test_stream_yields_deltas_that_concatenate(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["create_and_generate_turn"] = replies("Hel", "Hello", "Hello there")
    chunks = [chunk async for chunk in api.chats.stream(CHAT, "hi")]
    assert [c.delta for c in chunks] == ["Hel", "lo", " there"]
    assert [c.text for c in chunks] == ["Hel", "Hello", "Hello there"]
    assert [c.final for c in chunks] == [False, False, True]
    assert chunks[-1].turn.text == "Hello there" and chunks[-1].turn.is_final
    assert not any(c.rewritten for c in chunks)


async def test_stream_marks_a_rewrite(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["create_and_generate_turn"] = replies("Hello wor", "Hello")
    chunks = [chunk async for chunk in api.chats.stream(CHAT, "hi")]
    assert [(c.delta, c.text, c.rewritten) for c in chunks] == [
        ("Hello wor", "Hello wor", False),
        ("", "Hello", True),
    ]


async def test_stream_skips_frames_that_add_nothing(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["create_and_generate_turn"] = replies("Same", "Same", "Same", "Same!")
    chunks = [chunk async for chunk in api.chats.stream(CHAT, "hi")]
    assert [c.delta for c in chunks] == ["Same", "!"]


async def test_a_coalesced_stream_makes_frames_that_came_together_one_chunk(
    neo: Neo, api: AsyncClient
) -> None:
    neo.scripts["create_and_generate_turn"] = replies("Hel", "Hello", "Hello there")
    chunks = [c async for c in api.chats.stream(CHAT, "hi", coalesce=True)]
    assert [(c.delta, c.text, c.final) for c in chunks] == [("Hello there", "Hello there", True)]
    assert chunks[0].turn.text == "Hello there" and not chunks[0].rewritten
    neo.scripts["create_and_generate_turn"] = replies("Hello wor", "Hello")
    [chunk] = [c async for c in api.chats.stream(CHAT, "hi", coalesce=True)]
    assert (chunk.delta, chunk.text, chunk.final) == ("Hello", "Hello", True)


async def test_a_coalesced_stream_holds_nothing_back(neo: Neo, api: AsyncClient) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        rid = frame["request_id"]
        push(ws, "add_turn", rid, turn=bot_turn(CHAT_ID, "Slow", final=False))
        push(ws, "update_turn", rid, turn=bot_turn(CHAT_ID, "Slow and", final=False))
        later = asyncio.get_running_loop().call_later
        later(0.2, lambda: push(ws, "update_turn", rid, turn=bot_turn(CHAT_ID, "Slow and steady")))

    neo.scripts["create_and_generate_turn"] = script
    # The two frames that came together are one chunk; the late one is not waited for.
    chunks = [(c.delta, c.final) async for c in api.chats.stream(CHAT, "hi", coalesce=True)]
    assert chunks == [("Slow and", False), (" steady", True)]


async def test_a_coalesced_stream_waits_for_no_frame_after_one_that_means_nothing(
    neo: Neo, api: AsyncClient
) -> None:
    late = asyncio.Event()

    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        rid = frame["request_id"]
        push(ws, "add_turn", rid, turn=bot_turn(CHAT_ID, "Part", final=False))
        other = bot_turn(CHAT_ID, "Not this one", turn_id="another-turn", candidate_id="zz")
        push(ws, "update_turn", rid, turn=other)  # Skipped: another turn.

        def finish() -> None:
            late.set()
            push(ws, "update_turn", rid, turn=bot_turn(CHAT_ID, "Part two"))

        asyncio.get_running_loop().call_later(0.3, finish)

    neo.scripts["create_and_generate_turn"] = script
    async with aclosing(api.chats.stream(CHAT, "hi", coalesce=True)) as stream:
        first = await anext(stream)
        came_before_the_late_frame = not late.is_set()
        rest = [c.delta async for c in stream]
    assert (first.delta, first.final, rest) == ("Part", False, [" two"])
    assert came_before_the_late_frame


def streams_forever(frame: dict[str, Any], ws: MockWebSocket) -> None:
    """The first chunk of a reply that never ends."""
    push(ws, "add_turn", frame["request_id"], turn=bot_turn(CHAT_ID, "Once", final=False))


async def test_leaving_a_stream_early_aborts_that_generation(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["create_and_generate_turn"] = streams_forever
    async with aclosing(api.chats.stream(CHAT, "hi")) as stream:
        async for chunk in stream:
            assert chunk.delta == "Once"
            break
    abort = await neo.wait_for("abort_generation")
    sent = neo.sent("create_and_generate_turn")[0]
    assert abort == {
        "command": "abort_generation",
        "request_id": sent["request_id"],
        "origin_id": "web-next",
        "payload": {},
    }
    assert api.stats.aborted_generations == 1
    # The chat is free at once.
    neo.scripts["create_and_generate_turn"] = replies("Next")
    assert (await api.chats.send(CHAT, "next", timeout=5)).text == "Next"


async def test_a_finished_stream_sends_no_abort(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["create_and_generate_turn"] = replies("Whole")
    async with aclosing(api.chats.stream(CHAT, "hi")) as stream:
        texts = [chunk.text async for chunk in stream]
    assert texts == ["Whole"]
    assert neo.sent("abort_generation") == [] and api.stats.aborted_generations == 0


async def test_cancelling_a_send_aborts_its_generation(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["create_and_generate_turn"] = streams_forever
    task = asyncio.create_task(api.chats.send(CHAT, "hi", timeout=30))
    await neo.wait_for("create_and_generate_turn")
    assert api._core.socket.in_flight == 1  # registered before its frame was sent
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    abort = await neo.wait_for("abort_generation")
    assert abort["request_id"] == neo.sent("create_and_generate_turn")[0]["request_id"]


async def test_closing_the_client_mid_reply_aborts_the_generation(
    neo: Neo, transport: MockTransport
) -> None:
    client = make_client(transport)
    neo.scripts["create_and_generate_turn"] = streams_forever
    stream = client.chats.stream(CHAT, "hi")
    first = await stream.__anext__()
    assert first.text == "Once"
    await client.aclose()
    rid = neo.sent("create_and_generate_turn")[0]["request_id"]
    assert rid in [f["request_id"] for f in neo.sent("abort_generation")]
    assert all(ws.closed for ws in transport.sockets)
    await stream.aclose()  # type: ignore[attr-defined]


# ---- drops, recovery and re-sends ---------------------------------------------------------------


def history_of(neo: Neo, *, replied: bool) -> Any:
    """``GET /turns/{chat}/``: the user's message (as sent) and, if ``replied``, the
    complete reply after it, newest first."""

    def turns(request: Request) -> Response:
        sent = neo.sent("create_and_generate_turn")
        found = [echo_of(sent[0]["payload"]["turn"])] if sent else []
        if replied:
            found.insert(0, bot_turn(CHAT_ID, "Recovered reply"))
        return json_body({"turns": found, "meta": {"next_token": None}})

    return turns


async def test_a_reply_cut_off_by_a_drop_is_recovered_from_the_history(
    service: Service, neo: Neo, api: AsyncClient, transport: MockTransport
) -> None:
    def cut(frame: dict[str, Any], ws: MockWebSocket) -> None:
        push(ws, "add_turn", frame["request_id"], turn=bot_turn(CHAT_ID, "Recov", final=False))
        ws.drop(1006)

    neo.scripts["create_and_generate_turn"] = cut
    service.route("GET", f"{NEO}/turns/{CHAT_ID}/", history_of(neo, replied=True))
    reply = await api.chats.send(CHAT, "hello", timeout=10)
    assert reply.text == "Recovered reply"
    assert api.stats.recovered_replies == 1 and api.stats.resent_messages == 0
    assert len(neo.sent("create_and_generate_turn")) == 1


async def test_a_message_the_server_never_got_is_sent_again_with_the_same_ids(
    service: Service, neo: Neo, api: AsyncClient, transport: MockTransport
) -> None:
    calls = 0

    def lost_then_answered(frame: dict[str, Any], ws: MockWebSocket) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            neo.frames.remove(frame)  # the server never saw it
            ws.drop(1006)
        else:
            replies("Second time lucky")(frame, ws)

    neo.scripts["create_and_generate_turn"] = lost_then_answered
    service.route("GET", f"{NEO}/turns/{CHAT_ID}/", history_of(neo, replied=False))
    reply = await api.chats.send(CHAT, "hello", timeout=10)
    assert reply.text == "Second time lucky"
    assert api.stats.resent_messages == 1
    assert calls == 2 and len(transport.sockets) == 2
    [resent] = neo.sent("create_and_generate_turn")
    assert resent["payload"]["turn"]["candidates"][0]["raw_content"] == "hello"


async def test_a_dropped_regeneration_is_not_recovered(neo: Neo, api: AsyncClient) -> None:
    from caiclient import Disconnected

    def cut(frame: dict[str, Any], ws: MockWebSocket) -> None:
        ws.drop(1006)

    neo.scripts["generate_turn_candidate"] = cut
    with pytest.raises(Disconnected):
        await api.chats.regenerate(REPLY, timeout=5)


async def test_a_1009_close_is_a_server_error_not_a_resend(neo: Neo, api: AsyncClient) -> None:
    def too_big(frame: dict[str, Any], ws: MockWebSocket) -> None:
        ws.drop(1009)

    neo.scripts["create_and_generate_turn"] = too_big
    with pytest.raises(ServerError, match="too large") as caught:
        await api.chats.send(CHAT, "x" * 1000, timeout=5)
    assert caught.value.status == 1009
    assert len(neo.sent("create_and_generate_turn")) == 1


# ---- regenerate ---------------------------------------------------------------------------------


def swipes(*chunks: str, candidate_id: str = "swipe-1", send_old: bool = False) -> Any:
    """A script answering generate_turn_candidate with update_turns of a new candidate."""

    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        rid = frame["request_id"]
        key = frame["payload"]["turn_key"]
        old = [candidate("bot-cand-1", "First reply")] if send_old else []
        for index, text in enumerate(chunks):
            final = index == len(chunks) - 1
            turn = bot_turn(
                key["chat_id"],
                text,
                final=final,
                turn_id=key["turn_id"],
                candidate_id=candidate_id,
                others=old,
            )
            push(ws, "update_turn", rid, turn=turn)

    return script


async def test_regenerate_frame(neo: Neo, api: AsyncClient, transport: MockTransport) -> None:
    neo.scripts["generate_turn_candidate"] = swipes("Another")
    await api.chats.regenerate(REPLY)
    [frame] = neo.sent("generate_turn_candidate")
    assert frame["origin_id"] == "web-next" and UUID.fullmatch(frame["request_id"])
    assert frame["payload"] == {
        "character_id": CHARACTER_ID,
        "turn_key": {"chat_id": CHAT_ID, "turn_id": "bot-turn-1"},
        "tts_enabled": False,
        "selected_language": "",
        "user_name": "",
        "previous_annotations": {f"{p}{n}": 0 for n in COUNTERS for p in ("", "not_")},
    }
    assert transport.sent == []  # no account lookup: the frame needs none


@pytest.mark.parametrize("send_old", [False, True], ids=["new-only", "with-old"])
async def test_regenerate_returns_the_new_reply_first_with_the_old_ones(
    neo: Neo, api: AsyncClient, send_old: bool
) -> None:
    neo.scripts["generate_turn_candidate"] = swipes("An", "Another", send_old=send_old)
    turn = await api.chats.regenerate(REPLY)
    assert turn.text == "Another" and turn.primary_candidate_id == "swipe-1"
    assert [c.candidate_id for c in turn.candidates] == ["swipe-1", "bot-cand-1"]
    assert turn.candidate("bot-cand-1") == REPLY.candidates[0]


async def test_regenerate_follows_the_new_candidate_wherever_it_is(
    neo: Neo, api: AsyncClient
) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        # The older candidate first, the new one second and not primary.
        turn = bot_turn(CHAT_ID, "First reply", candidate_id="bot-cand-1")
        turn["candidates"].append(candidate("swipe-9", "Brand new"))
        push(ws, "update_turn", frame["request_id"], turn=turn)

    neo.scripts["generate_turn_candidate"] = script
    chunks = [c async for c in api.chats.stream_regenerate(REPLY)]
    assert [c.text for c in chunks] == ["Brand new"]


async def test_regenerate_skips_frames_of_other_turns(neo: Neo, api: AsyncClient) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        other = bot_turn(CHAT_ID, "Wrong turn", turn_id="another-turn", candidate_id="zz")
        push(ws, "update_turn", frame["request_id"], turn=other)
        swipes("Right turn")(frame, ws)

    neo.scripts["generate_turn_candidate"] = script
    assert (await api.chats.regenerate(REPLY)).text == "Right turn"


async def test_stream_regenerate(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["generate_turn_candidate"] = swipes("Ano", "Another one")
    chunks = [c async for c in api.chats.stream_regenerate(REPLY)]
    assert [c.delta for c in chunks] == ["Ano", "ther one"]
    final = chunks[-1].turn
    assert [c.candidate_id for c in final.candidates] == ["swipe-1", "bot-cand-1"]


async def test_a_coalesced_swipe(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["generate_turn_candidate"] = swipes("Ano", "Another", "Another one")
    [chunk] = [c async for c in api.chats.stream_regenerate(REPLY, coalesce=True)]
    assert (chunk.delta, chunk.final) == ("Another one", True)
    assert [c.candidate_id for c in chunk.turn.candidates] == ["swipe-1", "bot-cand-1"]


@pytest.mark.parametrize(
    ("comment", "error"),
    [
        ("Turn not found", TurnNotFound),
        ("Only character turns can be regenerated", ServerError),
        ("Rate limit exceeded", RateLimited),
    ],
)
async def test_regenerate_refusals(
    neo: Neo, api: AsyncClient, comment: str, error: type[Exception]
) -> None:
    neo.scripts["generate_turn_candidate"] = refuse(comment)
    with pytest.raises(error):
        await api.chats.regenerate(REPLY)


# ---- edit / select / pin ------------------------------------------------------------------------


async def test_edit(neo: Neo, api: AsyncClient) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        edited = candidate(
            "edit-1",
            "Try the history stacks.",
            editor={"author_id": USER_ID, "name": "ada_l"},
            base_candidate_id="bot-cand-1",
        )
        other = bot_turn(CHAT_ID, "noise", turn_id="another-turn")
        push(ws, "update_turn", frame["request_id"], turn=other)
        turn = bot_turn(CHAT_ID, "unused")
        turn["candidates"] = [edited]
        turn["primary_candidate_id"] = "edit-1"
        push(ws, "update_turn", frame["request_id"], turn=turn)

    neo.scripts["edit_turn_candidate"] = script
    turn = await api.chats.edit(REPLY, "Try the history stacks.")
    assert turn.text == "Try the history stacks."
    first, old = turn.candidates
    assert (first.base_candidate_id, first.editor) == (
        "bot-cand-1",
        Author(author_id=USER_ID, name="ada_l"),
    )
    assert old == REPLY.candidates[0]
    [frame] = neo.sent("edit_turn_candidate")
    assert frame["payload"] == {
        "turn_key": {"chat_id": CHAT_ID, "turn_id": "bot-turn-1"},
        "current_candidate_id": "bot-cand-1",
        "new_candidate_raw_content": "Try the history stacks.",
    }


async def test_edit_of_your_own_turn(neo: Neo, api: AsyncClient) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        edited = candidate(
            "edit-2", "hello", editor={"author_id": USER_ID}, base_candidate_id="user-cand-1"
        )
        turn = {
            "turn_key": {"chat_id": CHAT_ID, "turn_id": "user-turn-1"},
            "author": {"author_id": USER_ID, "is_human": True},
            "candidates": [edited],
            "primary_candidate_id": "edit-2",
        }
        push(ws, "update_turn", frame["request_id"], turn=turn)

    neo.scripts["edit_turn_candidate"] = script
    turn = await api.chats.edit(MINE, "hello")
    assert turn.text == "hello" and turn.is_human
    assert [c.candidate_id for c in turn.candidates] == ["edit-2", "user-cand-1"]
    assert neo.sent("edit_turn_candidate")[0]["payload"]["current_candidate_id"] == "user-cand-1"


@pytest.mark.parametrize(
    ("comment", "error"),
    [
        ("Turn candidate not found", TurnNotFound),
        ("Self harm message detected", Filtered),
        ("Chat is archived", ServerError),
    ],
)
async def test_edit_refusals(
    neo: Neo, api: AsyncClient, comment: str, error: type[Exception]
) -> None:
    neo.scripts["edit_turn_candidate"] = refuse(comment)
    with pytest.raises(error):
        await api.chats.edit(REPLY, "new text")


@pytest.mark.parametrize("choice", ["bot-cand-1", Candidate(candidate_id="bot-cand-1")])
async def test_select(neo: Neo, api: AsyncClient, choice: Any) -> None:
    neo.scripts["update_primary_candidate"] = answer_with("ok")
    assert await api.chats.select(REPLY, choice) is None
    [frame] = neo.sent("update_primary_candidate")
    assert frame["payload"] == {
        "candidate_id": "bot-cand-1",
        "turn_key": {"chat_id": CHAT_ID, "turn_id": "bot-turn-1"},
    }


async def test_select_waits_for_ok_and_ignores_other_frames(neo: Neo, api: AsyncClient) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        push(ws, "update_turn", frame["request_id"], turn=bot_turn(CHAT_ID, "x"))
        push(ws, "ok", frame["request_id"])

    neo.scripts["update_primary_candidate"] = script
    await api.chats.select(REPLY, "bot-cand-1")


async def test_select_of_an_unknown_candidate(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["update_primary_candidate"] = refuse("Turn candidate not found", 404)
    with pytest.raises(TurnNotFound):
        await api.chats.select(REPLY, "no-such-candidate")


@pytest.mark.parametrize("pinned", [True, False])
async def test_pin_and_unpin(neo: Neo, api: AsyncClient, pinned: bool) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        turn = bot_turn(CHAT_ID, "First reply", is_pinned=frame["payload"]["is_pinned"])
        push(ws, "update_turn", frame["request_id"], turn=turn)

    neo.scripts["set_turn_pin"] = script
    call = api.chats.pin if pinned else api.chats.unpin
    turn = await call(REPLY)
    assert turn.is_pinned is pinned
    [frame] = neo.sent("set_turn_pin")
    assert frame["payload"] == {
        "is_pinned": pinned,
        "turn_key": {"chat_id": CHAT_ID, "turn_id": "bot-turn-1"},
    }


async def test_pin_refused(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["set_turn_pin"] = refuse("Maximum pinned memory limit reached")
    with pytest.raises(ServerError, match="Maximum pinned"):
        await api.chats.pin(REPLY)


# ---- create / open ------------------------------------------------------------------------------

CREATED = {
    "chat_id": "set-by-the-script",
    "create_time": "2025-02-02T02:02:02Z",
    "creator_id": USER_ID,
    "character_id": CHARACTER_ID,
    "state": "STATE_ACTIVE",
    "type": "TYPE_ONE_ON_ONE",
    "visibility": "VISIBILITY_PRIVATE",
    "preferred_model_type": "MODEL_TYPE_SMART",
}


def creates(*, greeting: bool = True) -> Any:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        rid, chat_id = frame["request_id"], frame["payload"]["chat"]["chat_id"]
        push(ws, "create_chat_response", rid, chat={**CREATED, "chat_id": chat_id})
        if greeting:
            turn = bot_turn(chat_id, "Welcome to the stacks.", turn_id="greet")
            push(ws, "add_turn", rid, turn=turn)

    return script


async def test_create_frame_and_greeting(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["create_chat"] = creates()
    chat, greeting = await api.chats.create(CHARACTER_ID)
    [frame] = neo.sent("create_chat")
    chat_id = frame["payload"]["chat"]["chat_id"]
    assert UUID.fullmatch(chat_id) and chat_id != frame["request_id"]
    assert frame["payload"] == {
        "chat": {
            "chat_id": chat_id,
            "creator_id": USER_ID,
            "visibility": "VISIBILITY_PRIVATE",
            "character_id": CHARACTER_ID,
            "type": "TYPE_ONE_ON_ONE",
        },
        "with_greeting": True,
    }
    assert (chat.chat_id, chat.character_id, chat.creator_id) == (chat_id, CHARACTER_ID, USER_ID)
    assert greeting is not None
    assert (greeting.text, greeting.chat_id, greeting.is_final) == (
        "Welcome to the stacks.",
        chat_id,
        True,
    )


async def test_create_without_greeting_ends_at_the_chat(neo: Neo, api: AsyncClient) -> None:
    neo.scripts["create_chat"] = creates(greeting=False)
    chat, greeting = await api.chats.create(CHARACTER_ID, greeting=False)
    assert greeting is None and chat.preferred_model_type == "MODEL_TYPE_SMART"
    assert neo.sent("create_chat")[0]["payload"]["with_greeting"] is False


async def test_create_waits_for_a_final_greeting(neo: Neo, api: AsyncClient) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        rid, chat_id = frame["request_id"], frame["payload"]["chat"]["chat_id"]
        push(ws, "create_chat_response", rid, chat={**CREATED, "chat_id": chat_id})
        push(ws, "add_turn", rid, turn=bot_turn(chat_id, "Wel", final=False))
        push(ws, "update_turn", rid, turn=bot_turn(chat_id, "Welcome!"))

    neo.scripts["create_chat"] = script
    _, greeting = await api.chats.create(CHARACTER_ID)
    assert greeting is not None and greeting.text == "Welcome!"


@pytest.mark.parametrize(
    ("comment", "error"),
    [
        ("Character not found", CharacterNotFound),
        ("Chat not found", CharacterNotFound),  # before the chat exists: the character
        ("create_chat already exists", DuplicateRequest),
    ],
)
async def test_create_refusals(
    neo: Neo, api: AsyncClient, comment: str, error: type[Exception]
) -> None:
    neo.scripts["create_chat"] = refuse(comment, 404)
    with pytest.raises(error):
        await api.chats.create(CHARACTER_ID)


async def test_open_creates_a_chat_when_there_is_none(
    service: Service, neo: Neo, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", f"{NEO}/chats/recent/{CHARACTER_ID}", json_body({}))
    neo.scripts["create_chat"] = creates()
    chat = await api.chats.open(CHARACTER_ID)
    assert chat.chat_id == neo.sent("create_chat")[0]["payload"]["chat"]["chat_id"]


# ---- the socket itself --------------------------------------------------------------------------


async def test_a_refused_upgrade_401_is_auth_error(service: Service) -> None:
    transport = MockTransport(service, refuse_upgrade=401)
    async with make_client(transport) as client:
        with pytest.raises(AuthError, match="401"):
            await client.chats.send(CHAT, "hello", timeout=5)


async def test_a_refused_upgrade_403_with_a_valid_token_is_a_block(service: Service) -> None:
    transport = MockTransport(service, refuse_upgrade=403)
    async with make_client(transport) as client:
        with pytest.raises(BlockedError) as caught:
            await client.chats.send(CHAT, "hello", timeout=5)
    assert caught.value.status == 403
    # REST was asked whether the token is good: GET /chat/user/ for the frame, then again.
    assert [s.request.url for s in transport.sent].count(
        "https://plus.character.ai/chat/user/"
    ) == 2


async def test_a_refused_upgrade_403_with_a_bad_token_is_auth_error(service: Service) -> None:
    good_then_bad = [json_body({"user": {"user": {"username": "ada_l", "id": 1}}}), unauthorized()]
    service.route("GET", "https://plus.character.ai/chat/user/", *good_then_bad)
    transport = MockTransport(service, refuse_upgrade=403)
    async with make_client(transport) as client:
        with pytest.raises(AuthError):
            await client.chats.send(CHAT, "hello", timeout=5)


async def test_a_server_keepalive_is_answered(neo: Neo, api: AsyncClient) -> None:
    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        ws.push("{}")
        replies("Hi")(frame, ws)

    neo.scripts["create_and_generate_turn"] = script
    assert (await api.chats.send(CHAT, "hello")).text == "Hi"
    assert await neo.wait_until(lambda frames: {} in frames)


async def test_ping_measures_the_round_trip(neo: Neo, api: AsyncClient) -> None:
    neo.scripts[""] = lambda frame, ws: ws.push("{}")
    rtt = await api.ping(timeout=5)
    assert 0 <= rtt < 5
    assert neo.frames == [{}]


async def test_ping_of_a_silent_server_times_out(api: AsyncClient, neo: Neo) -> None:
    with pytest.raises(Timeout):
        await api.ping(timeout=0.2)
    assert neo.frames == [{}]


async def test_sends_to_one_chat_run_one_after_another(service: Service, neo: Neo) -> None:
    # Each reply stays open until a second generation overlaps it (then all finish at
    # once) or, with none, for 0.2 s: how many were open when each frame arrived shows
    # whether the client let them overlap.
    active: list[int] = []
    pending: list[Any] = []
    loop = asyncio.get_running_loop()

    def slow(frame: dict[str, Any], ws: MockWebSocket) -> None:
        active.append(len(pending))
        rid, chat_id = frame["request_id"], frame["payload"]["turn"]["turn_key"]["chat_id"]
        push(ws, "add_turn", rid, turn=bot_turn(chat_id, "Wo", final=False))

        def finish() -> None:
            if finish in pending:
                pending.remove(finish)
                push(ws, "update_turn", rid, turn=bot_turn(chat_id, "Words"))

        pending.append(finish)
        if len(pending) > 1:
            for each in list(pending):
                each()
        else:
            loop.call_later(0.2, finish)

    neo.scripts["create_and_generate_turn"] = slow
    other = Chat(chat_id="another-chat", character_id=CHARACTER_ID)
    async with make_client(MockTransport(service, websocket=neo)) as client:
        same = await asyncio.gather(client.chats.send(CHAT, "a"), client.chats.send(CHAT, "b"))
        assert active == [0, 0]  # the second waited for the first reply
        active.clear()
        apart = await asyncio.gather(client.chats.send(CHAT, "c"), client.chats.send(other, "d"))
        assert active == [0, 1]  # different chats overlap
    assert [t.text for t in (*same, *apart)] == ["Words"] * 4


# ---- validation before any I/O ------------------------------------------------------------------

FOREIGN = Turn(turn_key=TurnKey(chat_id="other", turn_id="t"), author=Author(author_id="c"))


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.chats.send(CHAT_ID, "hello"),
        lambda c: c.chats.send(CHAT, ""),
        lambda c: c.chats.send(CHAT, "   "),
        lambda c: c.chats.send(CHAT, None),
        lambda c: c.chats.send(CHAT, "lone \ud83d"),
        lambda c: c.chats.send(Chat(chat_id="a/b", character_id=CHARACTER_ID), "hi"),
        lambda c: c.chats.send(Chat(chat_id=CHAT_ID, character_id=""), "hi"),
        lambda c: c.chats.send(CHAT, "hi", timeout=0),
        lambda c: c.chats.regenerate(MINE),
        lambda c: c.chats.regenerate("turn"),
        lambda c: c.chats.regenerate(Turn(turn_key=TurnKey(chat_id=CHAT_ID))),
        lambda c: c.chats.edit(REPLY, ""),
        lambda c: c.chats.edit(REPLY, 5),
        lambda c: c.chats.edit(Turn(turn_key=TurnKey(chat_id=CHAT_ID, turn_id="t")), "x"),
        lambda c: c.chats.select(REPLY, None),
        lambda c: c.chats.select(REPLY, "bad id"),
        lambda c: c.chats.select(REPLY, Candidate(candidate_id="")),
        lambda c: c.chats.pin("turn"),
        lambda c: c.chats.unpin(Turn(turn_key=TurnKey(chat_id="", turn_id="t"))),
        lambda c: c.chats.create(""),
        lambda c: c.chats.create("a/b"),
        lambda c: c.chats.create(CHARACTER_ID, timeout=-1),
    ],
)
async def test_socket_calls_are_validated_before_any_io(
    api: AsyncClient, transport: MockTransport, neo: Neo, call: Any
) -> None:
    with pytest.raises(ValidationError):
        await call(api)
    assert transport.sent == [] and transport.sockets == [] and neo.frames == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.chats.stream(CHAT, ""),
        lambda c: c.chats.stream("chat", "hello"),
        lambda c: c.chats.stream(CHAT, "hello", timeout=float("nan")),
        lambda c: c.chats.stream_regenerate(MINE),
        lambda c: c.chats.stream_regenerate(REPLY, timeout="soon"),
        lambda c: c.chats.stream(CHAT, "hello", coalesce="yes"),
        lambda c: c.chats.stream_regenerate(REPLY, coalesce=1),
    ],
)
def test_streams_check_their_arguments_at_once(
    api: AsyncClient, transport: MockTransport, call: Any
) -> None:
    with pytest.raises(ValidationError):
        call(api)
    assert transport.sent == [] and transport.sockets == []
