"""The media area of the emulator (voices, TTS replay, overrides, images, CDN), driven by
aiohttp's own client and checked against PROTOCOL.md §11 literally."""

from __future__ import annotations

import base64
import json
import re
import struct
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from caiclient.emulator import Emulator
from caiclient.emulator.media import images as media_images
from caiclient.emulator.media import voices as media_voices
from caiclient.emulator.media.files import silent_mp3, solid_webp
from caiclient.emulator.media.store import voice_id_for

API = "/neo/multimodal/api/v1"
NARRATOR = voice_id_for("Narrator")
VOICE_KEYS = {
    "id",
    "name",
    "description",
    "gender",
    "visibility",
    "creatorInfo",
    "audioSourceType",
    "previewText",
    "previewAudioURI",
    "backendProvider",
    "backendId",
    "internalStatus",
    "lastUpdateTime",
}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
MP3 = silent_mp3("sample", title="sample")
NOT_AN_IMAGE = (
    "Upload a valid image. The file you uploaded was either not an image or a corrupted image."
)


def neo_error(comment: str, code: int) -> dict[str, Any]:
    return {
        "command": "neo_error",
        "comment": comment,
        "error_code": code,
        "sub_code": None,
        "retry_after_seconds": None,
    }


# ---- decoders of what the emulator synthesises ----------------------------------------------


def mp3_frames(data: bytes) -> int:
    """The number of MPEG-1 Layer III frames after an ID3v2 tag; fails on any malformed byte."""
    assert data[:3] == b"ID3"
    size = 0
    for byte in data[6:10]:
        assert byte < 0x80
        size = size << 7 | byte
    pos, frames = 10 + size, 0
    bitrates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
    rates = [44100, 48000, 32000]
    while pos < len(data):
        header = data[pos : pos + 4]
        assert header[0] == 0xFF and header[1] & 0xFE == 0xFA, header  # MPEG-1, Layer III
        bitrate = bitrates[header[2] >> 4] * 1000
        rate = rates[(header[2] >> 2) & 3]
        pos += 144 * bitrate // rate + ((header[2] >> 1) & 1)
        frames += 1
    assert pos == len(data)
    return frames


def webp_colour(data: bytes) -> tuple[int, int, int, int, int]:
    """``(width, height, r, g, b)`` of a one-colour lossless WebP made of one-symbol codes."""
    assert data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8L"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    size = struct.unpack("<I", data[16:20])[0]
    payload = data[20 : 20 + size]
    assert payload[0] == 0x2F
    bits, at = int.from_bytes(payload[1:], "little"), 0

    def take(n: int) -> int:
        nonlocal at
        value = (bits >> at) & ((1 << n) - 1)
        at += n
        return value

    width, height = take(14) + 1, take(14) + 1
    assert take(1) == 0 and take(3) == 0  # no alpha hint, version 0
    assert take(1) == 0 and take(1) == 0 and take(1) == 0  # no transform, cache, meta codes
    symbols = []
    for _ in range(5):
        assert take(1) == 1 and take(1) == 0  # simple code of one symbol
        symbols.append(take(8 if take(1) else 1))
    green, red, blue, alpha, _distance = symbols
    assert alpha == 255
    return width, height, red, green, blue


# ---- fixtures and helpers -----------------------------------------------------------------


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


class Api:
    """Requests as one user; every call returns ``(status, decoded JSON or bytes)``."""

    def __init__(self, http: aiohttp.ClientSession, emu: Emulator, token: str) -> None:
        self.http, self.emu, self.token = http, emu, token

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = kwargs.pop("headers", auth(self.token))
        url = path if path.startswith("http") else self.emu.url + path
        async with self.http.request(method, url, headers=headers, **kwargs) as resp:
            body = await resp.read()
            if resp.content_type == "application/json":
                return resp.status, json.loads(body)
            return resp.status, body

    async def create_voice(
        self, name: str = "Test Voice", *, audio: bytes = MP3, voice: Any = None
    ) -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field("file", audio, filename="input.mp3", content_type="audio/mpeg")
        meta = voice if voice is not None else {"name": name, "description": "mine"}
        form.add_field("json", json.dumps({"voice": meta}))
        return await self.call("POST", f"{API}/voices/", data=form)

    async def upload(
        self, data: bytes, field: str = "image", prefix: str = "/plus"
    ) -> tuple[int, Any]:
        form = aiohttp.FormData()
        form.add_field(field, data, filename="x.png", content_type="image/png")
        return await self.call("POST", f"{prefix}/chat/upload-image/", data=form)


