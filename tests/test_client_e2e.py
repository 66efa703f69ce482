"""Tier 3: AsyncClient end to end against the emulator on a free loopback port."""

from __future__ import annotations

import asyncio
import time

import pytest

from caiclient import (
    AsyncClient,
    AuthError,
    CharacterNotFound,
    Chat,
    ChatNotFound,
    Endpoints,
    User,
    ValidationError,
)
from caiclient.emulator import Emulator


async def test_me_returns_the_seeded_user(emu: Emulator, client: AsyncClient) -> None:
    me = await client.account.me()
    assert me.id == emu.user_id
    assert me.username == emu.username
    assert me.id.isdigit()


async def test_create_with_greeting(emu: Emulator, client: AsyncClient) -> None:
    sage = emu.character("Sage")
    chat, greeting = await client.chats.create(sage.id)
    assert chat.character_id == sage.id
    assert len(chat.chat_id) == 36
    assert greeting is not None
    assert greeting.text == sage.greeting
    assert greeting.author.author_id == sage.id
    assert not greeting.is_human
    assert greeting.chat_id == chat.chat_id


async def test_create_without_greeting(emu: Emulator, client: AsyncClient) -> None:
    chat, greeting = await client.chats.create(emu.character("Echo").id, greeting=False)
    assert greeting is None
    assert await client.chats.history(chat) == []


async def test_send_returns_the_final_reply(emu: Emulator, client: AsyncClient) -> None:
    echo = emu.character("Echo")
    chat, _ = await client.chats.create(echo.id)
    turn = await client.chats.send(chat, "Is anybody out there?")
    assert turn.text.startswith("Is anybody out there?")
    assert turn.is_final
    assert not turn.is_human
    assert turn.author.author_id == echo.id
    assert turn.chat_id == chat.chat_id


async def test_stream_deltas_concatenate_to_the_final_text(
    emu: Emulator, client: AsyncClient
) -> None:
    chat, _ = await client.chats.create(emu.character("Sage").id)
    chunks = [c async for c in client.chats.stream(chat, "What is patience?")]
    assert len(chunks) == 5  # the emulator's default: five bot frames per reply
    assert [c.final for c in chunks] == [False] * 4 + [True]
    assert all(c.delta for c in chunks)
    text = "".join(c.delta for c in chunks)
    assert text == chunks[-1].text == chunks[-1].turn.text
    history = await client.chats.history(chat)
    assert history[-1].text == text


async def test_history_pages_oldest_first(emu: Emulator, client: AsyncClient) -> None:
    chat, greeting = await client.chats.create(emu.character("Echo").id)
    assert greeting is not None
    sent = [f"message {i}" for i in range(30)]
    for text in sent:
        await client.chats.send(chat, text)
    history = await client.chats.history(chat)
    assert len(history) == 1 + 2 * len(sent)  # greeting + (message, reply) pairs: two pages
    assert history[0].turn_id == greeting.turn_id
    humans = [t.text for t in history if t.is_human]
    assert humans == sent
    replies = [t.text for t in history[1:] if not t.is_human]
    assert all(reply.startswith(text) for reply, text in zip(replies, sent, strict=True))


async def test_wrong_token_is_an_auth_error(emu: Emulator) -> None:
    async with AsyncClient("0" * 40, endpoints=Endpoints.local(emu.url)) as client:
        with pytest.raises(AuthError):
            await client.account.me()
        with pytest.raises(AuthError):
            await client.chats.create(emu.character("Echo").id)


async def test_ws_upgrade_with_a_wrong_token_is_an_auth_error(emu: Emulator) -> None:
    chat = Chat(chat_id="00000000-0000-4000-8000-000000000000", character_id="x")
    async with AsyncClient("0" * 40, endpoints=Endpoints.local(emu.url)) as client:
        # The user id is cached from another client so only the socket sees the bad token.
        client._core._user = await _real_user(emu)
        with pytest.raises(AuthError):
            await client.chats.send(chat, "hello")


async def _real_user(emu: Emulator) -> User:
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as good:
        return await good.account.me()


async def test_unknown_character_is_character_not_found(client: AsyncClient) -> None:
    with pytest.raises(CharacterNotFound):
        await client.chats.create("A" * 43)


async def test_unknown_chat_is_chat_not_found(emu: Emulator, client: AsyncClient) -> None:
    ghost = Chat(chat_id="00000000-0000-4000-8000-000000000000", character_id=emu.characters[0].id)
    with pytest.raises(ChatNotFound):
        await client.chats.send(ghost, "hello?")
    with pytest.raises(ChatNotFound):
        await client.chats.history(ghost)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
async def test_blank_text_is_rejected_before_sending(
    emu: Emulator, client: AsyncClient, text: str
) -> None:
    chat, _ = await client.chats.create(emu.character("Echo").id, greeting=False)
    with pytest.raises(ValidationError, match="empty"):
        await client.chats.send(chat, text)
    with pytest.raises(ValidationError):
        client.chats.stream(chat, text)
    assert await client.chats.history(chat) == []


async def test_non_chat_arguments_are_rejected(client: AsyncClient) -> None:
    with pytest.raises(ValidationError, match=r"chats\.get"):
        await client.chats.send("some-chat-id", "hi")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await client.chats.send(Chat(chat_id="c", character_id="x"), 42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await client.chats.create("bad/id")
    with pytest.raises(ValidationError):
        await client.chats.create(None)  # type: ignore[arg-type]


async def test_thousand_concurrent_sends_each_get_their_own_reply(
    emu: Emulator, client: AsyncClient
) -> None:
    echo = emu.character("Echo")
    chats = await asyncio.gather(
        *(client.chats.create(echo.id, greeting=False) for _ in range(100))
    )

    async def one(i: int) -> tuple[str, str, str]:
        chat = chats[i % 100][0]
        text = f"request #{i} for chat {chat.chat_id}"
        turn = await client.chats.send(chat, text, timeout=60)
        return text, turn.text, turn.chat_id

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(1000)))
    elapsed = time.perf_counter() - started
    print(f"\n1000 concurrent sends over 100 chats: {elapsed:.2f} s")
    for i, (text, reply, chat_id) in enumerate(results):
        assert reply.startswith(text), (i, text, reply)
        assert chat_id == chats[i % 100][0].chat_id
    assert client._core.socket.in_flight == 0
    # Ten messages per chat, each answered once, in order.
    history = await client.chats.history(chats[7][0])
    humans = [t.text for t in history if t.is_human]
    assert len(humans) == 10
    assert len(history) == 20


async def test_token_never_appears_in_repr_or_errors(emu: Emulator) -> None:
    secret = "0123456789abcdef" * 2 + "01234567"
    client = AsyncClient(secret, endpoints=Endpoints.local(emu.url))
    try:
        assert secret not in repr(client)
        with pytest.raises(AuthError) as caught:
            await client.account.me()
        assert secret not in str(caught.value)
        assert secret not in repr(caught.value)
    finally:
        await client.aclose()
