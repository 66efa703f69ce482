"""The OpenAI wire format, in memory: request validation, stop strings, chunk bytes."""

from __future__ import annotations

import json

import pytest

from caiclient.bridge import wire


def test_unknown_fields_are_ignored_and_parts_joined() -> None:
    req = wire.parse_request(
        b'{"model":"m","messages":[{"role":"developer","content":"sys"},'
        b'{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"},'
        b'{"type":"text","text":"b"}]},{"role":"tool","content":"x"}],'
        b'"temperature":0.7,"logit_bias":{},"stop":"END","max_tokens":2,'
        b'"metadata":{"conversation_id":"c-1"},"continue_final_message":false}'
    )
    assert [(m.role, m.text) for m in req.messages] == [("system", "sys"), ("user", "a\nb")]
    assert (req.stop, req.max_chars, req.conversation_id) == (("END",), 8, "c-1")
    assert not req.stream and not req.include_usage and not req.continue_flag


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"messages":[]}', "model"),
        (b'{"model":"m","messages":[]}', "messages"),
        (b'{"model":"m","messages":[{"role":"user","content":"x"}],"n":0}', "n"),
        (b'{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}', "max_tokens"),
        (b'{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["", "a"]}', "stop"),
        (b'{"model":"m","messages":[{"role":"user"}]}', "messages[0].content"),
    ],
)
def test_bad_requests_name_the_parameter(body: bytes, param: str) -> None:
    with pytest.raises(wire.WireError) as caught:
        wire.parse_request(body)
    assert caught.value.status == 400 and caught.value.param == param


def test_truncator_holds_back_a_possible_stop_string() -> None:
    cut = wire.Truncator(["<END>"])
    assert cut.feed("Hello <") == "Hello "
    assert cut.feed("EN") == ""
    assert cut.feed("D> more") == ""
    assert (cut.shown, cut.finish) == ("Hello ", "stop")
    cut = wire.Truncator(["<END>"])
    assert cut.feed("a <E") + cut.feed("x") + cut.flush() == "a <Ex"
    limit = wire.Truncator((), max_chars=5)
    assert limit.feed("abc") + limit.feed("defg") == "abcde" and limit.finish == "length"


def test_chunks_share_id_and_created_and_role_comes_first() -> None:
    writer = wire.ChunkWriter("chatcmpl-1", 7, "model/x", include_usage=True)
    events = [writer.role(0), writer.delta(0, 'say "hi"\n'), writer.finish(0, "stop")]
    events.append(writer.usage(wire.usage(3, 2)))
    parsed = [json.loads(e.removeprefix(b"data: ")) for e in events]
    assert all(e.endswith(b"\n\n") for e in events)
    assert {(p["id"], p["created"], p["model"]) for p in parsed} == {("chatcmpl-1", 7, "model/x")}
    assert parsed[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert parsed[1]["choices"][0]["delta"] == {"content": 'say "hi"\n'}
    assert parsed[2]["choices"][0]["finish_reason"] == "stop"
    assert [p["usage"] for p in parsed[:3]] == [None, None, None]
    assert parsed[3] == {**parsed[3], "choices": [], "usage": wire.usage(3, 2)}
    assert wire.PING.startswith(b":") and wire.DONE == b"data: [DONE]\n\n"


def test_error_body_has_the_openai_shape() -> None:
    body = json.loads(wire.error_body("nope", code="model_not_found", param="model"))
    assert body == {
        "error": {
            "message": "nope",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