@pytest.fixture
def api(http: aiohttp.ClientSession, emu: Emulator) -> Api:
    return Api(http, emu, emu.token)


@pytest.fixture
def other(http: aiohttp.ClientSession, emu: Emulator) -> Api:
    return Api(http, emu, emu.store.add_user("someone").token)


async def new_chat(
    http: aiohttp.ClientSession, emu: Emulator, character: str = "Echo"
) -> dict[str, Any]:
    """A fresh chat with a greeting; returns the greeting turn as sent on the socket."""
    cookie = {"Cookie": f'HTTP_AUTHORIZATION="Token {emu.token}"'}
    chat_id = str(uuid.uuid4())
    chat = {
        "chat_id": chat_id,
        "creator_id": emu.user_id,
        "character_id": emu.character(character).id,
    }
    async with http.ws_connect(f"{emu.url}/neo/ws/", headers=cookie) as ws:
        frame = {
            "command": "create_chat",
            "request_id": "r",
            "payload": {"chat": chat, "with_greeting": True},
        }
        await ws.send_str(json.dumps(frame))
        assert json.loads((await ws.receive(timeout=5)).data)["command"] == "create_chat_response"
        turn: dict[str, Any] = json.loads((await ws.receive(timeout=5)).data)["turn"]
    return turn


