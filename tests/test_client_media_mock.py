"""Tier 2: ``client.voices`` and ``client.images`` over MockTransport.

A handler plays neo's multimodal API, the plus media routes and the CDN with literal
bodies (docs/protocol.md §11): the exact requests (multipart bodies included), the camelCase
voice objects, TTS replay by id, name or default, overrides, uploads and downloads, and
in-band refusals. HTTP error shapes are in tests/test_client_errors_mock.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from caiclient import (
    AsyncClient,
    CharacterNotFound,
    ChatNotFound,
    NotFound,
    ProtocolError,
    ServerError,
    TurnNotFound,
    ValidationError,
    VoiceNotFound,
)
from caiclient.models import Candidate, Turn, TurnKey, Voice
from caiclient.models._media import VoiceCreator
from caiclient.protocol.http import Response
from caiclient.transports import MockTransport
from mock_service import (
    CHARACTER_ID,
    CHAT_ID,
    NEO,
    PLUS,
    TOKEN,
    USER_ID,
    VOICE_ID,
    VOICES,
    Service,
    Wire,
    json_body,
    make_client,
    neo_error_body,
    text_body,
    urls,
    wire,
)

REPLAY = f"{NEO}/multimodal/api/v1/memo/replay"
OVERRIDE = f"{PLUS}/chat/character/{CHARACTER_ID}/voice_override"
UPLOAD = f"{PLUS}/chat/upload-image/"
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x14\xc4" * 16
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(16)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L" + bytes(14)
AUDIO_URL = "https://storage.googleapis.com/tts/7f3e.mp3"

VOICE = {
    "id": VOICE_ID,
    "name": "Narrator",
    "description": "A calm voice.",
    "gender": "neutral",
    "visibility": "public",
    "creatorInfo": {"id": USER_ID, "source": "user", "username": "ada_l"},
    "audioSourceType": "file",
    "previewText": "Good day!",
    "previewAudioURI": "https://storage.googleapis.com/previews/narrator.mp3",
    "backendProvider": "cai",
    "backendId": "backend-7",
    "internalStatus": "active",
    "lastUpdateTime": "2025-04-05T06:07:08Z",
}
"""A voice as ``GET /voices/{id}`` sends it (docs/protocol.md §11.2)."""

PARSED = Voice(
    id=VOICE_ID,
    name="Narrator",
    description="A calm voice.",
    gender="neutral",
    visibility="public",
    creator_info=VoiceCreator(id=USER_ID, source="user", username="ada_l"),
    audio_source_type="file",
    preview_text="Good day!",
    preview_audio_uri="https://storage.googleapis.com/previews/narrator.mp3",
    backend_provider="cai",
    backend_id="backend-7",
    internal_status="active",
    last_update_time=datetime(2025, 4, 5, 6, 7, 8, tzinfo=timezone.utc),
)

TURN = Turn(
    turn_key=TurnKey(chat_id=CHAT_ID, turn_id="turn-1"),
    candidates=[
        Candidate(candidate_id="newest", raw_content="B"),
        Candidate(candidate_id="primary", raw_content="A"),
    ],
    primary_candidate_id="primary",
)


def parts(sent: Wire) -> list[Message]:
    """The parts of a multipart/form-data body, parsed with the standard library."""
    assert sent.body is not None
    content_type = sent.headers["Content-Type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    document = f"Content-Type: {content_type}\r\n\r\n".encode() + sent.body
    message = message_from_bytes(document)
    assert message.is_multipart()
    return list(message.get_payload())  # type: ignore[arg-type]


# ---- reading voices ---------------------------------------------------------------------------


async def test_get_maps_the_camel_case_voice(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", f"{VOICES}/{VOICE_ID}", json_body({"voice": VOICE}))
    voice = await api.voices.get(VOICE_ID)
    assert voice == PARSED
    assert (voice.creator_id, voice.creator_username, voice.is_public, voice.is_draft) == (
        USER_ID,
        "ada_l",
        True,
        False,
    )
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params, sent.body) == (
        "GET",
        f"{VOICES}/{VOICE_ID}",
        None,
        None,
    )


async def test_a_voice_with_only_an_id_has_defaults(service: Service, api: AsyncClient) -> None:
    service.route("GET", f"{VOICES}/{VOICE_ID}", json_body({"voice": {"id": VOICE_ID}}))
    voice = await api.voices.get(VOICE_ID)
    assert voice == Voice(id=VOICE_ID)
    assert (voice.visibility, voice.creator_id, voice.is_public) == ("private", "", False)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Voice not found", 404), 404), VoiceNotFound),
        (json_body({"voice": None}), ProtocolError),
        (json_body({"voice": {"name": "no id"}}), ProtocolError),
        (json_body({"voice": {**VOICE, "lastUpdateTime": "yesterday"}}), ProtocolError),
    ],
)
async def test_get_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("GET", f"{VOICES}/{VOICE_ID}", answer)
    with pytest.raises(error):
        await api.voices.get(VOICE_ID)


@pytest.mark.parametrize(
    ("args", "kwargs", "params"),
    [
        (("narr",), {}, {"query": "narr"}),
        ((), {"creator": "ada_l"}, {"creatorInfo.username": "ada_l"}),
        (("calm",), {"creator": "ada_l"}, {"query": "calm", "creatorInfo.username": "ada_l"}),
        (("a & b ü",), {}, {"query": "a & b ü"}),
    ],
)
async def test_search_parameters(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    params: dict[str, str],
) -> None:
    service.route("GET", f"{VOICES}/search", json_body({"voices": [VOICE]}))
    assert await api.voices.search(*args, **kwargs) == [PARSED]
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("GET", f"{VOICES}/search", params)


@pytest.mark.parametrize("which", ["mine", "system", "featured"])
async def test_lists(
    service: Service, api: AsyncClient, transport: MockTransport, which: str
) -> None:
    path = {"mine": "user", "system": "system", "featured": "featured"}[which]
    system = {"id": "v-sys", "name": "Deep Captain", "creatorInfo": {"source": "system"}}
    service.route("GET", f"{VOICES}/{path}", json_body({"voices": [VOICE, system]}))
    found = await getattr(api.voices, which)()
    assert [v.id for v in found] == [VOICE_ID, "v-sys"]
    assert found[1].creator_info == VoiceCreator(source="system")
    assert urls(transport.sent) == [f"GET {VOICES}/{path}"]


@pytest.mark.parametrize("body", [{}, {"voices": None}, {"voices": []}])
async def test_empty_lists(service: Service, api: AsyncClient, body: Any) -> None:
    service.route("GET", f"{VOICES}/search", json_body(body))
    assert await api.voices.search("nothing") == []


@pytest.mark.parametrize(
    "body",
    [
        {"error": "Invalid voice: name"},
        {"success": False, "error": "Invalid voice: name"},
        {"status": "NOT_OK", "error": "Invalid voice: name"},
    ],
    ids=["error", "success-false", "not-ok"],
)
@pytest.mark.parametrize("call", ["get", "update", "tts", "mine"])
async def test_voice_refusals_in_a_200_body_are_server_errors(
    service: Service, api: AsyncClient, body: dict[str, Any], call: str
) -> None:
    for method, url in [
        ("GET", f"{VOICES}/{VOICE_ID}"),
        ("PUT", f"{VOICES}/{VOICE_ID}"),
        ("POST", REPLAY),
        ("GET", f"{VOICES}/user"),
    ]:
        service.route(method, url, json_body(body))
    calls = {
        "get": lambda: api.voices.get(VOICE_ID),
        "update": lambda: api.voices.update(PARSED, name="New Name"),
        "tts": lambda: api.voices.tts(TURN),
        "mine": lambda: api.voices.mine(),
    }
    with pytest.raises(ServerError, match="Invalid voice") as caught:
        await calls[call]()
    assert caught.value.status == 200


# ---- creating, updating, deleting -------------------------------------------------------------

DRAFT = {**VOICE, "id": "draft-1", "visibility": "private", "internalStatus": "draft"}


def published(visibility: str) -> Response:
    return json_body({"voice": {**DRAFT, "visibility": visibility, "internalStatus": "active"}})


async def test_create_uploads_a_draft_then_publishes_it(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", f"{VOICES}/", json_body({"voice": DRAFT}, 201))
    service.route("PUT", f"{VOICES}/draft-1", published("public"))
    voice = await api.voices.create(
        MP3, name="My Voice", description="Mine.", public=True, preview_text="Hi there"
    )
    assert (voice.id, voice.is_public, voice.internal_status) == ("draft-1", True, "active")
    upload, save = wire(transport.sent)
    assert (upload.method, upload.url, upload.json) == ("POST", f"{VOICES}/", None)
    file_part, json_part = parts(upload)
    assert file_part.get_param("name", header="content-disposition") == "file"
    assert file_part.get_filename() == "input.mp3"
    assert file_part.get_content_type() == "audio/mpeg"
    assert file_part.get_payload(decode=True) == MP3
    assert json_part.get_param("name", header="content-disposition") == "json"
    assert json_part.get_filename() is None
    assert json.loads(json_part.get_payload(decode=True)) == {
        "voice": {
            "name": "My Voice",
            "description": "Mine.",
            "gender": "neutral",
            "visibility": "private",
            "previewText": "Hi there",
            "audioSourceType": "file",
        }
    }
    assert (save.method, save.url) == ("PUT", f"{VOICES}/draft-1")
    assert save.json == {
        "voice": {
            "id": "draft-1",
            "name": "My Voice",
            "description": "Mine.",
            "gender": "neutral",
            "visibility": "public",
            "creatorInfo": {"id": USER_ID, "source": "user", "username": "ada_l"},
            "audioSourceType": "file",
            "previewText": "Hi there",
            "previewAudioURI": VOICE["previewAudioURI"],
            "backendProvider": "cai",
            "backendId": "backend-7",
            "internalStatus": "draft",
            "lastUpdateTime": "0001-01-01T00:00:00Z",
        }
    }


async def test_create_from_a_file_sends_its_sniffed_type(
    service: Service, api: AsyncClient, transport: MockTransport, tmp_path: Path
) -> None:
    service.route("POST", f"{VOICES}/", json_body({"voice": {"id": "draft-2"}}))
    service.route("PUT", f"{VOICES}/draft-2", published("private"))
    sample = tmp_path / "sample.wav"
    sample.write_bytes(WAV)
    voice = await api.voices.create(sample, name="  Wave  ")
    assert not voice.is_public
    upload, save = wire(transport.sent)
    file_part, json_part = parts(upload)
    assert (file_part.get_content_type(), file_part.get_payload(decode=True)) == ("audio/wav", WAV)
    meta = json.loads(json_part.get_payload(decode=True))["voice"]
    assert meta["name"] == "Wave" and meta["previewText"].startswith("Good day!")
    body = save.json["voice"]
    assert (body["visibility"], body["name"]) == ("private", "Wave")
    # A draft without these fields gets the web client's defaults.
    assert (body["gender"], body["backendProvider"], body["backendId"]) == (
        "neutral",
        "cai",
        "draft-2",
    )
    assert body["creatorInfo"] == {"id": "", "source": "user", "username": ""}


async def test_create_refused_at_the_upload_sends_no_put(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    body = neo_error_body("Invalid upload: audio too large", 400)
    service.route("POST", f"{VOICES}/", json_body(body, 400))
    with pytest.raises(ServerError, match="too large") as caught:
        await api.voices.create(MP3, name="My Voice")
    assert caught.value.status == 400
    assert urls(transport.sent) == [f"POST {VOICES}/"]


async def test_update_of_a_voice_object_is_one_put(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("PUT", f"{VOICES}/{VOICE_ID}", json_body({"voice": VOICE}))
    await api.voices.update(PARSED, description="Calmer.")
    [sent] = wire(transport.sent)
    voice = sent.json["voice"]
    assert (voice["name"], voice["description"], voice["visibility"]) == (
        "Narrator",
        "Calmer.",
        "public",
    )
    assert (voice["previewText"], voice["internalStatus"]) == ("Good day!", "draft")


async def test_update_by_id_reads_the_voice_first(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", f"{VOICES}/{VOICE_ID}", json_body({"voice": VOICE}))
    service.route("PUT", f"{VOICES}/{VOICE_ID}", json_body({"voice": VOICE}))
    await api.voices.update(VOICE_ID, name="Renamed", public=False, preview_text="Hello")
    assert urls(transport.sent) == [f"GET {VOICES}/{VOICE_ID}", f"PUT {VOICES}/{VOICE_ID}"]
    voice = wire(transport.sent)[1].json["voice"]
    assert (voice["name"], voice["visibility"], voice["previewText"]) == (
        "Renamed",
        "private",
        "Hello",
    )
    assert voice["description"] == "A calm voice."


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Permission denied: not your voice", 403), 403), ServerError),
        (json_body(neo_error_body("Voice not found", 404), 404), VoiceNotFound),
        (json_body(neo_error_body("Invalid voice: name", 400), 400), ServerError),
    ],
)
async def test_update_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("PUT", f"{VOICES}/{VOICE_ID}", answer)
    with pytest.raises(error):
        await api.voices.update(PARSED, name="Stolen")


@pytest.mark.parametrize("ref", [VOICE_ID, PARSED], ids=["id", "voice"])
async def test_delete(
    service: Service, api: AsyncClient, transport: MockTransport, ref: Any
) -> None:
    service.route("DELETE", f"{VOICES}/{VOICE_ID}", Response(200, {}, b""))
    assert await api.voices.delete(ref) is None
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.body) == ("DELETE", f"{VOICES}/{VOICE_ID}", None)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Permission denied: not yours", 403), 403), ServerError),
        (json_body(neo_error_body("Voice not found", 404), 404), VoiceNotFound),
    ],
)
async def test_delete_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("DELETE", f"{VOICES}/{VOICE_ID}", answer)
    with pytest.raises(error):
        await api.voices.delete(VOICE_ID)


# ---- text to speech ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("voice", "kwargs", "expected"),
    [
        (None, {}, {"voiceId": ""}),
        (VOICE_ID, {}, {"voiceId": VOICE_ID}),
        (VOICE_ID.upper(), {}, {"voiceId": VOICE_ID.upper()}),
        (PARSED, {}, {"voiceId": VOICE_ID}),
        ("deep captain", {}, {"voiceId": "", "voiceQuery": "deep captain"}),
        ("  soft whisper ", {}, {"voiceId": "", "voiceQuery": "soft whisper"}),
        (None, {"candidate_id": "newest"}, {"voiceId": "", "candidateId": "newest"}),
    ],
)
async def test_tts_request(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    voice: Any,
    kwargs: dict[str, Any],
    expected: dict[str, str],
) -> None:
    service.route("POST", REPLAY, json_body({"replayUrl": AUDIO_URL}))
    assert await api.voices.tts(TURN, voice, **kwargs) == AUDIO_URL
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", REPLAY)
    base = {"candidateId": "primary", "roomId": CHAT_ID, "turnId": "turn-1"}
    assert sent.json == {**base, **expected}


async def test_tts_is_safe_to_send_again(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route(
        "POST",
        REPLAY,
        json_body({"detail": "unavailable"}, 503),
        json_body({"replayUrl": AUDIO_URL}),
    )
    assert await api.voices.tts(TURN) == AUDIO_URL
    assert urls(transport.sent) == [f"POST {REPLAY}"] * 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body(neo_error_body("Voice not found", 404), 404), VoiceNotFound),
        (json_body(neo_error_body("Turn not found", 404), 404), TurnNotFound),
        (json_body(neo_error_body("Turn candidate not found", 404), 404), TurnNotFound),
        (json_body(neo_error_body("Chat not found", 404), 404), ChatNotFound),
        (json_body({"replayUrl": ""}), ProtocolError),
        (json_body({"replayUrl": "file:///etc/passwd"}), ProtocolError),
        (json_body({}), ProtocolError),
    ],
)
async def test_tts_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("POST", REPLAY, answer)
    with pytest.raises(error):
        await api.voices.tts(TURN, "somebody")


async def test_tts_bytes_fetches_the_audio_without_the_token(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", REPLAY, json_body({"replayUrl": AUDIO_URL}))
    service.route("GET", AUDIO_URL, Response(200, {"content-type": "audio/mpeg"}, MP3))
    assert await api.voices.tts_bytes(TURN, VOICE_ID) == MP3
    replay, audio = transport.sent
    assert replay.headers["Authorization"] == f"Token {TOKEN}"
    assert (audio.request.method, audio.request.url) == ("GET", AUDIO_URL)
    assert dict(audio.headers) == {}


async def test_tts_bytes_of_audio_that_is_gone(service: Service, api: AsyncClient) -> None:
    service.route("POST", REPLAY, json_body({"replayUrl": AUDIO_URL}))
    service.route("GET", AUDIO_URL, text_body("Not Found", 404))
    with pytest.raises(NotFound):
        await api.voices.tts_bytes(TURN)


# ---- per-character overrides ------------------------------------------------------------------


async def test_set_for_character(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", f"{OVERRIDE}/update/", json_body({"success": True}))
    assert await api.voices.set_for_character(CHARACTER_ID, PARSED) is None
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.json) == (
        "POST",
        f"{OVERRIDE}/update/",
        {"voice_id": VOICE_ID},
    )


async def test_clear_for_character_posts_no_body(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", f"{OVERRIDE}/delete/", json_body({"success": True}))
    assert await api.voices.clear_for_character(CHARACTER_ID) is None
    [sent] = transport.sent
    assert (sent.request.method, sent.request.url, sent.body) == (
        "POST",
        f"{OVERRIDE}/delete/",
        None,
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"voice_id": VOICE_ID}, VOICE_ID),
        ({"voice_id": None}, None),
        ({"voice_id": ""}, None),
        ({}, None),
    ],
)
async def test_for_character(
    service: Service, api: AsyncClient, transport: MockTransport, body: Any, expected: Any
) -> None:
    service.route("GET", f"{OVERRIDE}/", json_body(body))
    assert await api.voices.for_character(CHARACTER_ID) == expected
    assert urls(transport.sent) == [f"GET {OVERRIDE}/"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body({"success": False, "error": "Voice not found"}, 404), VoiceNotFound),
        (json_body({"detail": "Not found."}, 404), CharacterNotFound),
        (json_body({"success": False, "error": "Overrides are disabled"}), ServerError),
        (json_body({"status": "NOT_OK", "error": "nope"}), ServerError),
        (Response(200, {}, b"[]"), ProtocolError),
        (Response(200, {}, b""), ProtocolError),
    ],
)
async def test_set_for_character_refusals(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("POST", f"{OVERRIDE}/update/", answer)
    with pytest.raises(error) as caught:
        await api.voices.set_for_character(CHARACTER_ID, VOICE_ID)
    if type(caught.value) is ServerError:
        assert caught.value.status == 200


# ---- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kwargs", "filename", "content_type"),
    [
        (PNG, {}, "image.png", "image/png"),
        (WEBP, {}, "image.webp", "image/webp"),
        (b"\xff\xd8\xff\xe0" + bytes(8), {}, "image.jpg", "image/jpeg"),
        (b"GIF89a" + bytes(8), {}, "image.gif", "image/gif"),
        (
            PNG,
            {"filename": "avatar.png", "content_type": "image/x-png"},
            "avatar.png",
            "image/x-png",
        ),
    ],
)
async def test_upload_bytes(
    service: Service,
    api: AsyncClient,
    transport: MockTransport,
    data: bytes,
    kwargs: dict[str, str],
    filename: str,
    content_type: str,
) -> None:
    service.route("POST", UPLOAD, json_body({"status": "OK", "value": "uploaded/2025/x.webp"}))
    assert await api.images.upload(data, **kwargs) == "uploaded/2025/x.webp"
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", UPLOAD)
    [part] = parts(sent)
    assert part.get_param("name", header="content-disposition") == "image"
    assert (part.get_filename(), part.get_content_type()) == (filename, content_type)
    assert part.get_payload(decode=True) == data


async def test_upload_a_file_by_path(
    service: Service, api: AsyncClient, transport: MockTransport, tmp_path: Path
) -> None:
    service.route("POST", UPLOAD, json_body({"status": "OK", "value": "uploaded/y.png"}))
    picture = tmp_path / "my picture.png"
    picture.write_bytes(PNG)
    assert await api.images.upload(str(picture)) == "uploaded/y.png"
    [part] = parts(wire(transport.sent)[0])
    assert part.get_filename() == "my picture.png"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body({"error": "Upload a valid image."}), ServerError),
        (json_body({"error": "Upload a valid image."}, 400), ServerError),
        (json_body({"status": "OK"}), ProtocolError),
        (json_body({"status": "OK", "value": ""}), ProtocolError),
        (Response(200, {}, b"uploaded/x.webp"), ProtocolError),
    ],
)
async def test_upload_refusals(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("POST", UPLOAD, answer)
    with pytest.raises(error):
        await api.images.upload(PNG)


async def test_avatar_options(service: Service, api: AsyncClient, transport: MockTransport) -> None:
    url = f"{PLUS}/chat/character/generate-avatar-options"
    result = [
        {"prompt": "a lighthouse", "url": "https://characterai.io/temp/1.webp"},
        {"prompt": "a lighthouse"},
        {"url": "https://characterai.io/temp/2.webp"},
    ]
    service.route("POST", url, json_body({"result": result}))
    assert await api.images.avatar_options("a lighthouse", count=3) == [
        "https://characterai.io/temp/1.webp",
        "https://characterai.io/temp/2.webp",
    ]
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", url)
    assert sent.json == {"prompt": "a lighthouse", "num_candidates": 3, "model_version": "v1"}


async def test_generate(service: Service, api: AsyncClient, transport: MockTransport) -> None:
    url = f"{PLUS}/chat/generate-image/"
    picture = "https://characterai.io/temp-images/abc.webp"
    service.route("POST", url, json_body({"image_rel_path": picture}))
    assert await api.images.generate("a lighthouse at dusk") == picture
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.json) == (
        "POST",
        url,
        {"image_description": "a lighthouse at dusk"},
    )


@pytest.mark.parametrize(
    ("call", "url", "body", "error"),
    [
        ("generate", f"{PLUS}/chat/generate-image/", {}, ProtocolError),
        ("generate", f"{PLUS}/chat/generate-image/", {"error": "Prompt refused"}, ServerError),
        (
            "options",
            f"{PLUS}/chat/character/generate-avatar-options",
            {"error": "nope"},
            ServerError,
        ),
        (
            "options",
            f"{PLUS}/chat/character/generate-avatar-options",
            {"result": "x"},
            ProtocolError,
        ),
    ],
)
async def test_generation_refusals(
    service: Service, api: AsyncClient, call: str, url: str, body: Any, error: type
) -> None:
    service.route("POST", url, json_body(body))
    with pytest.raises(error):
        if call == "generate":
            await api.images.generate("x")
        else:
            await api.images.avatar_options("x")


@pytest.mark.parametrize(
    ("source", "fetched"),
    [
        ("uploaded/a b.webp", "https://characterai.io/i/400/static/user/uploaded/a%20b.webp"),
        ("/uploaded/x.webp", "https://characterai.io/i/400/static/user/uploaded/x.webp"),
        (
            "https://characterai.io/i/80/static/avatars/x.webp",
            "https://characterai.io/i/80/static/avatars/x.webp",
        ),
    ],
)
async def test_download(
    service: Service, api: AsyncClient, transport: MockTransport, source: str, fetched: str
) -> None:
    service.route("GET", fetched, Response(200, {"content-type": "image/webp"}, WEBP))
    assert await api.images.download(source) == WEBP
    [sent] = transport.sent
    assert (sent.request.url, dict(sent.headers)) == (fetched, {})  # no token to the CDN


async def test_download_from_an_own_host_sends_the_token(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", f"{NEO}/x.webp", Response(200, {}, WEBP))
    await api.images.download(f"{NEO}/x.webp")
    assert dict(transport.sent[0].headers) == {"Authorization": f"Token {TOKEN}"}


async def test_download_of_a_missing_image(service: Service, api: AsyncClient) -> None:
    url = "https://characterai.io/i/400/static/user/uploaded/none.webp"
    service.route("GET", url, text_body("Not Found", 404))
    with pytest.raises(NotFound):
        await api.images.download("uploaded/none.webp")


def test_cdn_urls_need_no_io(transport: MockTransport) -> None:
    client = make_client(transport)
    assert client.images.url("uploaded/x.webp", size=80) == (
        "https://characterai.io/i/80/static/user/uploaded/x.webp"
    )
    assert client.images.url("x.webp", avatar=True) == (
        "https://characterai.io/i/400/static/avatars/x.webp"
    )
    for bad in ({"size": 0}, {"size": 4097}, {"size": True}):
        with pytest.raises(ValidationError):
            client.images.url("x.webp", **bad)  # type: ignore[arg-type]
    for rel in ("a//b.webp", "../x.webp", "a/./b", "x.webp?size=1", "x#y", ""):
        with pytest.raises(ValidationError):
            client.images.url(rel)
    assert transport.sent == []


# ---- validation before any request ------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.voices.get(""),
        lambda c: c.voices.get("a/b"),
        lambda c: c.voices.search(),
        lambda c: c.voices.search("  "),
        lambda c: c.voices.search(creator=3),
        lambda c: c.voices.create(MP3, name="ab"),
        lambda c: c.voices.create(MP3, name="n" * 21),
        lambda c: c.voices.create(MP3, name="Good", description="x" * 121),
        lambda c: c.voices.create(MP3, name="Good", preview_text="x" * 501),
        lambda c: c.voices.create(MP3, name="Good", public="yes"),
        lambda c: c.voices.create(b"", name="Good"),
        lambda c: c.voices.create(PNG, name="Good"),
        lambda c: c.voices.create("/no/such/file.mp3", name="Good"),
        lambda c: c.voices.create(123, name="Good"),
        lambda c: c.voices.update(VOICE_ID, name="x"),
        lambda c: c.voices.update(42),
        lambda c: c.voices.update(VOICE_ID, public=1),
        lambda c: c.voices.delete(""),
        lambda c: c.voices.tts("turn"),
        lambda c: c.voices.tts(TURN, 5),
        lambda c: c.voices.tts(TURN, " "),
        lambda c: c.voices.tts(TURN, candidate_id="a b"),
        lambda c: c.voices.tts(Turn(turn_key=TurnKey(chat_id=CHAT_ID, turn_id="t"))),
        lambda c: c.voices.tts_bytes(TURN, timeout=0),
        lambda c: c.voices.set_for_character("", VOICE_ID),
        lambda c: c.voices.set_for_character(CHARACTER_ID, None),
        lambda c: c.voices.clear_for_character("a b"),
        lambda c: c.voices.for_character("?"),
        lambda c: c.images.upload(b""),
        lambda c: c.images.upload(MP3),
        lambda c: c.images.upload(PNG, content_type="text/plain"),
        lambda c: c.images.upload(PNG, filename=""),
        lambda c: c.images.avatar_options(""),
        lambda c: c.images.avatar_options("x", count=0),
        lambda c: c.images.avatar_options("x", count=9),
        lambda c: c.images.avatar_options("x", count=2.0),
        lambda c: c.images.generate("   "),
        lambda c: c.images.download(""),
        lambda c: c.images.download("../etc/passwd"),
    ],
)
async def test_calls_are_validated_before_sending(
    api: AsyncClient, transport: MockTransport, call: Any
) -> None:
    with pytest.raises(ValidationError):
        await call(api)
    assert transport.sent == []
