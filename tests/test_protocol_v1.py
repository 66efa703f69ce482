"""Tier 1: the Chat V1 protocol core with literal bodies (no loop, no sockets)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caiclient import Endpoints
from caiclient.errors import (
    CharacterNotFound,
    Filtered,
    HistoryNotFound,
    LoginRequired,
    ProtocolError,
    ServerError,
)
from caiclient.models._v1 import V1History
from caiclient.protocol import v1
from caiclient.protocol.v1 import ReplyStream, StreamDecoder, StreamLine

ENDPOINTS = Endpoints.local("http://127.0.0.1:9")
TGT = "internal_id:123456:0b8f6f2e-4b2a-4a4c-9d5e-111111111111"
BIG = 9007199254740993  # 2**53 + 1: beyond a JavaScript double's exact integers

MESSAGE = {
    "id": BIG,
    "uuid": "6f1c9a52-3f3a-4c1e-9d41-1a2b3c4d5e6f",
    "text": "Hello!",
    "src": TGT,
    "tgt": "someone",
    "is_alternative": False,
    "image_rel_path": "",
    "image_prompt_text": "",
    "deleted": None,
    "src__name": "Echo",
    "src__user__username": TGT,
    "src__is_human": False,
    "src__character__avatar_file_name": "echo.webp",
    "src_char": {"participant": {"name": "Echo"}, "avatar_file_name": "echo.webp"},
    "responsible_user__username": "someone",
}


def line(text: str, *, final: bool = False, **extra: Any) -> bytes:
    body = {
        "replies": [{"text": text, "uuid": "r-uuid", "id": BIG + 1}],
        "src_char": {"participant": {"name": "Echo"}, "avatar_file_name": "echo.webp"},
        "is_final_chunk": final,
        "last_user_msg_id": BIG,
        "last_user_msg_uuid": "u-uuid",
        **extra,
    }
    return json.dumps(body, ensure_ascii=False).encode() + b"\n"


# ---- requests ---------------------------------------------------------------------------


def test_streaming_request_carries_history_character_and_tgt() -> None:
    history = V1History(external_id="h1", character_id="c1", tgt=TGT)
    request = v1.streaming(ENDPOINTS, history, text="hi")
    assert request.method == "POST"
    assert request.url == "http://127.0.0.1:9/plus/chat/streaming/"
    assert not request.is_idempotent
    body = request.json
    assert body["history_external_id"] == "h1"
    assert body["character_external_id"] == "c1"
    assert body["tgt"] == TGT
    assert body["text"] == "hi"
    assert body["parent_msg_uuid"] is None


def test_regeneration_request_has_parent_and_no_text() -> None:
    history = V1History(external_id="h1", character_id="c1", tgt=TGT)
    body = v1.streaming(ENDPOINTS, history, parent_msg_uuid="u1").json
    assert body["parent_msg_uuid"] == "u1"
    assert "text" not in body


def test_history_requests() -> None:
    assert v1.create_history(ENDPOINTS, "c").json == {
        "character_external_id": "c",
        "history_external_id": None,
    }
    assert v1.continue_history(ENDPOINTS, "c", "h").json == {
        "character_external_id": "c",
        "history_external_id": "h",
    }
    assert v1.histories(ENDPOINTS, "c").json == {"external_id": "c", "number": 50}
    page = v1.messages_page(ENDPOINTS, "h", 3)
    assert page.method == "GET"
    assert page.params == {"history_external_id": "h", "page_num": "3"}
    assert v1.messages_page(ENDPOINTS, "h").params == {"history_external_id": "h"}
    assert v1.delete_messages(ENDPOINTS, "h", ["a"]).json == {
        "history_id": "h",
        "uuids_to_delete": ["a"],
        "regenerating": False,
    }


# ---- parsers ----------------------------------------------------------------------------


def test_parse_history_takes_tgt_from_the_character_participant() -> None:
    body = {
        "title": "t",
        "participants": [
            {"user": {"username": "me", "id": 5}, "is_human": True, "name": "Me"},
            {"user": {"username": TGT, "id": 6}, "is_human": False, "name": "Echo"},
        ],
        "external_id": "h1",
        "created": "2024-05-01T12:34:56.117205Z",
        "last_interaction": "2024-05-01T12:34:56.117205Z",
        "status": "OK",
        "messages": [MESSAGE],
    }
    history = v1.parse_history(json.dumps(body).encode(), "c1")
    assert history.tgt == TGT
    assert history.character_name == "Echo"
    assert history.character_id == "c1"
    assert history.created is not None and history.created.microsecond == 117205
    [message] = history.messages
    assert message.id == str(BIG)  # Exact: no float rounding.
    assert message.src_name == "Echo"
    assert not message.is_human
    assert not message.deleted


def test_parse_histories_derives_tgt_from_messages() -> None:
    human = {**MESSAGE, "src": "me", "tgt": TGT, "src__is_human": True, "uuid": "x"}
    body = {"histories": [{"external_id": "h", "msgs": [human, MESSAGE]}]}
    [history] = v1.parse_histories(json.dumps(body).encode(), "c1")
    assert history.tgt == TGT
    assert history.character_name == "Echo"
    assert [m.is_human for m in history.messages] == [True, False]


def test_parse_messages_page() -> None:
    body = {"messages": [MESSAGE], "next_page": 2, "has_more": True}
    messages, next_page, has_more = v1.parse_messages_page(json.dumps(body).encode())
    assert [m.uuid for m in messages] == [MESSAGE["uuid"]]
    assert (next_page, has_more) == (2, True)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"there is no history between user and character", HistoryNotFound),
        (b"No Such History", HistoryNotFound),
        (b"no character found for abc", CharacterNotFound),
        (b"<html>oops</html>", ProtocolError),
        (b'{"status": "NOT_OK", "error": "bad"}', ServerError),
        (b'{"error": "bad"}', ServerError),
    ],
)
def test_plain_text_and_envelope_errors_on_200(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        v1.parse_history(body, "c")


def test_parse_delete_accepts_ok() -> None:
    v1.parse_delete(b'{"status": "OK"}')
    with pytest.raises(ServerError):
        v1.parse_delete(b'{"status": "NOT_OK", "error": "nope"}')


# ---- the stream decoder -----------------------------------------------------------------


def test_decoder_handles_lines_split_anywhere() -> None:
    decoder = StreamDecoder()
    data = line("héllo") + line("héllo wörld", final=True)
    lines: list[StreamLine] = []
    for i in range(len(data)):
        lines += decoder.feed(data[i : i + 1])
    assert decoder.close() == []
    assert [ln.replies[0].text for ln in lines if ln.replies] == ["héllo", "héllo wörld"]


def test_decoder_returns_a_last_line_without_newline_on_close() -> None:
    decoder = StreamDecoder()
    assert decoder.feed(line("a").rstrip(b"\n")) == []
    [last] = decoder.close()
    assert last.replies is not None and last.replies[0].text == "a"


def test_decoder_skips_blank_and_crlf_lines() -> None:
    decoder = StreamDecoder()
    lines = decoder.feed(b"\r\n\n" + line("a").replace(b"\n", b"\r\n"))
    assert len(lines) == 1


def test_decoder_rejects_garbage() -> None:
    with pytest.raises(ProtocolError):
        StreamDecoder().feed(b"{not json}\n")


texts = st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=6)


@given(texts=texts, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=40))
def test_decoder_is_independent_of_chunking(texts: list[str], cuts: list[int]) -> None:
    cumulative = ["".join(texts[: i + 1]) for i in range(len(texts))]
    data = b"".join(line(t, final=i == len(texts) - 1) for i, t in enumerate(cumulative))
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    decoder = StreamDecoder()
    lines: list[StreamLine] = []
    for start, end in itertools.pairwise(bounds):
        lines += decoder.feed(data[start:end])
    lines += decoder.close()
    assert [ln.replies[0].text for ln in lines if ln.replies] == cumulative
    stream = ReplyStream()
    deltas = [c.delta for ln in lines if (c := stream.feed(ln)) is not None]
    assert "".join(deltas) == cumulative[-1]
    assert stream.final


# ---- the reply stream -------------------------------------------------------------------


def decode_lines(*raw: bytes) -> list[StreamLine]:
    decoder = StreamDecoder()
    return decoder.feed(b"".join(raw)) + decoder.close()


def test_reply_stream_yields_deltas_and_a_final_message() -> None:
    stream = ReplyStream(src=TGT)
    chunks = [stream.feed(ln) for ln in decode_lines(line("Hel"), line("Hello", final=True))]
    assert [c.delta for c in chunks if c] == ["Hel", "lo"]
    final = chunks[-1]
    assert final is not None and final.final
    assert final.message.id == str(BIG + 1)
    assert final.message.reply_to == "u-uuid"
    assert final.message.src == TGT
    assert final.message.src_name == "Echo"
    assert stream.end() is None


def test_reply_stream_marks_rewrites() -> None:
    stream = ReplyStream()
    _first, second = (stream.feed(ln) for ln in decode_lines(line("Hello"), line("Bye")))
    assert second is not None and second.rewritten and second.delta == ""
    assert second.text == "Bye"


def test_reply_stream_without_final_flag_ends_on_the_last_snapshot() -> None:
    stream = ReplyStream()
    for ln in decode_lines(line("Hel"), line("Hello")):
        stream.feed(ln)
    end = stream.end()
    assert end is not None and end.final and end.text == "Hello" and end.delta == ""


def test_reply_stream_with_nothing_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        ReplyStream().end()


def test_force_login_is_login_required() -> None:
    [ln] = decode_lines(b'{"force_login": true}\n')
    with pytest.raises(LoginRequired):
        ReplyStream().feed(ln)


def test_abort_after_partial_chunks_is_filtered() -> None:
    abort = {
        "abort": True,
        "error": "No eligible candidates",
        "last_user_msg_id": BIG,
        "last_user_msg_uuid": "u",
    }
    lines = decode_lines(line("Part"), json.dumps(abort).encode() + b"\n")
    stream = ReplyStream()
    assert stream.feed(lines[0]) is not None
    with pytest.raises(Filtered, match="No eligible candidates"):
        stream.feed(lines[1])


@pytest.mark.parametrize("raw", [b'{"error": "boom"}\n', b'{"status": "Error: busy"}\n'])
def test_error_lines_are_server_errors(raw: bytes) -> None:
    [ln] = decode_lines(raw)
    with pytest.raises(ServerError):
        ReplyStream().feed(ln)