def replay_body(turn: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {
        "candidateId": turn["primary_candidate_id"],
        "roomId": turn["turn_key"]["chat_id"],
        "turnId": turn["turn_key"]["turn_id"],
        "voiceId": NARRATOR,
    }
    body.update(extra)
    return body


# ---- voices: reading ----------------------------------------------------------------------


async def test_get_voice_has_exactly_the_protocol_keys(api: Api, emu: Emulator) -> None:
    status, body = await api.call("GET", f"{API}/voices/{NARRATOR}")
    assert status == 200
    voice = body["voice"]
    assert set(voice) == VOICE_KEYS
    assert voice["id"] == NARRATOR
    assert voice["visibility"] == "public"
    assert voice["internalStatus"] == "active"
    assert voice["gender"] == "neutral"
    assert voice["backendProvider"] == "cai"
    assert voice["audioSourceType"] == "file"
    assert set(voice["creatorInfo"]) == {"id", "source", "username"}
    assert TS.match(voice["lastUpdateTime"])
    assert voice["previewAudioURI"].startswith(emu.url + "/")
    status, audio = await api.call("GET", voice["previewAudioURI"], headers={})
    assert status == 200
    assert mp3_frames(audio) >= 10


async def test_seed_voice_ids_are_stable_uuids() -> None:
    assert voice_id_for("Narrator") == NARRATOR
    assert uuid.UUID(NARRATOR).version == 5


@pytest.mark.parametrize("which", ["system", "featured"])
async def test_system_and_featured_lists(api: Api, which: str) -> None:
    status, body = await api.call("GET", f"{API}/voices/{which}")
    assert status == 200
    assert body["voices"]
    assert all(
        set(v) == VOICE_KEYS and v["creatorInfo"]["source"] == "system" for v in body["voices"]
    )
    if which == "featured":
        _, system = await api.call("GET", f"{API}/voices/system")
        assert len(body["voices"]) < len(system["voices"])


async def test_search_by_query_name_and_creator(api: Api, other: Api, emu: Emulator) -> None:
    await api.create_voice("Pirate Mine")
    await other.create_voice("Pirate Hidden")  # private: invisible to api
    _, public = await other.create_voice("Pirate Open")
    await other.call(
        "PUT", f"{API}/voices/{public['voice']['id']}", json={"voice": {"visibility": "public"}}
    )

    async def names(**query: str) -> set[str]:
        status, body = await api.call("GET", f"{API}/voices/search", params=query)
        assert status == 200
        return {v["name"] for v in body["voices"]}

    assert await names(query="pirate") == {"Pirate Mine", "Pirate Open"}
    assert await names(query="storyteller") == {"Narrator"}  # descriptions match too
    assert await names(characterName="Narr") == {"Narrator"}
    assert await names(**{"creatorInfo.username": "someone"}) == {"Pirate Open"}
    assert await names(**{"creatorInfo.username": emu.username}) == {"Pirate Mine"}
    assert await names(query="nothing like this") == set()
    assert await names() == set()


async def test_user_voices_are_only_mine(api: Api, other: Api) -> None:
    await api.create_voice("Mine One")
    await other.create_voice("Theirs One")
    status, body = await api.call("GET", f"{API}/voices/user")
    assert status == 200
    assert [v["name"] for v in body["voices"]] == ["Mine One"]


async def test_other_users_private_voice_looks_missing(api: Api, other: Api) -> None:
    _, created = await other.create_voice("Secret Voice")
    voice_id = created["voice"]["id"]
    hidden = await api.call("GET", f"{API}/voices/{voice_id}")
    missing = await api.call("GET", f"{API}/voices/{uuid.uuid4()}")
    assert hidden == missing == (404, neo_error("Voice not found", 404))
    assert (await other.call("GET", f"{API}/voices/{voice_id}"))[0] == 200


# ---- voices: writing ----------------------------------------------------------------------


async def test_create_returns_a_private_draft(api: Api, emu: Emulator) -> None:
    status, body = await api.create_voice(
        voice={
            "name": "Fresh",
            "description": "d",
            "gender": "neutral",
            "visibility": "private",
            "previewText": "Hello there",
            "audioSourceType": "file",
        }
    )
    assert status == 200
    voice = body["voice"]
    assert set(voice) == VOICE_KEYS
    assert voice["internalStatus"] == "draft"
    assert voice["visibility"] == "private"
    assert voice["previewText"] == "Hello there"
    assert voice["creatorInfo"] == {"id": emu.user_id, "source": "user", "username": emu.username}
    assert voice["backendId"] == voice["id"]
    assert uuid.UUID(voice["id"]).version == 4


@pytest.mark.parametrize(
    ("audio", "meta", "comment"),
    [
        (
            b"not audio at all",
            {"name": "Good Name"},
            "Invalid upload: the file is not a supported audio file",
        ),
        (MP3, {"name": "ab"}, "Invalid voice: name must be 3 to 20 characters"),
        (
            MP3,
            {"name": "Good Name", "description": "x" * 121},
            "Invalid voice: description must be at most 120 characters",
        ),
        (
            MP3,
            {"name": "Good Name", "visibility": "friends"},
            "Invalid voice: visibility must be public or private",
        ),
        (MP3, {"name": 5}, "Invalid voice: name must be a string"),
    ],
)
async def test_create_rejects_bad_input(api: Api, audio: bytes, meta: Any, comment: str) -> None:
    assert await api.create_voice(audio=audio, voice=meta) == (400, neo_error(comment, 400))
    assert (await api.call("GET", f"{API}/voices/user"))[1]["voices"] == []


async def test_create_needs_both_parts_and_multipart(api: Api) -> None:
    form = aiohttp.FormData()
    form.add_field("file", MP3, filename="input.mp3", content_type="audio/mpeg")
    status, body = await api.call("POST", f"{API}/voices/", data=form)
    assert (status, body["comment"]) == (
        400,
        "Invalid upload: a file part and a json part are required",
    )
    status, body = await api.call("POST", f"{API}/voices/", json={"voice": {"name": "x"}})
    assert status == 400 and body["comment"].startswith(
        "Invalid upload: expected multipart/form-data"
    )
    form = aiohttp.FormData()
    form.add_field("file", MP3, filename="input.mp3", content_type="audio/mpeg")
    form.add_field("json", "{not json")
    status, body = await api.call("POST", f"{API}/voices/", data=form)
    assert (status, body["comment"]) == (400, "Invalid voice: the json part is not JSON")


async def test_create_rejects_oversize_audio(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media_voices, "MAX_AUDIO_BYTES", 4096)
    status, body = await api.create_voice(audio=MP3 + bytes(5000))
    assert (status, body["comment"]) == (400, "Audio file too large: the limit is 4096 bytes")


async def test_put_publishes_and_edits(api: Api) -> None:
    _, created = await api.create_voice("Draft Voice")
    voice = created["voice"]
    edited = dict(
        voice,
        name="Final Voice",
        visibility="public",
        internalStatus="draft",
        lastUpdateTime="0001-01-01T00:00:00Z",
    )
    status, body = await api.call("PUT", f"{API}/voices/{voice['id']}", json={"voice": edited})
    assert status == 200
    assert body["voice"]["name"] == "Final Voice"
    assert body["voice"]["visibility"] == "public"
    assert body["voice"]["internalStatus"] == "active"
    assert TS.match(body["voice"]["lastUpdateTime"])
    assert (await api.call("GET", f"{API}/voices/{voice['id']}"))[1] == body


async def test_put_and_delete_are_for_owners(api: Api, other: Api) -> None:
    _, private = await other.create_voice("Their Private")
    _, public = await other.create_voice("Their Public")
    public_id = public["voice"]["id"]
    await other.call("PUT", f"{API}/voices/{public_id}", json={"voice": {"visibility": "public"}})
    private_id = private["voice"]["id"]
    for method in ("PUT", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"voice": {"name": "Stolen"}}} if method == "PUT" else {}
        assert await api.call(method, f"{API}/voices/{private_id}", **kwargs) == (
            404,
            neo_error("Voice not found", 404),
        )
        denied = neo_error("Permission denied: this voice belongs to someone else", 403)
        assert await api.call(method, f"{API}/voices/{public_id}", **kwargs) == (403, denied)
        assert await api.call(method, f"{API}/voices/{NARRATOR}", **kwargs) == (403, denied)
    assert (await other.call("GET", f"{API}/voices/{public_id}"))[1]["voice"][
        "name"
    ] == "Their Public"


