"""Character requests and parsers with literal JSON (no I/O)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from caiclient.endpoints import Endpoints
from caiclient.errors import (
    AuthError,
    CharacterNotFound,
    NotFound,
    ProtocolError,
    RateLimited,
    ServerError,
)
from caiclient.protocol import characters as proto

LIVE = Endpoints.live()
CID = "00nGgJmkFv7Ntw1QUfnzGRxnU1h0Un7VHg5N7qhg4Cs"


def test_request_builders() -> None:
    info = proto.info(LIVE, CID)
    assert (info.method, info.url) == (
        "POST",
        "https://neo.character.ai/character/v1/get_character_info",
    )
    assert info.json == {"external_id": CID, "lang": "en"}
    assert info.is_idempotent
    legacy = proto.info_legacy(LIVE, CID)
    assert legacy.url == "https://plus.character.ai/chat/character/info/"
    assert legacy.json == {"external_id": CID}
    trpc = proto.search_trpc(LIVE, "captain byte")
    assert trpc.url == "https://character.ai/api/trpc/search.search"
    assert trpc.params is not None and trpc.params["batch"] == "1"
    assert trpc.params["input"] == '{"0":{"json":{"searchQuery":"captain byte"}}}'
    assert proto.search(LIVE, "q").url == "https://neo.character.ai/search/v1/character"
    assert proto.search_legacy(LIVE, "q").params == {"query": "q"}
    assert proto.mine(LIVE).params == {"scope": "user"}
    update = proto.update(LIVE, CID, {"name": "Abc"}, archived=True)
    assert update.json == {"name": "Abc", "external_id": CID, "archived": True}
    assert not update.is_idempotent
    vote = proto.vote(LIVE, CID, None)
    assert vote.json == {"external_id": CID, "vote": None}
    assert proto.voted(LIVE, CID).url == f"https://plus.character.ai/chat/character/{CID}/voted/"


def test_parse_full_character_neo() -> None:
    body = {
        "character": {
            "external_id": CID,
            "name": "Raw Name",
            "participant__name": "Shown Name",
            "title": "Tagline",
            "description": None,
            "greeting": "Hi",
            "visibility": "PUBLIC",
            "copyable": False,
            "avatar_file_name": "uploaded/2024/a.webp",
            "user__username": "creator",
            "creator_id": "474480773",
            "participant__num_interactions": 1234,
            "participant__user__username": "internal_id:1:abc",
            "num_likes": 12,
            "starter_prompts": {"phrases": ["hey", 3]},
            "default_voice_id": "",
            "updated": "2024-05-01T12:34:56.117205Z",
            "unknown_future_field": {"x": 1},
        }
    }
    character = proto.parse_character(json.dumps(body).encode())
    assert character.id == CID
    assert character.name == "Shown Name"
    assert character.description == ""
    assert character.definition is None
    assert character.creator_id == "474480773"
    assert character.upvotes == 12
    assert character.num_interactions == 1234
    assert character.participant_username == "internal_id:1:abc"
    assert character.starter_prompts == ["hey"]
    assert character.default_voice_id is None
    assert character.updated == datetime(2024, 5, 1, 12, 34, 56, 117205, tzinfo=timezone.utc)
    assert character.avatar_url == (
        "https://characterai.io/i/400/static/avatars/uploaded/2024/a.webp"
    )


def test_parse_character_refusals() -> None:
    with pytest.raises(CharacterNotFound, match="Character not found"):
        proto.parse_character(b'{"status": "NOT_OK", "error": "Character not found"}')
    with pytest.raises(CharacterNotFound):
        proto.parse_character(
            b'{"character": {}, "status": "do not have permission to view this Character"}'
        )
    with pytest.raises(CharacterNotFound):
        proto.parse_character(b'{"character": null}')
    with pytest.raises(ProtocolError):
        proto.parse_character(b"[]")
    ok = proto.parse_character(
        b'{"character": {"external_id": "abc", "name": "A"}, "status": "OK"}'
    )
    assert ok.name == "A"


def test_parse_lists_normalise_every_generation() -> None:
    legacy = {
        "characters": [
            {
                "document_id": CID,
                "external_id": CID,
                "participant__name": "Old",
                "participant__num_interactions": 1234.0,
                "user__username": "u",
                "search_score": 3.5,
                "upvotes": 7,
            }
        ],
        "request_id": "r",
    }
    (old,) = proto.parse_character_list(json.dumps(legacy).encode(), "search")
    assert (old.name, old.num_interactions, old.upvotes, old.search_score) == ("Old", 1234, 7, 3.5)
    assert isinstance(old.num_interactions, int)
    plus = {"characters": [{"external_id": CID, "participant__name": "P", "user__id": 42}]}
    (p,) = proto.parse_character_list(json.dumps(plus).encode(), "featured")
    assert p.creator_id == "42"
    trending = {"trending_characters": [{"external_id": CID, "name": "T", "num_likes": 3}]}
    (t,) = proto.parse_character_list(json.dumps(trending).encode(), "trending")
    assert (t.name, t.upvotes) == ("T", 3)
    assert proto.parse_character_list(b'{"characters": null}', "x") == []
    with pytest.raises(ProtocolError):
        proto.parse_character_list(b'{"characters": [{"name": "no id"}]}', "x")


def test_parse_trpc_search() -> None:
    body = [{"result": {"data": {"json": {"characters": [{"external_id": CID, "name": "N"}]}}}}]
    (n,) = proto.parse_trpc_search(json.dumps(body).encode())
    assert n.name == "N"

    def error(status: int) -> bytes:
        data = {"code": "X", "httpStatus": status, "path": "search.search"}
        return json.dumps(
            [{"error": {"json": {"message": "m", "code": -1, "data": data}}}]
        ).encode()

    with pytest.raises(AuthError):
        proto.parse_trpc_search(error(401))
    with pytest.raises(RateLimited):
        proto.parse_trpc_search(error(429))
    with pytest.raises(NotFound):
        proto.parse_trpc_search(error(404))
    with pytest.raises(ServerError) as caught:
        proto.parse_trpc_search(error(500))
    assert caught.value.status == 500
    with pytest.raises(ProtocolError):
        proto.parse_trpc_search(b"[]")


def test_categories_votes_and_status() -> None:
    body = {"characters_by_curated_category": {"Helpers": [{"external_id": CID}], "Games": None}}
    groups = proto.parse_categories(json.dumps(body).encode())
    assert list(groups) == ["Helpers", "Games"]
    assert groups["Games"] == []
    assert proto.parse_vote(b'{"vote": false}') is False
    assert proto.parse_vote(b'{"vote": null}') is None
    with pytest.raises(CharacterNotFound):
        proto.parse_character(b'{"status": "NOT_OK", "error": "Character not found"}')
    with pytest.raises(ServerError, match="Name must be"):
        proto.parse_saved(b'{"status": "NOT_OK", "error": "Name must be 3-20"}', "create")
