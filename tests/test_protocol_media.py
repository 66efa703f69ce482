"""The media protocol core with literal JSON: no event loop, no sockets."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from caiclient import Endpoints, ProtocolError, ServerError
from caiclient.models._media import Voice, VoiceCreator
from caiclient.protocol import media

LIVE = Endpoints.live()
VOICE_JSON = b"""{"voice": {
  "id": "8f0b6a9e-2c3d-4e5f-9a1b-2c3d4e5f6a7b", "name": "Ann", "description": "calm",
  "gender": "neutral", "visibility": "public",
  "creatorInfo": {"id": "147740177", "source": "user", "username": ""},
  "audioSourceType": "file", "previewText": "Hello", "previewAudioURI": "https://x/p.mp3",
  "backendProvider": "cai", "backendId": "8f0b6a9e-2c3d-4e5f-9a1b-2c3d4e5f6a7b",
  "internalStatus": "draft", "lastUpdateTime": "0001-01-01T00:00:00Z", "futureField": 1}}"""


def test_parse_voice_maps_every_camel_case_field() -> None:
    voice = media.parse_voice(VOICE_JSON)
    assert voice == Voice(
        id="8f0b6a9e-2c3d-4e5f-9a1b-2c3d4e5f6a7b",
        name="Ann",
        description="calm",
        gender="neutral",
        visibility="public",
        creator_info=VoiceCreator(id="147740177", source="user", username=""),
        audio_source_type="file",
        preview_text="Hello",
        preview_audio_uri="https://x/p.mp3",
        backend_provider="cai",
        backend_id="8f0b6a9e-2c3d-4e5f-9a1b-2c3d4e5f6a7b",
        internal_status="draft",
        last_update_time=datetime(1, 1, 1, tzinfo=timezone.utc),
    )
    assert voice.creator_id == "147740177"
    assert voice.is_public and voice.is_draft


def test_parse_voices_and_minimal_voice() -> None:
    assert media.parse_voices(b'{"voices": [{"id": "v"}]}') == [Voice(id="v")]
    assert media.parse_voices(b'{"voices": null}') == []
    assert media.parse_voices(b"{}") == []
    with pytest.raises(ProtocolError):
        media.parse_voice(b'{"voice": {"name": "no id"}}')


def test_update_voice_sends_the_whole_voice_as_the_web_client_does() -> None:
    voice = media.parse_voice(VOICE_JSON)
    request = media.update_voice(
        LIVE, voice, name="Bo", description="d", visibility="private", preview_text="p"
    )
    assert request.method == "PUT"
    assert request.url == (
        "https://neo.character.ai/multimodal/api/v1/voices/8f0b6a9e-2c3d-4e5f-9a1b-2c3d4e5f6a7b"
    )
    sent = request.json["voice"]
    assert set(sent) == {
        "id", "name", "description", "gender", "visibility", "creatorInfo", "audioSourceType",
        "previewText", "previewAudioURI", "backendProvider", "backendId", "internalStatus",
        "lastUpdateTime",
    }  # fmt: skip
    assert sent["name"] == "Bo" and sent["visibility"] == "private"
    assert sent["internalStatus"] == "draft"
    assert sent["lastUpdateTime"] == "0001-01-01T00:00:00Z"
    assert sent["creatorInfo"] == {"id": "147740177", "source": "user", "username": ""}


def test_create_voice_is_a_two_part_form() -> None:
    request = media.create_voice(
        LIVE, audio=b"ID3...", content_type="audio/mpeg", name="N", description="", preview_text="P"
    )
    assert request.url == "https://neo.character.ai/multimodal/api/v1/voices/"
    assert request.json is None
    assert request.multipart is not None
    (file_part, json_part) = request.multipart
    assert file_part == ("file", "input.mp3", "audio/mpeg", b"ID3...")
    assert json_part[:3] == ("json", None, None)
    assert json.loads(json_part[3]) == {
        "voice": {
            "name": "N",
            "description": "",
            "gender": "neutral",
            "visibility": "private",
            "previewText": "P",
            "audioSourceType": "file",
        }
    }
    assert not request.is_idempotent


def test_search_and_lists() -> None:
    request = media.search_voices(LIVE, query="a b", creator="u")
    assert request.url == "https://neo.character.ai/multimodal/api/v1/voices/search"
    assert request.params == {"query": "a b", "creatorInfo.username": "u"}
    assert media.list_voices(LIVE, "featured").url.endswith("/voices/featured")


def test_replay_request_and_response() -> None:
    request = media.replay(
        LIVE, chat_id="c", turn_id="t", candidate_id="k", voice_id="", voice_query="Ann"
    )
    assert request.url == "https://neo.character.ai/multimodal/api/v1/memo/replay"
    assert request.json == {
        "candidateId": "k",
        "roomId": "c",
        "turnId": "t",
        "voiceId": "",
        "voiceQuery": "Ann",
    }
    plain = media.replay(LIVE, chat_id="c", turn_id="t", candidate_id="k", voice_id="v")
    assert "voiceQuery" not in plain.json
    url = "https://storage.example/replay.mp3"
    assert media.parse_replay_url(b'{"replayUrl": "https://storage.example/replay.mp3"}') == url
    with pytest.raises(ProtocolError):
        media.parse_replay_url(b'{"replayUrl": ""}')
    with pytest.raises(ProtocolError):
        media.parse_replay_url(b"[]")


def test_override_requests_and_bodies() -> None:
    update = media.set_voice_override(LIVE, "CHAR", "v")
    assert update.url == "https://plus.character.ai/chat/character/CHAR/voice_override/update/"
    assert update.json == {"voice_id": "v"}
    clear = media.clear_voice_override(LIVE, "CHAR")
    assert clear.url.endswith("/chat/character/CHAR/voice_override/delete/")
    assert media.get_voice_override(LIVE, "CHAR").method == "GET"
    assert media.parse_voice_override(b'{"voice_id": "v"}') == "v"
    assert media.parse_voice_override(b'{"voice_id": null}') is None
    media.parse_success(b'{"success": true}', "x")


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"success": false, "error": "nope"}', "nope"),
        (b'{"status": "NOT_OK", "error": "denied"}', "denied"),
        (b'{"status": "NOT_OK"}', "NOT_OK"),
        (b'{"error": {"message": "deep"}}', "deep"),
    ],
)
def test_in_band_failures_become_server_errors(body: bytes, text: str) -> None:
    with pytest.raises(ServerError, match=text) as info:
        media.parse_success(body, "voice_override/update")
    assert info.value.status == 200


def test_image_requests_and_bodies() -> None:
    upload = media.upload_image(LIVE, b"\x89PNG", "a.png", "image/png")
    assert upload.url == "https://plus.character.ai/chat/upload-image/"
    assert upload.multipart == (("image", "a.png", "image/png", b"\x89PNG"),)
    assert media.parse_upload(b'{"status": "OK", "value": "uploaded/x.webp"}') == "uploaded/x.webp"
    with pytest.raises(ServerError, match="bad image"):
        media.parse_upload(b'{"error": "bad image"}')
    with pytest.raises(ProtocolError):
        media.parse_upload(b'{"status": "OK"}')
    options = media.avatar_options(LIVE, "fox", 2)
    assert options.json == {"prompt": "fox", "num_candidates": 2, "model_version": "v1"}
    body = b'{"result": [{"prompt": "fox", "url": "https://a/1"}, {"prompt": "fox"}, {"url": "https://a/2"}]}'
    assert media.parse_avatar_options(body) == ["https://a/1", "https://a/2"]
    assert media.parse_avatar_options(b"{}") == []
    assert media.generate_image(LIVE, "boat").json == {"image_description": "boat"}
    assert media.parse_generated_image(b'{"image_rel_path": "https://a/3"}') == "https://a/3"
    with pytest.raises(ProtocolError):
        media.parse_generated_image(b"{}")


def test_cdn_url() -> None:
    assert media.cdn_url(LIVE, "/uploaded/a b.webp") == (
        "https://characterai.io/i/400/static/user/uploaded/a%20b.webp"
    )
    local = Endpoints.local("http://127.0.0.1:9")
    assert media.cdn_url(local, "x.png", size=80, bucket="avatars") == (
        "http://127.0.0.1:9/cdn/i/80/static/avatars/x.png"
    )


@pytest.mark.parametrize(
    ("data", "image", "audio"),
    [
        (b"\x89PNG\r\n\x1a\n....", "image/png", None),
        (b"\xff\xd8\xff\xe0", "image/jpeg", None),
        (b"GIF89a..", "image/gif", None),
        (b"RIFF\x00\x00\x00\x00WEBPVP8L", "image/webp", None),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None, "audio/wav"),
        (b"ID3\x03\x00", None, "audio/mpeg"),
        (b"\xff\xfb\x14\xc4", None, "audio/mpeg"),
        (b"OggS\x00", None, "audio/ogg"),
        (b"fLaC", None, "audio/flac"),
        (b"\x00\x00\x00\x18ftypM4A ", None, "audio/mp4"),
        (b"hello world", None, None),
        (b"", None, None),
    ],
)
def test_sniffing(data: bytes, image: str | None, audio: str | None) -> None:
    assert media.sniff_image(data) == image
    assert media.sniff_audio(data) == audio