async def test_put_rejects_malformed_bodies(api: Api) -> None:
    _, created = await api.create_voice("Some Voice")
    url = f"{API}/voices/{created['voice']['id']}"
    status, body = await api.call("PUT", url, json={"nope": 1})
    assert (status, body["comment"]) == (400, 'Invalid voice: expected {"voice": {...}}')
    status, body = await api.call(
        "PUT", url, data=b"{broken", headers={**auth(api.token), "Content-Type": "application/json"}
    )
    assert status == 400 and body["command"] == "neo_error"


async def test_delete_removes_the_voice(api: Api) -> None:
    _, created = await api.create_voice("Short Lived")
    url = f"{API}/voices/{created['voice']['id']}"
    assert await api.call("DELETE", url) == (200, {})
    assert (await api.call("GET", url))[0] == 404
    assert (await api.call("DELETE", url))[0] == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{API}/voices/{NARRATOR}"),
        ("GET", f"{API}/voices/search?query=a"),
        ("GET", f"{API}/voices/user"),
        ("GET", f"{API}/voices/system"),
        ("GET", f"{API}/voices/featured"),
        ("POST", f"{API}/voices/"),
        ("PUT", f"{API}/voices/{NARRATOR}"),
        ("DELETE", f"{API}/voices/{NARRATOR}"),
        ("POST", f"{API}/memo/replay"),
        ("POST", "/plus/chat/character/x/voice_override/update/"),
        ("POST", "/plus/chat/character/x/voice_override/delete/"),
        ("GET", "/plus/chat/character/x/voice_override/"),
        ("POST", "/plus/chat/upload-image/"),
        ("POST", "/beta/chat/upload-image/"),
        ("POST", "/plus/chat/character/generate-avatar-options"),
        ("POST", "/plus/chat/generate-image/"),
    ],
)
async def test_bad_or_missing_token_is_401(api: Api, method: str, path: str) -> None:
    assert await api.call(method, path, headers={}) == (
        401,
        {"detail": "Authentication credentials were not provided."},
    )
    assert await api.call(method, path, headers=auth("0" * 40)) == (
        401,
        {"detail": "Invalid token."},
    )


# ---- TTS replay ---------------------------------------------------------------------------


