"""Tier 2: ``client.v1`` (legacy Chat V1) over MockTransport.

A handler plays the plus host's Chat V1 routes with literal bodies (docs/protocol.md §10):
the exact requests, histories and their ``tgt``, message paging, the newline-delimited JSON
reply stream (deltas, a missing final marker, in-band errors) and the plain-text errors.
MockTransport hands a streamed body over in one piece; the decoder's handling of arbitrary
chunking is tier 1 (tests/test_protocol_v1.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from caiclient import (
    AsyncClient,
    CharacterNotFound,
    Filtered,
    HistoryNotFound,
    LoginRequired,
    ProtocolError,
    ServerError,
    ValidationError,
)
from caiclient.models import V1History, V1Message
from caiclient.protocol.http import Request, Response
from caiclient.transports import MockTransport
from mock_service import (
    CHARACTER_ID,
    PLUS,
    Service,
    json_body,
    not_ok,
    text_body,
    urls,
    wire,
)

TGT = "internal_id:123456:0b0e8f5a-1111-4222-8333-944445555666"
HISTORY_ID = "Qm9va3NBbmRUaWRlczAx"
BIG = 2**53 + 1
STREAMING = f"{PLUS}/chat/streaming/"
MSGS = f"{PLUS}/chat/history/msgs/user/"
CONTINUE = f"{PLUS}/chat/history/continue/"
HISTORY = V1History(external_id=HISTORY_ID, character_id=CHARACTER_ID, tgt=TGT)


def message(n: int, text: str, *, human: bool, **fields: Any) -> dict[str, Any]:
    """A Chat V1 message as the server lists it (§10.1)."""
    return {
        "id": BIG + n,
        "uuid": f"uuid-{n}",
        "text": text,
        "src": "ada_l" if human else TGT,
        "tgt": TGT if human else "ada_l",
        "is_alternative": False,
        "image_rel_path": "",
        "image_prompt_text": "",
        "deleted": None,
        "src__name": "Ada" if human else "Sage",
        "src__user__username": "ada_l" if human else TGT,
        "src__is_human": human,
        "src__character__avatar_file_name": None if human else "sage.webp",
        "src_char": {"participant": {"name": "Sage"}, "avatar_file_name": "sage.webp"},
        **fields,
    }


CREATED = {
    "title": "A patient librarian",
    "participants": [
        {
            "user": {"username": "ada_l", "id": 123, "first_name": None, "account": None},
            "is_human": True,
            "name": "Ada",
        },
        {
            "user": {"username": TGT, "id": 456, "account": {"name": "Sage"}},
            "is_human": False,
            "name": "Sage",
            "num_interactions": 5,
        },
    ],
    "external_id": HISTORY_ID,
    "created": "2022-10-01T12:00:00.123456Z",
    "last_interaction": "2022-10-02T08:30:00Z",
    "type": "ONE_ON_ONE",
    "description": "",
    "status": "OK",
    "has_more": False,
    "messages": [message(0, "Welcome to the stacks.", human=False)],
}
"""``POST /chat/history/create/`` (docs/protocol.md §10.1)."""


def ndjson(*lines: dict[str, Any], newline_at_end: bool = True) -> Response:
    body = "\n".join(json.dumps(line) for line in lines) + ("\n" if newline_at_end else "")
    return Response(200, {"content-type": "text/plain; charset=utf-8"}, body.encode())


def snapshot(text: str, *, final: bool = False, uuid: str = "reply-1") -> dict[str, Any]:
    """One line of a /chat/streaming/ body: the reply so far (§10.2)."""
    return {
        "replies": [{"text": text, "uuid": uuid, "id": BIG + 99}],
        "src_char": {"participant": {"name": "Sage"}, "avatar_file_name": "sage.webp"},
        "is_final_chunk": final,
        "last_user_msg_id": BIG + 98,
        "last_user_msg_uuid": "asked-1",
    }


# ---- histories ----------------------------------------------------------------------------------


async def test_create(service: Service, api: AsyncClient, transport: MockTransport) -> None:
    url = f"{PLUS}/chat/history/create/"
    service.route("POST", url, json_body(CREATED))
    history = await api.v1.create(CHARACTER_ID)
    assert (history.external_id, history.history_id, history.tgt) == (HISTORY_ID, HISTORY_ID, TGT)
    assert (history.character_id, history.title, history.character_name) == (
        CHARACTER_ID,
        "A patient librarian",
        "Sage",
    )
    assert history.created == datetime(2022, 10, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    [greeting] = history.messages
    assert greeting == V1Message(
        id=str(BIG),
        uuid="uuid-0",
        text="Welcome to the stacks.",
        src=TGT,
        tgt="ada_l",
        src_name="Sage",
        is_human=False,
    )
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", url)
    assert sent.json == {"character_external_id": CHARACTER_ID, "history_external_id": None}


async def test_create_is_not_sent_twice(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    url = f"{PLUS}/chat/history/create/"
    service.route("POST", url, json_body({"detail": "unavailable"}, 503))
    with pytest.raises(ServerError):
        await api.v1.create(CHARACTER_ID)
    assert len(transport.sent) == 1


async def test_histories(service: Service, api: AsyncClient, transport: MockTransport) -> None:
    url = f"{PLUS}/chat/character/histories/"
    listed = {
        "histories": [
            {
                "external_id": "h-new",
                "created": "2022-10-03T00:00:00Z",
                "last_interaction": "2022-10-04T00:00:00Z",
                "msgs": [message(1, "hi", human=True), message(2, "Hello!", human=False)],
            },
            {"external_id": "h-old", "msgs": [message(3, "only me", human=True)]},
            {"external_id": "h-empty", "msgs": []},
        ]
    }
    service.route("POST", url, json_body(listed))
    new, old, empty = await api.v1.histories(CHARACTER_ID)
    assert (new.external_id, new.tgt, new.character_name, len(new.messages)) == (
        "h-new",
        TGT,
        "Sage",
        2,
    )
    assert [m.id for m in new.messages] == [str(BIG + 1), str(BIG + 2)]
    assert (old.tgt, old.character_name) == (TGT, "")  # from the user's own message
    assert (empty.tgt, empty.messages) == ("", [])
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.json) == (
        "POST",
        url,
        {"external_id": CHARACTER_ID, "number": 50},
    )


@pytest.mark.parametrize("body", [{}, {"histories": None}, {"histories": []}])
async def test_no_histories(service: Service, api: AsyncClient, body: Any) -> None:
    service.route("POST", f"{PLUS}/chat/character/histories/", json_body(body))
    assert await api.v1.histories(CHARACTER_ID) == []


@pytest.mark.parametrize("history_id", [None, HISTORY_ID])
async def test_continue(
    service: Service, api: AsyncClient, transport: MockTransport, history_id: str | None
) -> None:
    body = {key: value for key, value in CREATED.items() if key not in ("messages", "status")}
    service.route("POST", CONTINUE, json_body(body))
    history = await api.v1.continue_(CHARACTER_ID, history_id)
    assert (history.external_id, history.tgt, history.messages) == (HISTORY_ID, TGT, [])
    [sent] = wire(transport.sent)
    assert sent.json == {"character_external_id": CHARACTER_ID, "history_external_id": history_id}


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (text_body("there is no history between user and character", 404), HistoryNotFound),
        (text_body("there is no history between user and character"), HistoryNotFound),
        (text_body("No Such History", 404), HistoryNotFound),
        (text_body("history not found.", 200), HistoryNotFound),
        (text_body(f"no character found for {CHARACTER_ID}", 404), CharacterNotFound),
        (text_body(f"no character found for {CHARACTER_ID}"), CharacterNotFound),
        (text_body("Something odd happened"), ProtocolError),
        (not_ok("history is locked"), ServerError),
    ],
)
async def test_continue_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("POST", CONTINUE, answer)
    with pytest.raises(error):
        await api.v1.continue_(CHARACTER_ID)


# ---- messages ----------------------------------------------------------------------------------


def pages(*batches: list[dict[str, Any]]) -> Any:
    """``/msgs/user/``: page 1 the newest, each page oldest first (§10.1)."""

    def answer(request: Request) -> Response:
        number = int((request.params or {}).get("page_num", "1"))
        more = number < len(batches)
        return json_body(
            {"messages": batches[number - 1], "next_page": number + 1, "has_more": more}
        )

    return answer


async def test_messages_reads_every_page_oldest_first(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    newest = [message(3, "three", human=True), message(4, "four", human=False)]
    oldest = [message(1, "one", human=True), message(2, "two", human=False, is_alternative=True)]
    service.route("GET", MSGS, pages(newest, oldest))
    listed = await api.v1.messages(HISTORY)
    assert [m.text for m in listed] == ["one", "two", "three", "four"]
    assert [m.is_alternative for m in listed] == [False, True, False, False]
    first, second = wire(transport.sent)
    assert (first.method, first.url, first.params) == (
        "GET",
        MSGS,
        {"history_external_id": HISTORY_ID},
    )
    assert second.params == {"history_external_id": HISTORY_ID, "page_num": "2"}


async def test_messages_of_a_history_id(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", MSGS, json_body({"messages": [], "has_more": False}))
    assert await api.v1.messages("h-2") == []
    assert wire(transport.sent)[0].params == {"history_external_id": "h-2"}


async def test_messages_stop_when_the_server_repeats_a_page(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    looping = {"messages": [message(1, "again", human=True)], "next_page": 2, "has_more": True}
    service.route("GET", MSGS, json_body(looping))
    listed = await api.v1.messages(HISTORY)
    assert len(transport.sent) == 2  # page 1, page 2 (which points at 2 again): stop
    assert [m.text for m in listed] == ["again", "again"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (text_body("No Such History", 404), HistoryNotFound),
        (json_body({"messages": [{"text": "no id"}]}), ProtocolError),
        (json_body({"error": "history is locked"}), ServerError),
    ],
)
async def test_messages_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("GET", MSGS, answer)
    with pytest.raises(error):
        await api.v1.messages(HISTORY)


# ---- send and stream ---------------------------------------------------------------------------

BODY_TEMPLATE = {
    "history_external_id": HISTORY_ID,
    "character_external_id": CHARACTER_ID,
    "tgt": TGT,
    "ranking_method": "random",
    "staging": False,
    "model_server_address": None,
    "override_prefix": None,
    "override_rank": None,
    "rank_candidates": None,
    "filter_candidates": None,
    "prefix_limit": None,
    "prefix_token_limit": None,
    "livetune_coeff": None,
    "stream_params": None,
    "enable_tti": None,
    "initial_timeout": None,
    "insert_beginning": None,
    "translate_candidates": None,
    "stream_every_n_steps": 16,
    "chunks_to_pad": 8,
    "is_proactive": False,
    "image_rel_path": "",
    "image_description": "",
    "image_description_type": "",
    "image_origin_type": "",
    "voice_enabled": False,
    "parent_msg_uuid": None,
    "primary_msg_uuid": None,
    "seen_msg_uuids": [],
    "retry_last_user_msg_uuid": None,
    "num_candidates": 1,
    "give_room_introductions": True,
    "mock_response": False,
}
"""The /chat/streaming/ body the client sends (docs/protocol.md §10.2), without ``text``."""


async def test_send_posts_the_full_body_and_returns_the_reply(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route(
        "POST",
        STREAMING,
        ndjson(
            snapshot("Try"), snapshot("Try the stacks"), snapshot("Try the stacks.", final=True)
        ),
    )
    reply = await api.v1.send(HISTORY, "Any book about tides?")
    assert reply == V1Message(
        id=str(BIG + 99),
        uuid="reply-1",
        text="Try the stacks.",
        src=TGT,
        src_name="Sage",
        reply_to="asked-1",
    )
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", STREAMING)
    assert sent.json == {**BODY_TEMPLATE, "text": "Any book about tides?"}


@pytest.mark.parametrize(
    "primary", ["alt-9", V1Message(id="9", uuid="alt-9")], ids=["uuid", "message"]
)
async def test_send_with_a_primary_alternative(
    service: Service, api: AsyncClient, transport: MockTransport, primary: Any
) -> None:
    service.route("POST", STREAMING, ndjson(snapshot("Ok.", final=True)))
    await api.v1.send(HISTORY, "go on", primary=primary)
    assert wire(transport.sent)[0].json["primary_msg_uuid"] == "alt-9"


async def test_send_is_never_sent_twice(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", STREAMING, json_body({"detail": "unavailable"}, 503))
    with pytest.raises(ServerError):
        await api.v1.send(HISTORY, "hello")
    assert len(transport.sent) == 1


async def test_stream_yields_deltas(service: Service, api: AsyncClient) -> None:
    service.route(
        "POST",
        STREAMING,
        ndjson(
            snapshot("Try"),
            snapshot("Try"),
            snapshot("Try the"),
            snapshot("Try the stacks.", final=True),
        ),
    )
    chunks = [chunk async for chunk in api.v1.stream(HISTORY, "hello")]
    assert [c.delta for c in chunks] == ["Try", " the", " stacks."]
    assert [c.final for c in chunks] == [False, False, True]
    assert "".join(c.delta for c in chunks) == chunks[-1].message.text == "Try the stacks."


async def test_a_stream_without_a_final_marker_ends_with_its_last_snapshot(
    service: Service, api: AsyncClient
) -> None:
    service.route(
        "POST", STREAMING, ndjson(snapshot("Half"), snapshot("Half done"), newline_at_end=False)
    )
    chunks = [chunk async for chunk in api.v1.stream(HISTORY, "hello")]
    assert [(c.delta, c.text, c.final) for c in chunks] == [
        ("Half", "Half", False),
        (" done", "Half done", False),
        ("", "Half done", True),
    ]
    assert (await api.v1.send(HISTORY, "again")).text == "Half done"


async def test_a_rewrite_is_marked(service: Service, api: AsyncClient) -> None:
    service.route("POST", STREAMING, ndjson(snapshot("Hello wor"), snapshot("Hello", final=True)))
    chunks = [chunk async for chunk in api.v1.stream(HISTORY, "hello")]
    assert [(c.delta, c.rewritten) for c in chunks] == [("Hello wor", False), ("", True)]


async def test_lines_after_the_final_one_are_ignored(service: Service, api: AsyncClient) -> None:
    service.route(
        "POST", STREAMING, ndjson(snapshot("Done.", final=True), {"error": "late garbage"})
    )
    assert (await api.v1.send(HISTORY, "hello")).text == "Done."


async def test_a_filtered_reply_streams_its_partial_text_then_raises(
    service: Service, api: AsyncClient
) -> None:
    abort = {
        "abort": True,
        "error": "No eligible candidates",
        "last_user_msg_id": BIG + 98,
        "last_user_msg_uuid": "asked-1",
    }
    service.route("POST", STREAMING, ndjson(snapshot("Some"), snapshot("Some risky"), abort))
    seen: list[str] = []
    with pytest.raises(Filtered, match="No eligible candidates"):
        async for chunk in api.v1.stream(HISTORY, "hello"):
            seen.append(chunk.delta)
    assert seen == ["Some", " risky"]
    with pytest.raises(Filtered):
        await api.v1.send(HISTORY, "hello")


@pytest.mark.parametrize(
    ("line", "error", "match"),
    [
        ({"force_login": True}, LoginRequired, "log in"),
        ({"abort": True}, Filtered, "aborted"),
        ({"error": "model overloaded"}, ServerError, "model overloaded"),
        ({"status": "Error: quota"}, ServerError, "quota"),
    ],
)
async def test_in_band_failures_of_the_stream(
    service: Service, api: AsyncClient, line: dict[str, Any], error: type[Exception], match: str
) -> None:
    service.route("POST", STREAMING, ndjson(line))
    with pytest.raises(error, match=match) as caught:
        await api.v1.send(HISTORY, "hello")
    if isinstance(caught.value, ServerError):
        assert caught.value.status == 200


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Response(200, {}, b""), ProtocolError),
        (Response(200, {}, b"\n\n"), ProtocolError),
        (Response(200, {}, b'{"replies": [{"text": 5}]}\n'), ProtocolError),
        (Response(200, {}, b"not json\n"), ProtocolError),
        (text_body("No Such History", 404), HistoryNotFound),
        (json_body({"status": "NOT_OK", "error": "wrong tgt"}, 400), ServerError),
    ],
)
async def test_broken_streams(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("POST", STREAMING, answer)
    with pytest.raises(error):
        await api.v1.send(HISTORY, "hello")


async def test_a_history_without_tgt_is_resolved_first(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route(
        "POST", CONTINUE, json_body({k: v for k, v in CREATED.items() if k != "messages"})
    )
    service.route("POST", STREAMING, ndjson(snapshot("Hi.", final=True)))
    listed = V1History(external_id=HISTORY_ID, character_id=CHARACTER_ID)
    await api.v1.send(listed, "hello")
    assert urls(transport.sent) == [f"POST {CONTINUE}", f"POST {STREAMING}"]
    resolve, stream = wire(transport.sent)
    assert resolve.json == {
        "character_external_id": CHARACTER_ID,
        "history_external_id": HISTORY_ID,
    }
    assert stream.json["tgt"] == TGT


async def test_a_history_without_character_id_still_sends(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", STREAMING, ndjson(snapshot("Hi.", final=True)))
    await api.v1.send(V1History(external_id=HISTORY_ID, tgt=TGT), "hello")
    assert wire(transport.sent)[0].json["character_external_id"] is None


# ---- regenerate and delete ----------------------------------------------------------------------


def regenerated() -> Response:
    return ndjson(snapshot("Another take.", final=True, uuid="alt-1"))


@pytest.mark.parametrize(
    ("target", "parent"),
    [
        (V1Message(id="1", uuid="asked-1", is_human=True), "asked-1"),
        (V1Message(id="2", uuid="reply-1", reply_to="asked-1"), "asked-1"),
    ],
    ids=["user-message", "reply-with-reply_to"],
)
async def test_regenerate_posts_the_parent_and_no_text(
    service: Service, api: AsyncClient, transport: MockTransport, target: V1Message, parent: str
) -> None:
    service.route("POST", STREAMING, regenerated())
    reply = await api.v1.regenerate(HISTORY, target)
    assert (reply.text, reply.uuid, reply.is_alternative) == ("Another take.", "alt-1", True)
    [sent] = wire(transport.sent)
    assert sent.json == {**BODY_TEMPLATE, "parent_msg_uuid": parent}
    assert "text" not in sent.json


@pytest.mark.parametrize("target", ["uuid-4", V1Message(id="4", uuid="uuid-4")])
async def test_regenerate_finds_the_user_message_in_the_history(
    service: Service, api: AsyncClient, transport: MockTransport, target: Any
) -> None:
    listed = [
        message(1, "old", human=True),
        message(2, "old reply", human=False),
        message(3, "question", human=True),
        message(4, "answer", human=False),
    ]
    service.route("GET", MSGS, json_body({"messages": listed, "has_more": False}))
    service.route("POST", STREAMING, regenerated())
    await api.v1.regenerate(HISTORY, target)
    assert urls(transport.sent) == [f"GET {MSGS}", f"POST {STREAMING}"]
    assert wire(transport.sent)[1].json["parent_msg_uuid"] == "uuid-3"


@pytest.mark.parametrize(
    ("target", "match"),
    [("uuid-404", "not in history"), ("uuid-0", "answers no user message")],
)
async def test_regenerate_of_a_message_it_cannot_place(
    service: Service, api: AsyncClient, transport: MockTransport, target: str, match: str
) -> None:
    listed = [message(0, "greeting", human=False), message(1, "hi", human=True)]
    service.route("GET", MSGS, json_body({"messages": listed, "has_more": False}))
    with pytest.raises(ValidationError, match=match):
        await api.v1.regenerate(HISTORY, target)
    assert urls(transport.sent) == [f"GET {MSGS}"]  # nothing was generated


@pytest.mark.parametrize(
    ("messages", "uuids"),
    [
        ("uuid-1", ["uuid-1"]),
        (V1Message(id="2", uuid="uuid-2"), ["uuid-2"]),
        (["uuid-1", V1Message(id="2", uuid="uuid-2")], ["uuid-1", "uuid-2"]),
    ],
)
async def test_delete(
    service: Service, api: AsyncClient, transport: MockTransport, messages: Any, uuids: list[str]
) -> None:
    url = f"{PLUS}/chat/history/msgs/delete/"
    service.route("POST", url, json_body({"status": "OK"}))
    assert await api.v1.delete(HISTORY, messages) is None
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", url)
    assert sent.json == {"history_id": HISTORY_ID, "uuids_to_delete": uuids, "regenerating": False}


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (text_body("No Such History", 404), HistoryNotFound),
        (not_ok("cannot delete the greeting"), ServerError),
    ],
)
async def test_delete_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("POST", f"{PLUS}/chat/history/msgs/delete/", answer)
    with pytest.raises(error):
        await api.v1.delete("h-1", ["uuid-1"])


# ---- validation before any request --------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.v1.histories(""),
        lambda c: c.v1.histories("a/b"),
        lambda c: c.v1.create(None),
        lambda c: c.v1.continue_(CHARACTER_ID, "bad id"),
        lambda c: c.v1.messages(5),
        lambda c: c.v1.messages(""),
        lambda c: c.v1.send(HISTORY_ID, "hi"),
        lambda c: c.v1.send(HISTORY, ""),
        lambda c: c.v1.send(HISTORY, "lone \udc80"),
        lambda c: c.v1.send(HISTORY, "hi", primary=""),
        lambda c: c.v1.send(V1History(external_id=""), "hi"),
        lambda c: c.v1.send(V1History(external_id=HISTORY_ID), "hi"),
        lambda c: c.v1.send(HISTORY, "hi", timeout=0),
        lambda c: c.v1.regenerate(HISTORY, ""),
        lambda c: c.v1.regenerate(HISTORY, V1Message(id="1", uuid="a b")),
        lambda c: c.v1.regenerate("history", "uuid-1"),
        lambda c: c.v1.delete(HISTORY, []),
        lambda c: c.v1.delete(HISTORY, [5]),
        lambda c: c.v1.delete(None, ["uuid-1"]),
    ],
)
async def test_calls_are_validated_before_sending(
    api: AsyncClient, transport: MockTransport, call: Any
) -> None:
    with pytest.raises(ValidationError):
        await call(api)
    assert transport.sent == []


def test_stream_checks_its_arguments_at_once(api: AsyncClient, transport: MockTransport) -> None:
    with pytest.raises(ValidationError):
        api.v1.stream(HISTORY, "   ")
    with pytest.raises(ValidationError):
        api.v1.stream(HISTORY, "hi", timeout=-1)
    assert transport.sent == []
