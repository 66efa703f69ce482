"""A real third-party client, PyCharacterAI 2.2.50, pointed at the emulator unchanged.

PyCharacterAI hard-codes the live hosts, so the only thing replaced is name resolution: its
curl_cffi session is a subclass that rewrites ``https://neo.character.ai/x`` into
``http://127.0.0.1:PORT/neo/x`` (and so on for each host) before sending. Everything else is
the library's own code speaking to the emulator over real sockets.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from typing import Any

import curl_cffi
import pytest
from PyCharacterAI import get_client
from PyCharacterAI import requester as pc_requester

from caiclient.emulator import Emulator

HOSTS = {
    "https://plus.character.ai": "/plus",
    "https://beta.character.ai": "/beta",
    "https://neo.character.ai": "/neo",
    "wss://neo.character.ai": "/neo",
    "https://character.ai": "/web",
    "https://characterai.io": "/cdn",
}


def _local(url: str, origin: str) -> str:
    if url.startswith(origin):
        return url  # already the emulator's own URL (e.g. a TTS replay it handed out)
    for live, prefix in HOSTS.items():
        if url.startswith(live + "/") or url == live:
            base = origin.replace("http://", "ws://") if live.startswith("wss") else origin
            return base + prefix + url[len(live) :]
    raise AssertionError(f"PyCharacterAI called an unexpected host: {url}")


@pytest.fixture
async def pc(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    origin = emu.url

    class LocalSession(curl_cffi.AsyncSession):  # type: ignore[misc, type-arg]
        async def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            return await super().request(method, _local(url, origin), *args, **kwargs)

        def ws_connect(self, url: str, *args: Any, **kwargs: Any) -> Any:
            return super().ws_connect(_local(url, origin), *args, **kwargs)

    shim = types.SimpleNamespace(**{k: getattr(curl_cffi, k) for k in dir(curl_cffi)})
    shim.AsyncSession = LocalSession
    monkeypatch.setattr(pc_requester, "curl_cffi", shim)
    client = await get_client(token=emu.token)
    try:
        yield client
    finally:
        await client.close_session()


async def test_account_and_characters(emu: Emulator, pc: Any) -> None:
    me = await pc.account.fetch_me()
    assert str(me.account_id) == emu.user_id
    assert me.username == emu.username
    echo = emu.character("Echo")
    info = await pc.character.fetch_character_info(echo.id)
    assert info.name == "Echo"
    found = await pc.character.search_characters("Echo")
    assert echo.id in [c.character_id for c in found]
    assert await pc.utils.ping()


async def test_chat_send_stream_swipe_edit_pin_delete(emu: Emulator, pc: Any) -> None:
    echo = emu.character("Echo").id
    chat, greeting = await pc.chat.create_chat(echo)
    assert greeting is not None
    assert greeting.get_primary_candidate().text == emu.character("Echo").greeting

    answer = await pc.chat.send_message(echo, chat.chat_id, "Hello from PyCharacterAI")
    assert answer.get_primary_candidate().text.startswith("Hello from PyCharacterAI")

    streamed = ""
    async for turn in await pc.chat.send_message(
        echo, chat.chat_id, "streaming now", streaming=True
    ):
        text = turn.get_primary_candidate().text
        assert text.startswith(streamed) or not streamed
        streamed = text
    assert streamed.startswith("streaming now")

    swipe = await pc.chat.another_response(echo, chat.chat_id, answer.turn_id)
    new_candidate = swipe.get_primary_candidate()
    assert new_candidate.candidate_id != answer.get_primary_candidate().candidate_id
    assert await pc.chat.update_primary_candidate(
        chat.chat_id, answer.turn_id, answer.get_primary_candidate().candidate_id
    )

    edited = await pc.chat.edit_message(
        chat.chat_id, answer.turn_id, answer.get_primary_candidate().candidate_id, "edited text"
    )
    assert edited.get_primary_candidate().text == "edited text"

    assert await pc.chat.pin_message(chat.chat_id, answer.turn_id)
    pinned = await pc.chat.fetch_all_pinned_messages(chat.chat_id)
    assert [t.turn_id for t in pinned] == [answer.turn_id]
    assert await pc.chat.unpin_message(chat.chat_id, answer.turn_id)
    assert await pc.chat.fetch_all_pinned_messages(chat.chat_id) == []

    history = await pc.chat.fetch_all_messages(chat.chat_id)
    assert len(history) == 5  # greeting + two messages and their replies
    assert await pc.chat.delete_message(chat.chat_id, history[-1].turn_id)
    assert len(await pc.chat.fetch_all_messages(chat.chat_id)) == 4


async def test_chat_management(emu: Emulator, pc: Any) -> None:
    sage = emu.character("Sage").id
    chat, _ = await pc.chat.create_chat(sage)
    answer = await pc.chat.send_message(sage, chat.chat_id, "keep this")
    assert await pc.chat.update_chat_name(chat.chat_id, "Library talk")
    assert (await pc.chat.fetch_chat(chat.chat_id)).chat_name == "Library talk"
    new_id = await pc.chat.copy_chat(chat.chat_id, answer.turn_id)
    assert new_id and new_id != chat.chat_id
    assert len(await pc.chat.fetch_all_messages(new_id)) == 3
    assert await pc.chat.archive_chat(chat.chat_id)
    assert await pc.chat.unarchive_chat(chat.chat_id)
    recent = await pc.chat.fetch_recent_chats()
    assert chat.chat_id in [c.chat_id for c in recent]
    chats = await pc.chat.fetch_chats(sage)
    assert {chat.chat_id, new_id} <= {c.chat_id for c in chats}


async def test_personas_settings_and_users(emu: Emulator, pc: Any) -> None:
    persona = await pc.account.create_persona("Tester", "A persona made by PyCharacterAI")
    personas = await pc.account.fetch_my_personas()
    assert persona.persona_id in [p.persona_id for p in personas]
    assert await pc.account.set_default_persona(persona.persona_id)
    settings = await pc.account.fetch_my_settings()
    assert settings["default_persona_id"] == persona.persona_id
    user = await pc.user.fetch_user(emu.username)
    assert user is not None and user.username == emu.username


async def test_characters_votes_and_speech(emu: Emulator, pc: Any) -> None:
    created = await pc.character.create_character(
        "Interop", "Hello from a character made by PyCharacterAI."
    )
    mine = await pc.account.fetch_my_characters()
    assert created.character_id in [c.character_id for c in mine]
    assert await pc.character.character_vote(emu.character("Sage").id, True)
    liked = await pc.account.fetch_my_upvoted_characters()
    assert emu.character("Sage").id in [c.character_id for c in liked]

    chat, greeting = await pc.chat.create_chat(created.character_id)
    assert greeting.get_primary_candidate().text.startswith("Hello from a character")
    voices = await pc.utils.search_voices("Narrator")
    assert voices
    candidate = greeting.get_primary_candidate()
    speech = await pc.utils.generate_speech(
        chat.chat_id, greeting.turn_id, candidate.candidate_id, voices[0].voice_id
    )
    assert isinstance(speech, bytes)
    assert speech[:3] == b"ID3" or speech[0] == 0xFF  # an MP3 file