async def test_replay_serves_a_valid_deterministic_mp3(
    api: Api, http: aiohttp.ClientSession, emu: Emulator
) -> None:
    turn = await new_chat(http, emu)
    status, body = await api.call("POST", f"{API}/memo/replay", json=replay_body(turn))
    assert status == 200
    assert set(body) == {"replayUrl"}
    url = body["replayUrl"]
    assert url.startswith(emu.url + "/") and url.endswith(".mp3")
    async with http.get(url) as resp:  # no token: a storage URL
        assert resp.status == 200
        assert resp.content_type == "audio/mpeg"
        audio = await resp.read()
    assert 10 <= mp3_frames(audio) <= 40
    again = await api.call("POST", f"{API}/memo/replay", json=replay_body(turn))
    assert again == (200, body)
    other_voice = voice_id_for("Deep Captain")
    _, second = await api.call(
        "POST", f"{API}/memo/replay", json=replay_body(turn, voiceId=other_voice)
    )
    assert second["replayUrl"] != url
    _, audio2 = await api.call("GET", second["replayUrl"], headers={})
    assert audio2 != audio


async def test_replay_by_voice_query_and_default(
    api: Api, http: aiohttp.ClientSession, emu: Emulator
) -> None:
    turn = await new_chat(http, emu)
    by_id = await api.call(
        "POST", f"{API}/memo/replay", json=replay_body(turn, voiceId=voice_id_for("Soft Whisper"))
    )
    by_name = await api.call(
        "POST", f"{API}/memo/replay", json=replay_body(turn, voiceId="", voiceQuery="soft whisper")
    )
    partial = await api.call(
        "POST", f"{API}/memo/replay", json=replay_body(turn, voiceId="", voiceQuery="whisp")
    )
    assert by_id == by_name == partial
    default = await api.call("POST", f"{API}/memo/replay", json=replay_body(turn, voiceId=""))
    narrator = await api.call("POST", f"{API}/memo/replay", json=replay_body(turn))
    assert default == narrator  # no voice, no override: the first system voice
    echo = emu.character("Echo").id
    captain = voice_id_for("Deep Captain")
    await api.call(
        "POST", f"/plus/chat/character/{echo}/voice_override/update/", json={"voice_id": captain}
    )
    overridden = await api.call("POST", f"{API}/memo/replay", json=replay_body(turn, voiceId=""))
    assert overridden == await api.call(
        "POST", f"{API}/memo/replay", json=replay_body(turn, voiceId=captain)
    )


async def test_replay_errors(
    api: Api, other: Api, http: aiohttp.ClientSession, emu: Emulator
) -> None:
    turn = await new_chat(http, emu)
    replay = f"{API}/memo/replay"

    async def error(**extra: Any) -> tuple[int, Any]:
        return await api.call("POST", replay, json=replay_body(turn, **extra))

    assert await error(voiceId=str(uuid.uuid4())) == (404, neo_error("Voice not found", 404))
    assert await error(voiceId="", voiceQuery="no such voice") == (
        404,
        neo_error("Voice not found", 404),
    )
    assert await error(turnId=str(uuid.uuid4())) == (404, neo_error("Turn not found", 404))
    assert await error(candidateId=str(uuid.uuid4())) == (
        404,
        neo_error("Turn candidate not found", 404),
    )
    missing = await error(roomId=str(uuid.uuid4()))
    assert missing == (404, neo_error("Chat not found", 404))
    assert await other.call("POST", replay, json=replay_body(turn)) == missing  # not theirs
    _, private = await other.create_voice("Their Voice")
    assert await error(voiceId=private["voice"]["id"]) == (404, neo_error("Voice not found", 404))
    status, body = await error(turnId="")
    assert (status, body["comment"]) == (
        400,
        "Invalid request: candidateId, roomId and turnId are required",
    )
    status, body = await api.call("POST", replay, json={"roomId": 5})
    assert status == 400 and body["comment"].startswith("Invalid request: ")
    status, body = await api.call(
        "POST", replay, data=b"{", headers={**auth(api.token), "Content-Type": "application/json"}
    )
    assert status == 400 and body["command"] == "neo_error"


