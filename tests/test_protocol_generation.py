"""Tier 1: the rules of every chat-socket exchange, fed with literal frames (no loop, no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from caiclient import (
    CharacterNotFound,
    ChatNotFound,
    DuplicateRequest,
    Filtered,
    ProtocolError,
    RateLimited,
    Turn,
)
from caiclient.protocol import neo
from caiclient.protocol.generation import (
    Acknowledged,
    CreateChat,
    Located,
    Reply,
    Step,
    TurnAdded,
    TurnChange,
    locate_reply,
)

CHAT = "chat-1"


def candidate(cid: str, text: str, final: bool | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"candidate_id": cid, "raw_content": text}
    if final is not None:  # the key is absent on non-final chunks (§8.4)
        c["is_final"] = final
    return c


def turn_json(
    turn_id: str, *candidates: dict[str, Any], human: bool = False, primary: str | None = None
) -> dict[str, Any]:
    author: dict[str, Any] = {"author_id": "58584831" if human else "char", "name": "x"}
    if human:
        author["is_human"] = True
    return {
        "turn_key": {"chat_id": CHAT, "turn_id": turn_id},
        "author": author,
        "candidates": list(candidates),
        "primary_candidate_id": primary or candidates[0]["candidate_id"],
    }


def frame(command: str, request_id: str = "r", **fields: Any) -> neo.Event:
    return neo.parse_frame(json.dumps({"command": command, "request_id": request_id, **fields}))


def turn_frame(command: str, turn: dict[str, Any]) -> neo.Event:
    return frame(command, turn=turn)


def turn_model(turn: dict[str, Any]) -> Turn:
    event = turn_frame("add_turn", turn)
    assert isinstance(event, neo.AddTurn)
    return event.turn


# --- a reply to our message ---------------------------------------------------------------------


def test_reply_skips_our_echo_and_streams_the_characters_turn() -> None:
    reply = Reply(own_turn_id="mine")
    echo = turn_json("mine", candidate("k0", "hello", True), human=True)
    assert reply.handle(turn_frame("add_turn", echo)) is Step.SKIP
    assert not reply.started
    assert (
        reply.handle(turn_frame("add_turn", turn_json("bot", candidate("k", "Hi"))))
        is Step.PROGRESS
    )
    first = reply.take()
    assert first is not None and (first.delta, first.final) == ("Hi", False)
    assert (
        reply.handle(turn_frame("update_turn", turn_json("bot", candidate("k", "Hi")))) is Step.SKIP
    )
    last = turn_frame("update_turn", turn_json("bot", candidate("k", "Hi there", True)))
    assert reply.handle(last) is Step.DONE
    chunk = reply.take()
    assert chunk is not None and (chunk.delta, chunk.text, chunk.final) == (
        " there",
        "Hi there",
        True,
    )
    assert reply.result is not None and reply.result.text == "Hi there"


def test_echo_is_recognised_by_turn_id_even_without_is_human() -> None:
    # Our own message's echo must not be taken for the reply, whatever is_human says.
    reply = Reply(own_turn_id="mine")
    echo = turn_json("mine", candidate("k0", "hello", True))  # no is_human at all
    assert reply.handle(turn_frame("add_turn", echo)) is Step.SKIP
    assert reply.result is None and not reply.done


def test_frames_after_the_final_one_change_nothing() -> None:
    reply = Reply(own_turn_id="mine")
    done = turn_frame("update_turn", turn_json("bot", candidate("k", "Done", True)))
    assert reply.handle(done) is Step.DONE
    later = turn_frame("update_turn", turn_json("bot", candidate("k", "Done and more", True)))
    assert reply.handle(later) is Step.SKIP
    assert reply.handle(frame("neo_error", comment="late error")) is Step.SKIP
    assert reply.result is not None and reply.result.text == "Done"


def test_text_shortened_by_the_server_is_a_rewrite_not_a_duplicate() -> None:
    reply = Reply(own_turn_id="mine")
    reply.handle(turn_frame("add_turn", turn_json("bot", candidate("k", "Something risky"))))
    reply.take()
    short = turn_frame("update_turn", turn_json("bot", candidate("k", "Something", True)))
    assert reply.handle(short) is Step.DONE
    chunk = reply.take()
    assert chunk is not None
    assert (chunk.delta, chunk.text, chunk.rewritten) == ("", "Something", True)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"command": "neo_error", "comment": "Self harm message detected", "sub_code": 101},
            Filtered,
        ),
        ({"command": "neo_error", "comment": "slow", "retry_after_seconds": 4}, RateLimited),
        (
            {"command": "neo_error", "comment": "create_and_generate_turn already exists"},
            DuplicateRequest,
        ),
        ({"command": "neo_error", "comment": "Chat not found", "error_code": 404}, ChatNotFound),
        ({"command": "filter_user_input_self_harm", "comment": ""}, Filtered),
        ({"command": "update_turn", "turn": 7}, ProtocolError),
    ],
)
def test_error_frames_fail_with_the_typed_error(
    fields: dict[str, Any], error: type[Exception]
) -> None:
    reply = Reply(own_turn_id="mine")
    event = neo.parse_frame(json.dumps({"request_id": "r", **fields}))
    assert reply.handle(event) is Step.FAIL
    assert type(reply.error) is error
    # A failure is the policy's to decide on: the exchange is not over by itself.
    assert not reply.done


def test_other_events_are_nothing_for_the_reply() -> None:
    reply = Reply(own_turn_id="mine")
    for event in (
        frame("ok"),
        frame("remove_turns_response"),
        frame("state_update"),
        neo.Keepalive(),
    ):
        assert reply.handle(event) is Step.SKIP


def test_a_reply_recovered_from_the_history_ends_the_exchange() -> None:
    reply = Reply(own_turn_id="mine")
    reply.handle(turn_frame("add_turn", turn_json("bot", candidate("k", "Hel"))))
    reply.take()
    # Read back after a drop: the server's final candidate carries another id.
    assert (
        reply.recovered(turn_model(turn_json("bot", candidate("k2", "Hello", True)))) is Step.DONE
    )
    chunk = reply.take()
    assert chunk is not None and (chunk.delta, chunk.final) == ("lo", True)
    assert reply.done and reply.result is not None and reply.result.text == "Hello"


# --- a regeneration ("swipe") -----------------------------------------------------------------


def _base() -> Turn:
    return turn_model(turn_json("bot", candidate("old", "Old reply", True)))


def test_regeneration_locks_onto_the_new_candidate_among_the_old_ones() -> None:
    reply = Reply(base=_base())
    assert not reply.recoverable
    other_turn = turn_frame("update_turn", turn_json("elsewhere", candidate("x", "no")))
    assert reply.handle(other_turn) is Step.SKIP
    # Frames may carry the older candidates too (§15.7): follow the one we did not know.
    both = turn_json(
        "bot", candidate("old", "Old reply", True), candidate("new", "Ne"), primary="new"
    )
    assert reply.handle(turn_frame("update_turn", both)) is Step.PROGRESS
    only_old = turn_json("bot", candidate("old", "Old reply", True))
    assert reply.handle(turn_frame("update_turn", only_old)) is Step.SKIP
    final = turn_json("bot", candidate("new", "New one", True), primary="new")
    assert reply.handle(turn_frame("update_turn", final)) is Step.DONE
    result = reply.result
    assert result is not None and result.text == "New one"
    # The result keeps the candidates the turn already had.
    assert [c.candidate_id for c in result.candidates] == ["new", "old"]
    chunk = reply.take()
    assert chunk is not None and chunk.turn == result


def test_regeneration_frames_with_only_the_new_candidate() -> None:
    reply = Reply(base=_base())
    reply.handle(turn_frame("update_turn", turn_json("bot", candidate("new", "A"))))
    assert (
        reply.handle(turn_frame("update_turn", turn_json("bot", candidate("new", "AB", True))))
        is Step.DONE
    )
    assert reply.result is not None and reply.result.text == "AB"


def test_a_reply_takes_at_most_one_of_its_two_anchors() -> None:
    with pytest.raises(ValueError, match="at most one"):
        Reply(own_turn_id="a", base=_base())


def test_a_new_character_turn_follows_the_first_character_turn_only() -> None:
    reply = Reply()
    assert not reply.recoverable  # nothing known yet to look for in the history
    user = turn_json("u", candidate("ku", "hi all", True), human=True)
    assert reply.handle(turn_frame("add_turn", user)) is Step.SKIP
    assert (
        reply.handle(turn_frame("add_turn", turn_json("c1", candidate("k", "Hel"))))
        is Step.PROGRESS
    )
    assert reply.recoverable and reply.reply_turn_id == "c1"
    other = turn_json("c2", candidate("x", "someone else", True))
    assert reply.handle(turn_frame("add_turn", other)) is Step.SKIP
    done = turn_frame("update_turn", turn_json("c1", candidate("k", "Hello", True)))
    assert reply.handle(done) is Step.DONE
    assert reply.result is not None and reply.result.turn_id == "c1"


def test_turn_added_waits_for_the_push_of_our_turn() -> None:
    added = TurnAdded("mine")
    other = turn_json("theirs", candidate("k", "x", True), human=True)
    assert added.handle(turn_frame("add_turn", other)) is Step.SKIP
    ours = turn_json("mine", candidate("k", "hello", True), human=True)
    assert added.handle(turn_frame("add_turn", ours)) is Step.DONE
    assert added.result is not None and added.result.text == "hello"


# --- creating a chat, editing, pinning, selecting --------------------------------------------


CHAT_JSON = {"chat_id": CHAT, "character_id": "char", "creator_id": "1"}


def test_create_chat_with_and_without_greeting() -> None:
    plain = CreateChat(with_greeting=False)
    assert plain.handle(frame("create_chat_response", chat=CHAT_JSON)) is Step.DONE
    assert plain.result is not None and plain.result[1] is None

    greeted = CreateChat(with_greeting=True)
    greeting = turn_frame("add_turn", turn_json("g", candidate("k", "Welcome!", True)))
    assert greeted.handle(greeting) is Step.SKIP  # no greeting before the chat exists
    assert greeted.handle(frame("create_chat_response", chat=CHAT_JSON)) is Step.PROGRESS
    assert greeted.handle(greeting) is Step.DONE
    assert greeted.result is not None and greeted.result[1] is not None
    assert greeted.result[0].chat_id == CHAT and greeted.result[1].text == "Welcome!"


def test_create_chat_not_found_is_about_the_character() -> None:
    exchange = CreateChat(with_greeting=True)
    assert (
        exchange.handle(frame("neo_error", comment="Chat not found", error_code=404)) is Step.FAIL
    )
    assert type(exchange.error) is CharacterNotFound
    duplicate = CreateChat(with_greeting=True)
    duplicate.handle(frame("neo_error", comment="create_chat already exists"))
    assert type(duplicate.error) is DuplicateRequest


def test_turn_change_takes_the_update_of_its_turn_and_keeps_known_candidates() -> None:
    known = turn_model(
        turn_json("bot", candidate("a", "first", True), candidate("b", "second", True))
    )
    change = TurnChange(known)
    assert (
        change.handle(turn_frame("update_turn", turn_json("other", candidate("z", "x", True))))
        is Step.SKIP
    )
    assert (
        change.handle(turn_frame("add_turn", turn_json("bot", candidate("e", "x", True))))
        is Step.SKIP
    )
    edited = turn_json("bot", candidate("e", "edited", True), primary="e")
    assert change.handle(turn_frame("update_turn", edited)) is Step.DONE
    assert change.result is not None
    assert [c.candidate_id for c in change.result.candidates] == ["e", "a", "b"]
    assert change.result.text == "edited"


def test_selection_waits_for_ok() -> None:
    select = Acknowledged()
    assert (
        select.handle(turn_frame("update_turn", turn_json("bot", candidate("a", "x", True))))
        is Step.SKIP
    )
    assert select.handle(frame("ok")) is Step.DONE and select.result is True


# --- finding a reply in the history after a drop -----------------------------------------------


def test_locate_reply() -> None:
    mine = turn_model(turn_json("mine", candidate("m", "hi", True), human=True))
    done = turn_model(turn_json("bot", candidate("k", "Hello", True)))
    partial = turn_model(turn_json("bot", candidate("k", "Hel")))
    older = turn_model(turn_json("older", candidate("o", "before", True), human=True))
    # Pages are newest first.
    assert locate_reply([done, mine, older], "mine") == (Located.REPLIED, done)
    assert locate_reply([partial, mine, older], "mine") == (Located.PENDING, None)
    assert locate_reply([mine, older], "mine") == (Located.PENDING, None)
    assert locate_reply([older], "mine") == (Located.NOT_RECEIVED, None)
    # Another user turn after ours is not a reply to it.
    other = turn_model(turn_json("later", candidate("l", "more", True), human=True))
    assert locate_reply([other, mine], "mine") == (Located.PENDING, None)
