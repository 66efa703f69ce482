"""``client.chats`` against the emulator: every public call, its main error, and argument
checks that fail before any I/O."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from caiclient import (
    AsyncClient,
    Author,
    Candidate,
    CharacterNotFound,
    Chat,
    ChatNotFound,
    Endpoints,
    Filtered,
    NotFound,
    RateLimited,
    ServerError,
    Turn,
    TurnKey,
    TurnNotFound,
    ValidationError,
)
from caiclient.emulator import Emulator
from caiclient.emulator.chat import CHAT as CHAT_STORE


def ghost_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def offline() -> AsyncIterator[AsyncClient]:
    """A client whose every request would fail to connect: a ValidationError from it
    proves that nothing was sent."""
    async with AsyncClient("f" * 40, endpoints=Endpoints.local("http://127.0.0.1:9")) as c:
        yield c


def fake_turn(*, human: bool = False, chat_id: str | None = None, text: str | None = "x") -> Turn:
    """A turn the server does not have (with one candidate unless ``text`` is None)."""
    key = TurnKey(chat_id=chat_id or ghost_id(), turn_id=ghost_id())
    author = Author(author_id="1" if human else "A" * 43, name="x", is_human=human)
    candidates = [] if text is None else [Candidate(candidate_id=ghost_id(), raw_content=text)]
    return Turn(turn_key=key, author=author, candidates=candidates)


async def chat_with_reply(
    emu: Emulator, client: AsyncClient, name: str = "Echo", text: str = "hello"
) -> tuple[Chat, Turn]:
    chat, _ = await client.chats.create(emu.character(name).id)
    return chat, await client.chats.send(chat, text)


# ---- chats ----------------------------------------------------------------------------------


async def test_get(emu: Emulator, client: AsyncClient) -> None:
    chat, _ = await client.chats.create(emu.character("Sage").id)
    got = await client.chats.get(chat.chat_id)
    assert (got.chat_id, got.character_id, got.creator_id) == (
        chat.chat_id,
        chat.character_id,
        emu.user_id,
    )
    assert not got.is_archived
    with pytest.raises(ChatNotFound):
        await client.chats.get(ghost_id())


async def test_foreign_chat_reads_as_missing(emu: Emulator, client: AsyncClient) -> None:
    other = emu.store.add_user("someone")
    async with AsyncClient(other.token, endpoints=Endpoints.local(emu.url)) as theirs:
        chat, greeting = await theirs.chats.create(emu.character("Echo").id)
    assert greeting is not None
    with pytest.raises(ChatNotFound):
        await client.chats.get(chat.chat_id)
    with pytest.raises(ChatNotFound):
        await client.chats.pin(greeting)
    with pytest.raises(ChatNotFound):
        await client.chats.delete(chat, greeting)


async def test_list_is_newest_first_and_includes_archived(
    emu: Emulator, client: AsyncClient
) -> None:
    echo = emu.character("Echo")
    first, _ = await client.chats.create(echo.id)
    second, _ = await client.chats.create(echo.id, greeting=False)
    await client.chats.create(emu.character("Sage").id)
    await client.chats.archive(second)
    chats = await client.chats.list(echo.id)
    assert [c.chat_id for c in chats] == [second.chat_id, first.chat_id]
    assert chats[0].is_archived
    assert await client.chats.list(emu.character("Nova").id) == []


async def test_open_reuses_the_latest_chat_or_creates_one(
    emu: Emulator, client: AsyncClient
) -> None:
    nova = emu.character("Nova")
    opened = await client.chats.open(nova.id)
    history = await client.chats.history(opened)
    assert [t.text for t in history] == [nova.greeting]
    assert (await client.chats.open(nova.id)).chat_id == opened.chat_id
    await client.chats.archive(opened)
    fresh = await client.chats.open(nova.id)
    assert fresh.chat_id != opened.chat_id
    with pytest.raises(CharacterNotFound):
        await client.chats.open("B" * 43)


async def test_rename(emu: Emulator, client: AsyncClient) -> None:
    chat, _ = await client.chats.create(emu.character("Echo").id, greeting=False)
    renamed = await client.chats.rename(chat, "Morning talk")
    assert renamed.name == "Morning talk"
    assert (await client.chats.get(chat.chat_id)).name == "Morning talk"
    assert (await client.chats.rename(chat.chat_id, "Evening talk")).name == "Evening talk"
    with pytest.raises(ChatNotFound):
        await client.chats.rename(ghost_id(), "x")


async def test_archive_and_unarchive(emu: Emulator, client: AsyncClient) -> None:
    echo = emu.character("Echo")
    chat, _ = await client.chats.create(echo.id)
    archived = await client.chats.archive(chat)
    assert archived.is_archived and archived.state == "STATE_ARCHIVED"
    assert (await client.chats.archive(chat)).is_archived  # harmless twice
    assert await client.chats.recent(echo.id) == []
    with pytest.raises(ServerError, match="archived"):
        await client.chats.send(chat, "anyone?")
    restored = await client.chats.unarchive(chat.chat_id)
    assert restored.state == "STATE_ACTIVE"
    assert [c.chat_id for c in await client.chats.recent(echo.id)] == [chat.chat_id]
    assert (await client.chats.send(chat, "back")).text.startswith("back")
    with pytest.raises(ChatNotFound):
        await client.chats.archive(ghost_id())
    with pytest.raises(ChatNotFound):
        await client.chats.unarchive(ghost_id())


async def test_copy(emu: Emulator, client: AsyncClient) -> None:
    chat, first = await chat_with_reply(emu, client, text="one")
    await client.chats.send(chat, "two")
    copy = await client.chats.copy(chat, up_to=first)
    assert copy.chat_id != chat.chat_id and copy.character_id == chat.character_id
    original = await client.chats.history(chat)
    copied = await client.chats.history(copy)
    assert [t.turn_id for t in copied] == [t.turn_id for t in original[:3]]
    assert [t.text for t in copied] == [t.text for t in original[:3]]
    by_id = await client.chats.copy(chat.chat_id, up_to=original[0].turn_id)
    assert len(await client.chats.history(by_id)) == 1
    with pytest.raises(TurnNotFound):
        await client.chats.copy(chat, up_to=ghost_id())
    with pytest.raises(ChatNotFound):
        await client.chats.copy(ghost_id(), up_to=ghost_id())


async def test_set_model(emu: Emulator, client: AsyncClient) -> None:
    chat, _ = await client.chats.create(emu.character("Sage").id, greeting=False)
    updated = await client.chats.set_model(chat, "MODEL_TYPE_FAST")
    assert updated.preferred_model_type == "MODEL_TYPE_FAST"
    reply = await client.chats.send(chat, "quick one")
    assert reply.primary is not None and reply.primary.model_type == "MODEL_TYPE_FAST"
    with pytest.raises(ChatNotFound):
        await client.chats.set_model(ghost_id(), "MODEL_TYPE_SMART")


# ---- swipes, edits, selection ---------------------------------------------------------------


async def test_regenerate(emu: Emulator, client: AsyncClient) -> None:
    chat, reply = await chat_with_reply(emu, client, "Captain Byte", "Where to?")
    swiped = await client.chats.regenerate(reply)
    assert swiped.turn_id == reply.turn_id
    assert swiped.text and swiped.text != reply.text
    assert swiped.is_final
    assert swiped.primary_candidate_id == swiped.candidates[0].candidate_id
    assert [c.candidate_id for c in swiped.candidates[1:]] == [reply.primary_candidate_id]
    again = await client.chats.regenerate(swiped)
    assert len(again.candidates) == 3 and len({c.text for c in again.candidates}) == 3
    history = await client.chats.history(chat, all_candidates=True)
    assert [c.candidate_id for c in history[-1].candidates] == [
        c.candidate_id for c in again.candidates
    ]
    assert (await client.chats.history(chat))[-1].text == again.text
    with pytest.raises(TurnNotFound):
        await client.chats.regenerate(fake_turn(chat_id=chat.chat_id))
    with pytest.raises(ChatNotFound):
        await client.chats.regenerate(fake_turn())


async def test_stream_regenerate(emu: Emulator, client: AsyncClient) -> None:
    chat, reply = await chat_with_reply(emu, client, "Nova", "Which star is closest?")
    chunks = [c async for c in client.chats.stream_regenerate(reply)]
    assert len(chunks) == 5 and [c.final for c in chunks] == [False] * 4 + [True]
    text = "".join(c.delta for c in chunks)
    assert text == chunks[-1].text == chunks[-1].turn.text != reply.text
    assert len(chunks[-1].turn.candidates) == 2
    assert (await client.chats.history(chat))[-1].text == text
    with pytest.raises(TurnNotFound):
        async for _ in client.chats.stream_regenerate(fake_turn(chat_id=chat.chat_id)):
            pass


async def test_select(emu: Emulator, client: AsyncClient) -> None:
    chat, reply = await chat_with_reply(emu, client, "Sage")
    swiped = await client.chats.regenerate(reply)
    old = swiped.candidates[1]
    assert await client.chats.select(swiped, old) is None
    assert (await client.chats.history(chat))[-1].text == reply.text
    await client.chats.select(swiped, swiped.candidates[0].candidate_id)
    assert (await client.chats.history(chat))[-1].text == swiped.text
    with pytest.raises(TurnNotFound):
        await client.chats.select(swiped, ghost_id())


async def test_edit(emu: Emulator, client: AsyncClient) -> None:
    chat, reply = await chat_with_reply(emu, client)
    edited = await client.chats.edit(reply, "An edited reply.")
    assert edited.text == "An edited reply." and edited.is_final
    new = edited.candidates[0]
    assert new.base_candidate_id == reply.primary_candidate_id
    assert new.editor is not None and new.editor.author_id == emu.user_id
    assert [c.candidate_id for c in edited.candidates[1:]] == [reply.primary_candidate_id]
    human = (await client.chats.history(chat))[-2]
    assert human.is_human
    fixed = await client.chats.edit(human, "hello, corrected")
    assert fixed.is_human and fixed.text == "hello, corrected"
    assert [t.text for t in (await client.chats.history(chat))[-2:]] == [
        "hello, corrected",
        "An edited reply.",
    ]
    with pytest.raises(Filtered):
        await client.chats.edit(human, "[[self-harm]]")
    with pytest.raises(TurnNotFound):
        await client.chats.edit(fake_turn(chat_id=chat.chat_id), "x")


# ---- pins, deletion, ratings ----------------------------------------------------------------


async def test_pin_and_unpin(emu: Emulator, client: AsyncClient) -> None:
    chat, reply = await chat_with_reply(emu, client)
    pinned = await client.chats.pin(reply)
    assert pinned.is_pinned and pinned.turn_id == reply.turn_id and pinned.text == reply.text
    assert [t.turn_id for t in await client.chats.history(chat, pinned_only=True)] == [
        reply.turn_id
    ]
    unpinned = await client.chats.unpin(pinned)
    assert not unpinned.is_pinned
    assert await client.chats.history(chat, pinned_only=True) == []
    with pytest.raises(TurnNotFound):
        await client.chats.pin(fake_turn(chat_id=chat.chat_id))


async def test_delete(emu: Emulator, client: AsyncClient) -> None:
    chat, reply = await chat_with_reply(emu, client, text="first")
    await client.chats.send(chat, "second")
    history = await client.chats.history(chat)
    assert len(history) == 5
    await client.chats.delete(chat, reply)
    await client.chats.delete(chat.chat_id, history[1].turn_id)
    await client.chats.delete(chat, [history[3], history[4].turn_id, ghost_id()])
    assert [t.turn_id for t in await client.chats.history(chat)] == [history[0].turn_id]
    with pytest.raises(ChatNotFound):
        await client.chats.delete(ghost_id(), ghost_id())


async def test_turn_of_another_chat_is_refused(emu: Emulator, client: AsyncClient) -> None:
    chat, reply = await chat_with_reply(emu, client)
    other, _ = await client.chats.create(emu.character("Echo").id, greeting=False)
    with pytest.raises(ValidationError, match="belongs to chat"):
        await client.chats.delete(other, [reply])
    with pytest.raises(ValidationError, match="belongs to chat"):
        await client.chats.copy(other, up_to=reply)
    assert len(await client.chats.history(chat)) == 3  # nothing was deleted


async def test_rate_and_unrate(emu: Emulator, client: AsyncClient) -> None:
    _, reply = await chat_with_reply(emu, client)
    star = await client.chats.rate(reply, stars=4)
    funny = await client.chats.rate(reply, reply.primary, label="funny")
    assert star != funny
    uuid.UUID(star)
    assert len(emu.app[CHAT_STORE].annotations) == 2
    await client.chats.unrate(reply, star)
    assert set(emu.app[CHAT_STORE].annotations) == {funny}
    with pytest.raises(NotFound):
        await client.chats.unrate(reply, star)
    with pytest.raises(TurnNotFound):
        await client.chats.rate(reply, ghost_id(), stars=1)
    with pytest.raises(ChatNotFound):
        await client.chats.rate(fake_turn(), ghost_id(), stars=1)


# ---- history --------------------------------------------------------------------------------


async def test_iter_history_pages_newest_first(emu: Emulator, client: AsyncClient) -> None:
    emu.chunks = 2
    chat, greeting = await client.chats.create(emu.character("Echo").id)
    for i in range(30):
        await client.chats.send(chat, f"message {i}")
    pages = [page async for page in client.chats.iter_history(chat)]
    assert [len(p) for p in pages] == [50, 11]
    assert pages[0][1].text == "message 29" and pages[0][1].is_human
    assert greeting is not None and pages[-1][-1].turn_id == greeting.turn_id
    flat = [t for page in pages for t in page]
    assert [t.turn_id for t in reversed(flat)] == [
        t.turn_id for t in await client.chats.history(chat)
    ]
    with pytest.raises(ChatNotFound):
        async for _ in client.chats.iter_history(ghost_id()):
            pass


# ---- server-side refusals -------------------------------------------------------------------


async def test_filters_and_rate_limits(emu: Emulator, client: AsyncClient) -> None:
    chat, _ = await client.chats.create(emu.character("Sage").id, greeting=False)
    with pytest.raises(Filtered) as filtered:
        await client.chats.send(chat, "please [[self-harm]]")
    assert filtered.value.sub_code == 101
    assert await client.chats.history(chat) == []
    truncated = await client.chats.send(chat, "say [[unsafe-reply]]")
    assert truncated.primary is not None and truncated.primary.safety_truncated
    emu.rate_limit(generations=0, per=60)
    with pytest.raises(RateLimited) as limited:
        await client.chats.regenerate(truncated)
    assert limited.value.retry_after is not None and limited.value.retry_after >= 1
    emu.rate_limit(requests=0, per=60)
    with pytest.raises(RateLimited):
        await client.chats.get(chat.chat_id, timeout=2)


# ---- argument checks before any I/O ---------------------------------------------------------

CHAT = Chat(chat_id="00000000-0000-4000-8000-000000000000", character_id="A" * 43)
TURN = fake_turn(chat_id=CHAT.chat_id)
BARE = fake_turn(chat_id=CHAT.chat_id, text=None)
HUMAN = fake_turn(human=True, chat_id=CHAT.chat_id)
ELSEWHERE = fake_turn()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.chats.get("bad/id"), "chat_id"),
        (lambda c: c.chats.get(42), "chat_id"),
        (lambda c: c.chats.list("a b"), "character_id"),
        (lambda c: c.chats.open(None), "character_id"),
        (lambda c: c.chats.regenerate(HUMAN), "only character turns"),
        (lambda c: c.chats.regenerate("turn-id"), "must be a Turn"),
        (lambda c: c.chats.regenerate(TURN, timeout=0), "timeout"),
        (lambda c: c.chats.select(TURN, "bad id"), "candidate"),
        (lambda c: c.chats.select(TURN, None), "candidate is required"),
        (lambda c: c.chats.edit(TURN, "   "), "empty"),
        (lambda c: c.chats.edit(BARE, "text"), "no candidate"),
        (lambda c: c.chats.rate(BARE, stars=1), "no candidate"),
        (lambda c: c.chats.delete(CHAT, []), "no turns"),
        (lambda c: c.chats.delete(CHAT, [ELSEWHERE]), "belongs to chat"),
        (lambda c: c.chats.delete(CHAT, 5), "turns must be"),
        (lambda c: c.chats.delete(object(), "t"), "chat must be"),
        (lambda c: c.chats.pin(object()), "must be a Turn"),
        (lambda c: c.chats.unpin(fake_turn(chat_id="a/b")), "turn.chat_id"),
        (lambda c: c.chats.history("x?y"), "chat"),
        (lambda c: c.chats.rename(CHAT, ""), "name"),
        (lambda c: c.chats.archive("bad id"), "chat"),
        (lambda c: c.chats.unarchive(None), "chat must be"),
        (lambda c: c.chats.copy(CHAT, up_to=ELSEWHERE), "belongs to chat"),
        (lambda c: c.chats.copy(CHAT, up_to=3), "up_to must be"),
        (lambda c: c.chats.set_model(CHAT, "SMART"), "model type"),
        (lambda c: c.chats.set_model(CHAT, "model_type_smart"), "model type"),
        (lambda c: c.chats.rate(TURN, "k"), "exactly one"),
        (lambda c: c.chats.rate(TURN, "k", stars=2, label="funny"), "exactly one"),
        (lambda c: c.chats.rate(TURN, "k", stars=5), "1 to 4"),
        (lambda c: c.chats.rate(TURN, "k", stars=True), "1 to 4"),
        (lambda c: c.chats.rate(TURN, "k", label="great"), "not one of"),
        (lambda c: c.chats.unrate(TURN, "", "k"), "annotation_id"),
    ],
)
async def test_bad_arguments_fail_before_io(offline: AsyncClient, call: Any, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        await call(offline)


def test_streaming_calls_check_arguments_at_once(offline: AsyncClient) -> None:
    with pytest.raises(ValidationError):
        offline.chats.stream_regenerate(HUMAN)
    with pytest.raises(ValidationError):
        offline.chats.iter_history(3)  # type: ignore[arg-type]