async def test_unknown_audio_is_404(api: Api) -> None:
    assert (await api.call("GET", "/cdn/audio/replay/deadbeef.mp3", headers={}))[0] == 404
    assert (await api.call("GET", f"/cdn/audio/voices/{uuid.uuid4()}.mp3", headers={}))[0] == 404


# ---- per-character voice override ---------------------------------------------------------


async def test_override_lifecycle_shows_in_settings(api: Api, emu: Emulator) -> None:
    sage = emu.character("Sage").id
    base = f"/plus/chat/character/{sage}/voice_override"
    assert await api.call("GET", f"{base}/") == (200, {"voice_id": None})
    assert await api.call("POST", f"{base}/update/", json={"voice_id": NARRATOR}) == (
        200,
        {"success": True},
    )
    assert await api.call("GET", f"{base}/") == (200, {"voice_id": NARRATOR})
    assert await api.call("GET", f"/beta/chat/character/{sage}/voice_override/") == (
        200,
        {"voice_id": NARRATOR},
    )
    _, settings = await api.call("GET", "/plus/chat/user/settings/")
    assert settings["voiceOverrides"] == {sage: NARRATOR}
    assert await api.call("POST", f"{base}/delete/") == (200, {"success": True})
    assert await api.call("GET", f"{base}/") == (200, {"voice_id": None})
    _, settings = await api.call("GET", "/plus/chat/user/settings/")
    assert settings["voiceOverrides"] == {}
    assert await api.call("POST", f"{base}/delete/") == (200, {"success": True})  # idempotent


async def test_overrides_are_per_user(api: Api, other: Api, emu: Emulator) -> None:
    sage = emu.character("Sage").id
    await api.call(
        "POST", f"/plus/chat/character/{sage}/voice_override/update/", json={"voice_id": NARRATOR}
    )
    assert await other.call("GET", f"/plus/chat/character/{sage}/voice_override/") == (
        200,
        {"voice_id": None},
    )


async def test_override_errors(api: Api, other: Api, emu: Emulator) -> None:
    sage = emu.character("Sage").id
    base = f"/plus/chat/character/{sage}/voice_override"
    missing_voice = (404, {"success": False, "error": "Voice not found"})
    assert (
        await api.call("POST", f"{base}/update/", json={"voice_id": str(uuid.uuid4())})
        == missing_voice
    )
    _, private = await other.create_voice("Their Voice")
    assert (
        await api.call("POST", f"{base}/update/", json={"voice_id": private["voice"]["id"]})
        == missing_voice
    )
    required = (400, {"success": False, "error": "voice_id is required"})
    assert await api.call("POST", f"{base}/update/", json={}) == required
    assert await api.call("POST", f"{base}/update/", json={"voice_id": 3}) == required
    unknown = "/plus/chat/character/" + "x" * 43 + "/voice_override"
    for method, path in (("GET", "/"), ("POST", "/update/"), ("POST", "/delete/")):
        kwargs = {"json": {"voice_id": NARRATOR}} if path == "/update/" else {}
        assert await api.call(method, unknown + path, **kwargs) == (404, {"detail": "Not found."})


# ---- images -------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/plus", "/beta"])
async def test_upload_image_and_fetch_it_from_the_cdn(
    api: Api, http: aiohttp.ClientSession, prefix: str
) -> None:
    image = solid_webp((10, 20, 30), 64)
    status, body = await api.upload(image, prefix=prefix)
    assert status == 200
    assert body["status"] == "OK"
    assert re.fullmatch(r"uploaded/\d{4}/\d\d/\d\d/[0-9a-f-]{36}\.webp", body["value"])
    for bucket in ("user", "avatars"):
        async with http.get(
            f"{api.emu.url}/cdn/i/400/static/{bucket}/{body['value']}?webp=true&anim=0"
        ) as resp:
            assert resp.status == 200
            assert resp.content_type == "image/webp"
            assert await resp.read() == image


async def test_upload_keeps_the_real_type(api: Api) -> None:
    status, body = await api.upload(PNG)
    assert status == 200 and body["value"].endswith(".png")
    status, data = await api.call("GET", f"/cdn/i/80/static/user/{body['value']}", headers={})
    assert (status, data) == (200, PNG)


