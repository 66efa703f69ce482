"""``client.voices`` and ``client.images`` against the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from caiclient import (
    AsyncClient,
    AuthError,
    CharacterNotFound,
    ChatNotFound,
    Endpoints,
    NotFound,
    ServerError,
    TurnNotFound,
    ValidationError,
    VoiceNotFound,
)
from caiclient.emulator import Emulator
from caiclient.emulator.media.files import silent_mp3, solid_webp
from caiclient.emulator.media.store import voice_id_for
from caiclient.models import Candidate, Turn, TurnKey
from caiclient.models._media import Voice
from caiclient.protocol.http import Request, Response
from caiclient.transports import MockTransport

NARRATOR = voice_id_for("Narrator")
CAPTAIN = voice_id_for("Deep Captain")
MP3 = silent_mp3("sample", title="sample")
WEBP = solid_webp((10, 20, 30), 32)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)


def no_network(request: Request) -> Response:
    """A MockTransport handler that fails the test if anything is sent."""
    raise AssertionError(f"unexpected I/O: {request.method} {request.url}")


@pytest.fixture
def nowhere() -> MockTransport:
    return MockTransport(no_network)


@pytest.fixture
async def offline(nowhere: MockTransport) -> AsyncIterator[AsyncClient]:
    """A client whose every request fails the test: for validation errors."""
    async with AsyncClient("a" * 40, endpoints=Endpoints.live(), transport=nowhere) as c:
        yield c
    assert nowhere.sent == [] and nowhere.sockets == []


@pytest.fixture
async def someone(emu: Emulator) -> AsyncIterator[AsyncClient]:
    user = emu.store.add_user("someone")
    async with AsyncClient(user.token, endpoints=Endpoints.local(emu.url)) as c:
        yield c


async def greeting(client: AsyncClient, emu: Emulator, name: str = "Echo") -> Turn:
    _, turn = await client.chats.create(emu.character(name).id)
    assert turn is not None
    return turn


# ---- voices: reading ------------------------------------------------------------------------


async def test_get_maps_camel_case(client: AsyncClient, emu: Emulator) -> None:
    voice = await client.voices.get(NARRATOR)
    assert voice.id == NARRATOR
    assert voice.name == "Narrator"
    assert voice.is_public and not voice.is_draft
    assert voice.internal_status == "active"
    assert voice.backend_provider == "cai"
    assert voice.creator_info.source == "system"
    assert voice.preview_audio_uri.startswith(emu.url)
    assert voice.last_update_time is not None


async def test_get_missing_or_private_is_voice_not_found(
    client: AsyncClient, someone: AsyncClient
) -> None:
    with pytest.raises(VoiceNotFound):
        await client.voices.get("00000000-0000-4000-8000-000000000000")
    theirs = await someone.voices.create(MP3, name="Their Voice")
    with pytest.raises(VoiceNotFound):
        await client.voices.get(theirs.id)


async def test_search(client: AsyncClient, someone: AsyncClient, emu: Emulator) -> None:
    assert [v.name for v in await client.voices.search("narr")] == ["Narrator"]
    assert await client.voices.search("no voice is called this") == []
    mine = await client.voices.create(MP3, name="Mine Voice")
    assert [v.id for v in await client.voices.search(creator=emu.username)] == [mine.id]
    await someone.voices.create(MP3, name="Hidden Voice")
    assert await client.voices.search(creator="someone") == []


async def test_lists(client: AsyncClient) -> None:
    assert await client.voices.mine() == []
    created = await client.voices.create(MP3, name="Listed Voice")
    assert [v.id for v in await client.voices.mine()] == [created.id]
    system = await client.voices.system()
    assert NARRATOR in {v.id for v in system}
    featured = await client.voices.featured()
    assert 0 < len(featured) < len(system)


async def test_lists_with_bad_token_raise_auth_error(emu: Emulator) -> None:
    async with AsyncClient("0" * 40, endpoints=Endpoints.local(emu.url)) as bad:
        for call in (bad.voices.mine, bad.voices.system, bad.voices.featured):
            with pytest.raises(AuthError):
                await call()
        with pytest.raises(AuthError):
            await bad.voices.search("narr")


# ---- voices: writing ------------------------------------------------------------------------


async def test_create_publishes(client: AsyncClient, tmp_path: Path, emu: Emulator) -> None:
    voice = await client.voices.create(MP3, name="Bytes Voice", description="d", public=True)
    assert voice.name == "Bytes Voice"
    assert voice.is_public and voice.internal_status == "active"
    assert voice.creator_id == emu.user_id
    assert voice.creator_username == emu.username
    path = tmp_path / "sample.mp3"
    path.write_bytes(MP3)
    from_file = await client.voices.create(path, name="File Voice", preview_text="Hi")
    assert not from_file.is_public and from_file.preview_text == "Hi"
    assert (await client.voices.get(from_file.id)).name == "File Voice"


async def test_create_refused_by_server(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from caiclient.emulator.media import voices as media_voices

    monkeypatch.setattr(media_voices, "MAX_AUDIO_BYTES", 1000)
    with pytest.raises(ServerError, match="too large"):
        await client.voices.create(MP3 + bytes(2000), name="Big Voice")


async def test_update(client: AsyncClient) -> None:
    voice = await client.voices.create(MP3, name="Old Name")
    renamed = await client.voices.update(voice, name="New Name", public=True)
    assert (renamed.name, renamed.visibility, renamed.description) == ("New Name", "public", "")
    by_id = await client.voices.update(voice.id, description="described")
    assert (by_id.name, by_id.description, by_id.visibility) == ("New Name", "described", "public")


async def test_update_and_delete_errors(client: AsyncClient, someone: AsyncClient) -> None:
    theirs = await someone.voices.create(MP3, name="Their Public", public=True)
    private = await someone.voices.create(MP3, name="Their Private")
    # Refused to this account (403), not a bad token: ServerError, never AuthError.
    with pytest.raises(ServerError) as refused:
        await client.voices.update(theirs, name="Stolen")
    assert refused.value.status == 403 and not isinstance(refused.value, AuthError)
    with pytest.raises(ServerError) as refused:
        await client.voices.delete(theirs)
    assert refused.value.status == 403
    with pytest.raises(VoiceNotFound):
        await client.voices.update(private.id, name="Stolen")
    with pytest.raises(VoiceNotFound):
        await client.voices.delete(private.id)
    assert (await someone.voices.get(theirs.id)).name == "Their Public"


async def test_delete(client: AsyncClient) -> None:
    voice = await client.voices.create(MP3, name="Doomed Voice")
    await client.voices.delete(voice)
    with pytest.raises(VoiceNotFound):
        await client.voices.get(voice.id)
    with pytest.raises(VoiceNotFound):
        await client.voices.delete(voice.id)


# ---- TTS --------------------------------------------------------------------------------------


async def test_tts_by_voice_id_name_and_default(client: AsyncClient, emu: Emulator) -> None:
    turn = await greeting(client, emu)
    by_id = await client.voices.tts(turn, CAPTAIN)
    assert by_id.startswith(emu.url) and by_id.endswith(".mp3")
    assert await client.voices.tts(turn, await client.voices.get(CAPTAIN)) == by_id
    assert await client.voices.tts(turn, "deep captain") == by_id
    assert await client.voices.tts(turn) == await client.voices.tts(turn, NARRATOR)
    await client.voices.set_for_character(turn.author.author_id, CAPTAIN)
    assert await client.voices.tts(turn) == by_id


async def test_tts_bytes_is_the_mp3(client: AsyncClient, emu: Emulator) -> None:
    turn = await greeting(client, emu)
    audio = await client.voices.tts_bytes(turn, NARRATOR)
    assert audio.startswith(b"ID3") and b"\xff\xfb\x14\xc4" in audio


async def test_tts_of_a_chosen_candidate(client: AsyncClient, emu: Emulator) -> None:
    turn = await greeting(client, emu)
    with pytest.raises(TurnNotFound):
        await client.voices.tts(turn, NARRATOR, candidate_id="not-a-candidate")
    primary = turn.primary
    assert primary is not None
    url = await client.voices.tts(turn, NARRATOR, candidate_id=primary.candidate_id)
    assert url == await client.voices.tts(turn, NARRATOR)


async def test_tts_errors(client: AsyncClient, someone: AsyncClient, emu: Emulator) -> None:
    turn = await greeting(client, emu)
    with pytest.raises(VoiceNotFound):
        await client.voices.tts(turn, "no such voice at all")
    with pytest.raises(VoiceNotFound):
        await client.voices.tts_bytes(turn, "00000000-0000-4000-8000-000000000000")
    with pytest.raises(VoiceNotFound):
        await client.voices.tts(turn, Voice(id="00000000-0000-4000-8000-000000000000"))
    with pytest.raises(ChatNotFound):
        await someone.voices.tts(turn, NARRATOR)
    ghost = Turn(
        turn_key=TurnKey(chat_id=turn.chat_id, turn_id="00000000-0000-4000-8000-000000000000"),
        candidates=turn.candidates,
    )
    with pytest.raises(TurnNotFound):
        await client.voices.tts(ghost, NARRATOR)


# ---- overrides --------------------------------------------------------------------------------


async def test_override_lifecycle(client: AsyncClient, emu: Emulator) -> None:
    sage = emu.character("Sage").id
    assert await client.voices.for_character(sage) is None
    await client.voices.set_for_character(sage, await client.voices.get(NARRATOR))
    assert await client.voices.for_character(sage) == NARRATOR
    await client.voices.set_for_character(sage, CAPTAIN)
    assert await client.voices.for_character(sage) == CAPTAIN
    await client.voices.clear_for_character(sage)
    assert await client.voices.for_character(sage) is None
    await client.voices.clear_for_character(sage)


async def test_override_errors(client: AsyncClient, emu: Emulator) -> None:
    sage = emu.character("Sage").id
    unknown = "x" * 43
    with pytest.raises(VoiceNotFound):
        await client.voices.set_for_character(sage, "00000000-0000-4000-8000-000000000000")
    with pytest.raises(CharacterNotFound):
        await client.voices.set_for_character(unknown, NARRATOR)
    with pytest.raises(CharacterNotFound):
        await client.voices.clear_for_character(unknown)
    with pytest.raises(CharacterNotFound):
        await client.voices.for_character(unknown)


# ---- images -----------------------------------------------------------------------------------


async def test_upload_bytes_and_path(client: AsyncClient, tmp_path: Path) -> None:
    rel = await client.images.upload(WEBP)
    assert rel.startswith("uploaded/") and rel.endswith(".webp")
    assert await client.images.download(rel) == WEBP
    assert await client.images.download(client.images.url(rel, size=80)) == WEBP
    path = tmp_path / "picture.png"
    path.write_bytes(PNG)
    rel_png = await client.images.upload(path, filename="avatar.png", content_type="image/png")
    assert rel_png.endswith(".png")
    assert await client.images.download(client.images.url(rel_png, avatar=True)) == PNG


async def test_upload_refused_by_server(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from caiclient.emulator.media import images as media_images

    monkeypatch.setattr(media_images, "MAX_IMAGE_BYTES", 100)
    with pytest.raises(ServerError, match="too large"):
        await client.images.upload(PNG + bytes(200))


async def test_avatar_options_and_generate(client: AsyncClient, emu: Emulator) -> None:
    urls = await client.images.avatar_options("a lighthouse", count=2)
    assert len(urls) == 2 and all(u.startswith(emu.url) for u in urls)
    assert (await client.images.download(urls[0])).startswith(b"RIFF")
    assert len(await client.images.avatar_options("a lighthouse")) == 4
    url = await client.images.generate("a lighthouse")
    assert (await client.images.download(url))[8:12] == b"WEBP"


async def test_image_calls_with_bad_token(emu: Emulator) -> None:
    async with AsyncClient("0" * 40, endpoints=Endpoints.local(emu.url)) as bad:
        with pytest.raises(AuthError):
            await bad.images.upload(PNG)
        with pytest.raises(AuthError):
            await bad.images.avatar_options("x")
        with pytest.raises(AuthError):
            await bad.images.generate("x")


async def test_download_missing_image(client: AsyncClient) -> None:
    with pytest.raises(NotFound):
        await client.images.download("uploaded/2020/01/01/none.webp")


def test_url_is_pure(offline: AsyncClient) -> None:
    client = offline
    assert client.images.url("uploaded/a b.webp") == (
        "https://characterai.io/i/400/static/user/uploaded/a%20b.webp"
    )
    assert client.images.url("x.webp", size=80, avatar=True) == (
        "https://characterai.io/i/80/static/avatars/x.webp"
    )


# ---- core.fetch: where the token goes ---------------------------------------------------------


async def test_fetch_sends_the_token_only_to_own_hosts() -> None:
    # Every request is answered 200 with b"audio"; MockTransport records its headers.
    recorder = MockTransport(lambda request: Response(200, {}, b"audio"))
    async with AsyncClient("b" * 40, endpoints=Endpoints.live(), transport=recorder) as c:
        assert await c.images.download("https://storage.example.com/a.mp3") == b"audio"
        assert await c.images.download("https://characterai.io/i/400/static/user/a.webp")
        assert await c.images.download("https://neo.character.ai/x")
    calls = [(sent.request.url, dict(sent.headers)) for sent in recorder.sent]
    (_, storage), (_, cdn), (_, neo) = calls
    assert storage == {} and cdn == {}
    assert neo == {"Authorization": "Token " + "b" * 40}


# ---- validation before any I/O -----------------------------------------------------------------

TURN = Turn(
    turn_key=TurnKey(chat_id="c", turn_id="t"),
    candidates=[Candidate(candidate_id="k", raw_content="hi")],
)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.voices.get(""), "voice_id"),
        (lambda c: c.voices.get("a/b"), "voice_id"),
        (lambda c: c.voices.get(NARRATOR, timeout=0), "timeout"),
        (lambda c: c.voices.search(), "query, a creator"),
        (lambda c: c.voices.search("  "), "query"),
        (lambda c: c.voices.search(creator=3), "creator"),
        (lambda c: c.voices.mine(timeout=-1), "timeout"),
        (lambda c: c.voices.system(timeout=-1), "timeout"),
        (lambda c: c.voices.featured(timeout=-1), "timeout"),
        (lambda c: c.voices.create(MP3, name="ab"), "3 to 20"),
        (lambda c: c.voices.create(MP3, name="Good", description="x" * 121), "description"),
        (lambda c: c.voices.create(MP3, name="Good", public="yes"), "public"),
        (lambda c: c.voices.create(b"", name="Good"), "empty"),
        (lambda c: c.voices.create(b"hello", name="Good"), "does not look like"),
        (lambda c: c.voices.create("/no/such/file.mp3", name="Good"), "does not exist"),
        (lambda c: c.voices.create(123, name="Good"), "path or bytes"),
        (lambda c: c.voices.update(NARRATOR, name="x"), "3 to 20"),
        (lambda c: c.voices.update(42), "voice must be"),
        (lambda c: c.voices.update(NARRATOR, preview_text="x" * 501), "preview_text"),
        (lambda c: c.voices.delete(""), "voice"),
        (lambda c: c.voices.tts("turn"), "turn must be a Turn"),
        (lambda c: c.voices.tts(TURN, 5), "voice must be"),
        (lambda c: c.voices.tts(TURN, " "), "voice"),
        (lambda c: c.voices.tts(TURN, candidate_id=""), "candidate_id"),
        (lambda c: c.voices.tts(Turn(turn_key=TurnKey(chat_id="c", turn_id="t"))), "no candidate"),
        (lambda c: c.voices.tts(Turn(turn_key=TurnKey(chat_id="c"))), "turn_id"),
        (lambda c: c.voices.tts_bytes(TURN, timeout=0), "timeout"),
        (lambda c: c.voices.set_for_character("", NARRATOR), "character_id"),
        (lambda c: c.voices.set_for_character("x" * 43, None), "voice must be"),
        (lambda c: c.voices.clear_for_character("a b"), "character_id"),
        (lambda c: c.voices.for_character(""), "character_id"),
        (lambda c: c.images.upload(b""), "empty"),
        (lambda c: c.images.upload(b"plain text"), "does not look like"),
        (lambda c: c.images.upload("/no/such/image.png"), "does not exist"),
        (lambda c: c.images.upload(PNG, content_type="text/plain"), "content_type"),
        (lambda c: c.images.upload(PNG, filename=""), "filename"),
        (lambda c: c.images.avatar_options(""), "prompt"),
        (lambda c: c.images.avatar_options("x", count=0), "count"),
        (lambda c: c.images.avatar_options("x", count=9), "count"),
        (lambda c: c.images.avatar_options("x", count=True), "count"),
        (lambda c: c.images.generate("   "), "prompt"),
        (lambda c: c.images.download(""), "url"),
        (lambda c: c.images.download("../etc/passwd"), "rel_path"),
    ],
)
async def test_validation_happens_before_io(offline: AsyncClient, call: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        await call(offline)


def test_url_validation(offline: AsyncClient) -> None:
    with pytest.raises(ValidationError, match="size"):
        offline.images.url("x.webp", size=0)
    with pytest.raises(ValidationError, match="rel_path"):
        offline.images.url("a//b.webp")


async def test_directory_is_not_a_file(offline: AsyncClient, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a file"):
        await offline.images.upload(tmp_path)
