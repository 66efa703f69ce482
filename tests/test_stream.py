"""Tier 1: ReplyAccumulator turns cumulative frames into deltas."""

from __future__ import annotations

from caiclient import ReplyAccumulator
from caiclient.models import Author, Candidate, Turn, TurnKey


def turn(*candidates: tuple[str, str, bool], primary: str | None = None) -> Turn:
    return Turn(
        turn_key=TurnKey(chat_id="c", turn_id="t"),
        author=Author(author_id="bot", name="Bot"),
        candidates=[Candidate(candidate_id=i, raw_content=t, is_final=f) for i, t, f in candidates],
        primary_candidate_id=primary,
    )


def test_deltas_concatenate_to_the_final_text() -> None:
    acc = ReplyAccumulator()
    texts = ["Hel", "Hello", "Hello", "Hello, wor", "Hello, world!"]
    chunks = [acc.feed(turn(("k", t, i == len(texts) - 1))) for i, t in enumerate(texts)]
    delivered = [c for c in chunks if c is not None]
    assert [c.delta for c in delivered] == ["Hel", "lo", ", wor", "ld!"]
    assert "".join(c.delta for c in delivered) == "Hello, world!"
    assert [c.final for c in delivered] == [False, False, False, True]
    assert acc.final and acc.text == "Hello, world!"
    # Nothing is delivered after the final frame.
    assert acc.feed(turn(("k", "Hello, world! more", True))) is None


def test_final_frame_without_new_text_is_still_delivered() -> None:
    acc = ReplyAccumulator()
    assert acc.feed(turn(("k", "Done", False))) is not None
    last = acc.feed(turn(("k", "Done", True)))
    assert last is not None
    assert (last.delta, last.text, last.final) == ("", "Done", True)


def test_follows_the_pinned_candidate_among_swipes() -> None:
    acc = ReplyAccumulator(candidate_id="new")
    first = acc.feed(turn(("old", "Old reply", True), ("new", "Ne", False), primary="new"))
    assert first is not None and first.delta == "Ne"
    assert acc.feed(turn(("old", "Old reply", True))) is None  # candidate absent: skipped
    last = acc.feed(turn(("old", "Old reply", True), ("new", "New one", True), primary="new"))
    assert last is not None and (last.delta, last.final) == ("w one", True)


def test_resumed_stream_does_not_repeat_delivered_text() -> None:
    acc = ReplyAccumulator(delivered="Hello, wo")
    chunk = acc.feed(turn(("k", "Hello, world!", True)))
    assert chunk is not None and chunk.delta == "rld!"


def test_rewritten_text_is_flagged_not_duplicated() -> None:
    acc = ReplyAccumulator()
    acc.feed(turn(("k", "Something risky and long", False)))
    chunk = acc.feed(turn(("k", "Something safe", True)))
    assert chunk is not None
    assert (chunk.delta, chunk.text, chunk.rewritten, chunk.final) == (
        "",
        "Something safe",
        True,
        True,
    )


def test_update_without_take_builds_no_chunk_and_take_gives_the_rest() -> None:
    acc = ReplyAccumulator()
    assert acc.take() is None  # nothing fed yet
    assert acc.update(turn(("k", "Hel", False))) is True
    assert acc.update(turn(("k", "Hel", False))) is False  # no change
    assert not acc.final
    assert acc.update(turn(("k", "Hello", True))) is True
    assert acc.update(turn(("k", "Hello, ignored", True))) is False  # after the final frame
    chunk = acc.take()
    assert chunk is not None
    assert (chunk.delta, chunk.text, chunk.final) == ("Hello", "Hello", True)
    assert acc.take() is None  # the final chunk is handed out once


def test_adopting_a_turn_with_another_candidate_rewrites_what_differs() -> None:
    acc = ReplyAccumulator()
    first = acc.feed(turn(("k1", "Hello wo", False)))
    assert first is not None and first.delta == "Hello wo"
    # Read back from the history after a drop: the server's candidate has another id.
    acc.adopt(turn(("k2", "Hello world", True)))
    chunk = acc.take()
    assert chunk is not None and acc.final
    assert (chunk.delta, chunk.text, chunk.rewritten) == ("rld", "Hello world", False)
    other = ReplyAccumulator()
    other.feed(turn(("k1", "Hello wo", False)))
    other.adopt(turn(("k2", "Something else", True)))
    rewrite = other.take()
    assert rewrite is not None and (rewrite.delta, rewrite.rewritten) == ("", True)
