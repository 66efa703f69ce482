"""The account protocol core with literal JSON: no loop, no sockets."""

from __future__ import annotations

import pytest

from caiclient import PersonaNotFound, ProtocolError, UserNotFound
from caiclient.endpoints import Endpoints
from caiclient.protocol import account as proto

LIVE = Endpoints.live()


@pytest.mark.parametrize(
    "body", [b"", b"  ", b'{"public_user": []}', b'{"public_user": null}', b"{}"]
)
def test_unknown_public_user_variants(body: bytes) -> None:
    # PyCharacterAI sees an HTTP 500, kramcat ``[]``, node_characterai an empty body (§15.4).
    with pytest.raises(UserNotFound, match="ghost"):
        proto.parse_public_user(body, "ghost")


def test_public_user_normalises_character_spellings() -> None:
    body = (
        b'{"public_user": {"username": "bob", "name": "Bob", "num_following": 2,'
        b' "num_followers": 5, "avatar_file_name": "", "subscription_type": "NONE",'
        b' "bio": null, "creator_info": null, "characters": [{"external_id": "c1",'
        b' "participant__name": "Cat", "participant__num_interactions": 12.0,'
        b' "user__id": 42, "user__username": "bob", "num_likes": 3, "greeting": "meow"}]}}'
    )
    user = proto.parse_public_user(body, "bob")
    assert (user.username, user.num_followers, user.num_following) == ("bob", 5, 2)
    assert user.avatar_file_name is None
    (cat,) = user.characters
    assert (cat.id, cat.name, cat.num_interactions, cat.upvotes) == ("c1", "Cat", 12, 3)
    assert cat.creator_id == "42" and cat.creator_username == "bob"


def test_settings_round_trip_keeps_unknown_keys() -> None:
    body = (
        b'{"default_persona_id": "p1", "voiceOverrides": {"c": "v"}, "personaOverrides": {},'
        b' "voiceOverridesMigrated": true, "proactiveDmOptedOut": false,'
        b' "outputStylePreferences": {"bannedWords": ["a"], "tone": "warm"},'
        b' "brandNewSetting": 7}'
    )
    raw, settings = proto.parse_settings(body)
    assert settings.default_persona_id == "p1" and settings.banned_words == ["a"]
    assert settings.voice_overrides == {"c": "v"} and settings.voice_overrides_migrated
    new = proto.apply_settings(
        raw, {"banned_words": ["b"], "persona_overrides": {"c": "p2"}, "default_persona_id": None}
    )
    assert new["brandNewSetting"] == 7
    assert new["outputStylePreferences"] == {"bannedWords": ["b"], "tone": "warm"}
    assert new["personaOverrides"] == {"c": "p2"} and new["default_persona_id"] is None
    assert raw["default_persona_id"] == "p1"  # The input is not modified.
    request = proto.update_settings(LIVE, new)
    assert request.url == "https://plus.character.ai/chat/user/update_settings/"
    assert request.method == "POST" and request.json == new


def test_settings_with_wrong_types_are_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        proto.parse_settings(b'{"voiceOverrides": []}')
    with pytest.raises(ProtocolError):
        proto.parse_updated_settings(b'{"success": true}')


def test_persona_list_and_get() -> None:
    short = (
        b'{"personas": [{"external_id": "p1", "title": "T", "participant__name": "Me",'
        b' "definition": "d", "avatar_file_name": null, "visibility": "PRIVATE",'
        b' "default_voice_id": 12, "is_persona": true, "user__username": "u"}]}'
    )
    (persona,) = proto.parse_personas(short)
    assert (persona.id, persona.name, persona.default_voice_id) == ("p1", "Me", "12")
    assert persona.owner_username == "u" and persona.avatar_file_name is None
    full = b'{"status": "OK", "persona": {"external_id": "p1", "name": "Me", "voice_id": null}}'
    raw, got = proto.parse_persona(full, "persona", not_found=PersonaNotFound)
    assert got.id == "p1" and raw["voice_id"] is None
    with pytest.raises(PersonaNotFound):
        proto.parse_persona(b'{"status": "OK"}', "persona", not_found=PersonaNotFound)


def test_requests() -> None:
    update = proto.update_user(LIVE, username="u", name="Name", bio="", avatar_rel_path="")
    assert update.json == {"username": "u", "name": "Name", "avatar_type": "DEFAULT", "bio": ""}
    uploaded = proto.update_user(LIVE, username="u", name="N", bio="b", avatar_rel_path="a.webp")
    assert uploaded.json["avatar_type"] == "UPLOADED"
    assert uploaded.json["avatar_rel_path"] == "a.webp"
    create = proto.create_persona(
        LIVE, name="Me", definition="d", greeting="g", description="x", identifier="id:1"
    )
    assert create.url == "https://plus.character.ai/chat/persona/create/"
    assert not create.idempotent
    assert create.json["title"] == create.json["name"] == "Me"
    assert create.json["identifier"] == "id:1" and create.json["visibility"] == "PRIVATE"
    raw = {"external_id": "p1", "name": "Me", "title": "Me", "voice_id": None, "songs": []}
    archive = proto.update_persona(LIVE, raw, {"definition": "new"}, archived=True)
    assert archive.json == {
        "name": "Me",
        "title": "Me",
        "voice_id": "",
        "definition": "new",
        "base_img_prompt": "",
        "avatar_file_name": "",
        "avatar_rel_path": "",
        "external_id": "p1",
        "archived": True,
    }
    page = proto.public_followers(LIVE, "bob", 3)
    assert page.json == {"username": "bob", "pageParam": 3}
    assert page.url.endswith("/chat/user/public/followers/")
    assert proto.personas(LIVE).params == {"force_refresh": "1"}
    assert proto.persona(LIVE, "p1").params == {"id": "p1"}