async def test_upload_errors(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    not_image = (400, {"error": NOT_AN_IMAGE})
    assert await api.upload(b"GIF but not really") == not_image
    assert await api.upload(b"") == not_image
    status, body = await api.upload(PNG, field="file")
    assert (status, body) == (
        400,
        {"error": "No image: send the file in a multipart field named image"},
    )
    status, body = await api.call("POST", "/plus/chat/upload-image/", json={"image": "x"})
    assert status == 400 and body["error"].startswith(
        "Invalid upload: expected multipart/form-data"
    )
    monkeypatch.setattr(media_images, "MAX_IMAGE_BYTES", 1000)
    assert await api.upload(PNG + bytes(2000)) == (
        400,
        {"error": "Image too large: the limit is 1000 bytes"},
    )


async def test_avatar_options_are_served_deterministic_webps(api: Api, emu: Emulator) -> None:
    body = {"prompt": "a red fox", "num_candidates": 3, "model_version": "v1"}
    status, first = await api.call(
        "POST", "/plus/chat/character/generate-avatar-options", json=body
    )
    assert status == 200
    assert [set(r) for r in first["result"]] == [{"prompt", "url"}] * 3
    assert all(r["prompt"] == "a red fox" for r in first["result"])
    urls = [r["url"] for r in first["result"]]
    assert len(set(urls)) == 3
    colours = set()
    for url in urls:
        assert url.startswith(f"{emu.url}/cdn/i/400/static/user/")
        status, data = await api.call("GET", url, headers={})
        assert status == 200
        width, height, *rgb = webp_colour(data)
        assert (width, height) == (256, 256)
        colours.add(tuple(rgb))
    assert len(colours) == 3
    assert await api.call("POST", "/beta/chat/character/generate-avatar-options", json=body) == (
        200,
        first,
    )
    status, default = await api.call(
        "POST", "/plus/chat/character/generate-avatar-options", json={"prompt": "x"}
    )
    assert status == 200 and len(default["result"]) == 4


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"prompt": "", "num_candidates": 2}, "prompt is required"),
        ({"num_candidates": 2}, "prompt is required"),
        ({"prompt": "x" * 1001}, "prompt must be at most 1000 characters"),
        ({"prompt": "ok", "num_candidates": 0}, "num_candidates must be 1 to 8"),
        ({"prompt": "ok", "num_candidates": 9}, "num_candidates must be 1 to 8"),
        ({"prompt": "ok", "num_candidates": True}, "num_candidates must be 1 to 8"),
        (["prompt"], "Expected a JSON object"),
    ],
)
async def test_avatar_options_errors(api: Api, body: Any, error: str) -> None:
    path = "/plus/chat/character/generate-avatar-options"
    assert await api.call("POST", path, json=body) == (400, {"error": error})


