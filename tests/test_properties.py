"""Property tests: arbitrary input never escapes the parsers as anything but a typed result."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from caiclient.models import Author, Candidate, Turn, TurnKey
from caiclient.protocol import neo
from caiclient.protocol.stream import ReplyAccumulator

EVENT_TYPES = (
    neo.AddTurn,
    neo.UpdateTurn,
    neo.ChatCreated,
    neo.Ok,
    neo.TurnsRemoved,
    neo.ErrorFrame,
    neo.FilterFrame,
    neo.Keepalive,
    neo.UnknownFrame,
    neo.Malformed,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)
commands = st.sampled_from(
    [
        "add_turn",
        "update_turn",
        "create_chat_response",
        "neo_error",
        "ok",
        "remove_turns_response",
        "filter_user_input",
        "state_update",
    ]
)


@settings(max_examples=300)
@given(st.text() | st.binary())
def test_any_text_parses_to_an_event(data: str | bytes) -> None:
    assert isinstance(neo.parse_frame(data), EVENT_TYPES)


@settings(max_examples=300)
@given(json_values)
def test_any_json_parses_to_an_event(value: Any) -> None:
    assert isinstance(neo.parse_frame(json.dumps(value)), EVENT_TYPES)


@settings(max_examples=300)
@given(
    commands,
    st.dictionaries(
        st.sampled_from(["turn", "chat", "request_id", "comment", "sub_code"]), json_values
    ),
)
def test_known_commands_with_junk_fields_parse_to_an_event(
    command: str, fields: dict[str, Any]
) -> None:
    event = neo.parse_frame(json.dumps({"command": command, **fields}))
    assert isinstance(event, EVENT_TYPES)
    if isinstance(event, (neo.ErrorFrame, neo.FilterFrame)):
        assert neo.error_from_frame(event) is not None


@given(st.lists(st.text(min_size=1), min_size=1, max_size=20))
def test_deltas_concatenate_to_the_final_text(pieces: list[str]) -> None:
    acc = ReplyAccumulator()
    delivered = []
    text = ""
    for index, piece in enumerate(pieces):
        text += piece
        final = index == len(pieces) - 1
        turn = Turn(
            turn_key=TurnKey(chat_id="c", turn_id="t"),
            author=Author(author_id="bot"),
            candidates=[Candidate(candidate_id="k", raw_content=text, is_final=final)],
        )
        chunk = acc.feed(turn)
        if chunk is not None:
            delivered.append(chunk.delta)
    assert "".join(delivered) == text
    assert acc.final