async def test_generate_image(api: Api, emu: Emulator) -> None:
    status, body = await api.call(
        "POST", "/plus/chat/generate-image/", json={"image_description": "a boat"}
    )
    assert status == 200 and set(body) == {"image_rel_path"}
    assert body["image_rel_path"].startswith(f"{emu.url}/cdn/i/400/static/user/")
    status, data = await api.call("GET", body["image_rel_path"], headers={})
    assert status == 200 and webp_colour(data)[:2] == (256, 256)
    assert await api.call("POST", "/plus/chat/generate-image/", json={}) == (
        400,
        {"error": "prompt is required"},
    )


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def trpc_upload(
    api: Api, value: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    body = {"0": {"json": {"imageDataUrl": value}}}
    return await api.call(
        "POST",
        "/web/api/trpc/user.uploadAvatar?batch=1",
        json=body,
        headers=auth(api.token) if headers is None else headers,
    )


async def test_trpc_upload_avatar(api: Api, emu: Emulator) -> None:
    status, body = await trpc_upload(api, data_url(PNG))
    assert status == 200
    name = body[0]["result"]["data"]["json"]
    assert re.fullmatch(r"uploaded/\d{4}/\d\d/\d\d/[0-9a-f-]{36}\.png", name)
    assert await api.call(
        "GET", f"/cdn/i/400/static/avatars/{name}?webp=true&anim=0", headers={}
    ) == (200, PNG)
    cookie = {"Cookie": f"web-next-auth={emu.token}"}
    status, body = await trpc_upload(api, data_url(PNG), headers=cookie)
    assert status == 200 and body[0]["result"]["data"]["json"] != name


@pytest.mark.parametrize(
    ("value", "status", "message"),
    [
        ("not a data url", 400, "imageDataUrl must be a data:<type>;base64,<data> URL"),
        (None, 400, "imageDataUrl must be a data:<type>;base64,<data> URL"),
        ("data:image/png;base64,@@@@", 400, "imageDataUrl holds malformed base64"),
        (
            data_url(b"plain text", "text/plain"),
            400,
            NOT_AN_IMAGE,
        ),
    ],
)
async def test_trpc_upload_avatar_errors(api: Api, value: Any, status: int, message: str) -> None:
    got_status, body = await trpc_upload(api, value)
    assert got_status == status
    error = body[0]["error"]["json"]
    assert error["message"] == message
    assert error["data"]["httpStatus"] == status
    assert error["data"]["path"] == "user.uploadAvatar"


async def test_trpc_upload_avatar_needs_a_user(api: Api) -> None:
    status, body = await trpc_upload(api, data_url(PNG), headers={})
    assert status == 401
    assert body[0]["error"]["json"]["data"]["code"] == "UNAUTHORIZED"


async def test_seed_avatars_and_unknown_images(api: Api, emu: Emulator) -> None:
    sage = emu.character("Sage")
    status, data = await api.call(
        "GET", f"/cdn/i/80/static/avatars/{sage.avatar_file_name}", headers={}
    )
    assert status == 200 and webp_colour(data)[:2] == (256, 256)
    assert (await api.call("GET", f"/cdn/i/80/static/user/{sage.avatar_file_name}", headers={}))[
        0
    ] == 404
    assert (await api.call("GET", "/cdn/i/400/static/user/uploaded/none.webp", headers={}))[
        0
    ] == 404
    assert (await api.call("GET", "/cdn/i/big/static/user/x.webp", headers={}))[0] == 404


# ---- persistence --------------------------------------------------------------------------


async def test_state_file_keeps_media_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    async with Emulator(state_file=state) as first, aiohttp.ClientSession() as http:
        api = Api(http, first, first.token)
        _, created = await api.create_voice("Kept Voice")
        voice_id = created["voice"]["id"]
        sage = first.character("Sage").id
        await api.call(
            "POST",
            f"/plus/chat/character/{sage}/voice_override/update/",
            json={"voice_id": voice_id},
        )
        _, upload = await api.upload(PNG)
        turn = await new_chat(http, first)
        _, replay = await api.call("POST", f"{API}/memo/replay", json=replay_body(turn))
        key = replay["replayUrl"].rsplit("/", 1)[1]
    async with Emulator(state_file=state) as second, aiohttp.ClientSession() as http:
        api = Api(http, second, second.token)
        status, body = await api.call("GET", f"{API}/voices/{voice_id}")
        assert status == 200 and body["voice"]["name"] == "Kept Voice"
        assert await api.call("GET", f"/plus/chat/character/{sage}/voice_override/") == (
            200,
            {"voice_id": voice_id},
        )
        assert await api.call("GET", f"/cdn/i/400/static/user/{upload['value']}", headers={}) == (
            200,
            PNG,
        )
        status, audio = await api.call("GET", f"/cdn/audio/replay/{key}", headers={})
        assert status == 200 and mp3_frames(audio) >= 10


# ---- the synthesised files themselves -------------------------------------------------------


def test_silent_mp3_is_a_chain_of_frames() -> None:
    counts = {mp3_frames(silent_mp3(str(i), title="t")) for i in range(50)}
    assert min(counts) >= 10 and max(counts) <= 40 and len(counts) > 5


def test_solid_webp_round_trips_its_colour() -> None:
    assert webp_colour(solid_webp((1, 2, 3), 1)) == (1, 1, 1, 2, 3)
    assert webp_colour(solid_webp((255, 0, 128), 16384)) == (16384, 16384, 255, 0, 128)
    with pytest.raises(ValueError, match="size"):
        solid_webp((0, 0, 0), 0)
