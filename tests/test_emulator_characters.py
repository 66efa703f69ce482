"""The emulator's character area (PROTOCOL.md §6), driven with aiohttp, not caiclient."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from caiclient.emulator import Emulator, SeedCharacter
from caiclient.emulator.characters import CAST_CREATOR_USERNAME, split_cumulative

ID43 = re.compile(r"^[A-Za-z0-9_-]{43}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
TGT = re.compile(
    r"^internal_id:\d+:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)

FULL_KEYS = {
    "external_id",
    "title",
    "name",
    "visibility",
    "copyable",
    "greeting",
    "description",
    "identifier",
    "avatar_file_name",
    "songs",
    "img_gen_enabled",
    "base_img_prompt",
    "img_prompt_regex",
    "strip_img_prompt_from_msg",
    "default_voice_id",
    "starter_prompts",
    "comments_enabled",
    "user__username",
    "participant__name",
    "participant__num_interactions",
    "participant__user__username",
    "voice_id",
    "usage",
    "upvotes",
}
NEO_EXTRAS = {
    "dynamic_greeting_enabled",
    "allow_dynamic_greeting",
    "short_hash",
    "updated",
    "has_definition",
    "is_licensed_professional",
    "num_likes",
    "num_interactions_last_day",
    "safety",
    "translations",
    "creator_id",
}
NOT_OK = {"status": "NOT_OK", "error": "Character not found"}

NEW = {
    "title": "A brass robot",
    "name": "Robo",
    "identifier": "id:6d1f0a53-51a3-4fb9-8f4c-111111111111",
    "categories": ["Helpers"],
    "visibility": "PUBLIC",
    "copyable": False,
    "description": "Beeps politely.",
    "greeting": "Beep. Hello, human.",
    "definition": "{{char}} is a robot who speaks in beeps.",
    "avatar_rel_path": "uploaded/2024/1/1/robo.webp",
    "base_img_prompt": "",
    "img_gen_enabled": False,
    "strip_img_prompt_from_msg": False,
    "default_voice_id": "",
    "voice_id": "",
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


class Api:
    """Tiny helper: JSON calls against one emulator with one token."""

    def __init__(self, http: aiohttp.ClientSession, emu: Emulator, token: str) -> None:
        self.http, self.emu, self.token = http, emu, token

    async def call(
        self, method: str, path: str, body: Any = None, *, status: int = 200, **kw: Any
    ) -> Any:
        async with self.http.request(
            method, self.emu.url + path, json=body, headers=auth(self.token), **kw
        ) as r:
            data = await r.json()
            assert r.status == status, (r.status, data)
            return data

    async def get(self, path: str, *, status: int = 200, **kw: Any) -> Any:
        return await self.call("GET", path, status=status, **kw)

    async def post(self, path: str, body: Any, *, status: int = 200) -> Any:
        return await self.call("POST", path, body, status=status)

    async def info(self, character_id: str) -> Any:
        return await self.post(
            "/neo/character/v1/get_character_info", {"external_id": character_id}
        )

    async def create(self, **changes: Any) -> dict[str, Any]:
        body = await self.post("/plus/chat/character/create/", {**NEW, **changes})
        assert body["status"] == "OK", body
        character: dict[str, Any] = body["character"]
        return character


@pytest.fixture
def api(http: aiohttp.ClientSession, emu: Emulator) -> Api:
    return Api(http, emu, emu.token)


@pytest.fixture
def other(http: aiohttp.ClientSession, emu: Emulator) -> Api:
    return Api(http, emu, emu.store.add_user("someone").token)


def names(characters: list[dict[str, Any]]) -> list[str]:
    return [c.get("participant__name") or c["name"] for c in characters]


# ---- info --------------------------------------------------------------------------------------


async def test_neo_info_has_every_full_key(api: Api, emu: Emulator) -> None:
    echo = emu.character("Echo")
    body = await api.info(echo.id)
    assert set(body) == {"character"}
    character = body["character"]
    assert set(character) == FULL_KEYS | NEO_EXTRAS  # No definition: not ours, not copyable.
    assert character["external_id"] == echo.id
    assert character["name"] == character["participant__name"] == "Echo"
    assert character["participant__user__username"] == echo.participant_username
    assert TGT.match(echo.participant_username)
    assert character["user__username"] == CAST_CREATOR_USERNAME
    assert character["avatar_file_name"] == "emulator/echo.webp"
    assert character["starter_prompts"] == {"phrases": []}
    assert character["usage"] == "default"
    assert character["upvotes"] == character["num_likes"] == echo.upvotes
    assert isinstance(character["participant__num_interactions"], int)
    assert character["creator_id"].isdigit()
    assert character["has_definition"] is True
    assert character["safety"] == "SAFE"
    assert TS.match(character["updated"])


async def test_neo_info_errors(api: Api, emu: Emulator, http: aiohttp.ClientSession) -> None:
    assert await api.info("x" * 43) == NOT_OK
    assert await api.post("/neo/character/v1/get_character_info", {}) == NOT_OK
    bad = await api.post("/neo/character/v1/get_character_info", [1], status=400)
    assert bad["command"] == "neo_error"
    url = emu.url + "/neo/character/v1/get_character_info"
    async with http.post(url, data=b"{nope", headers=auth(emu.token)) as r:
        assert r.status == 400
        assert (await r.json())["command"] == "neo_error"
    async with http.post(url, json={"external_id": "x"}, headers=auth("0" * 40)) as r:
        assert r.status == 401
        assert await r.json() == {"detail": "Invalid token."}


async def test_neo_info_batch(api: Api, other: Api, emu: Emulator) -> None:
    private = await api.create(visibility="PRIVATE")
    ids = [emu.character("Sage").id, "missing", private["external_id"]]
    body = await other.post("/neo/character/v1/get_character_infos", {"external_ids": ids})
    assert names(body["characters"]) == ["Sage"]
    mine = await api.post("/neo/character/v1/get_character_infos", {"external_ids": ids})
    assert names(mine["characters"]) == ["Sage", "Robo"]
    await api.post("/neo/character/v1/get_character_infos", {"external_ids": "x"}, status=400)


@pytest.mark.parametrize("prefix", ["/plus", "/beta"])
async def test_plus_info_still_answers(api: Api, emu: Emulator, prefix: str) -> None:
    sage = emu.character("Sage")
    body = await api.post(f"{prefix}/chat/character/info/", {"external_id": sage.id})
    assert body["status"] == "OK"
    assert set(body["character"]) == FULL_KEYS
    missing = await api.post(f"{prefix}/chat/character/info/", {"external_id": "nope"})
    assert missing == NOT_OK
    await api.post(f"{prefix}/chat/character/info/", "text", status=400)


async def test_plus_detail_shows_definition_to_the_owner_only(api: Api, other: Api) -> None:
    created = await api.create()
    cid = created["external_id"]
    own = await api.post("/plus/chat/character/", {"external_id": cid})
    assert own["status"] == "OK"
    assert own["character"]["definition"] == NEW["definition"]
    theirs = await other.post("/plus/chat/character/", {"external_id": cid})
    assert "definition" not in theirs["character"]
    assert (await other.info(cid))["character"].get("definition") is None
    assert (await api.info(cid))["character"]["definition"] == NEW["definition"]
    copyable = await api.create(copyable=True)
    shown = await other.info(copyable["external_id"])
    assert shown["character"]["definition"] == NEW["definition"]
    missing = await other.post("/plus/chat/character/", {"external_id": "nope"})
    assert missing == {"character": {}, "status": "do not have permission to view this Character"}


# ---- create / update ---------------------------------------------------------------------------


async def test_create_inserts_a_chattable_character(api: Api, emu: Emulator) -> None:
    character = await api.create()
    cid = character["external_id"]
    assert ID43.match(cid)
    assert set(character) == FULL_KEYS | {"definition"}
    assert character["definition"] == NEW["definition"]
    assert character["avatar_file_name"] == NEW["avatar_rel_path"]
    assert character["user__username"] == emu.username
    assert character["identifier"] == NEW["identifier"]
    assert character["upvotes"] == 0
    seed = emu.store.characters[cid]
    assert isinstance(seed, SeedCharacter)
    assert seed.creator_id == emu.user_id
    assert seed.categories == ("Helpers",)
    assert TGT.match(character["participant__user__username"])
    assert seed.reply("hello", 1).startswith("Robo here.")
    neo = (await api.info(cid))["character"]
    assert neo["creator_id"] == emu.user_id
    assert TS.match(neo["updated"])


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"name": "Ro"}, "Name must be at least 3 characters and no more than 20."),
        ({"name": "R" * 21}, "Name must be at least 3 characters and no more than 20."),
        ({"greeting": "Hi"}, "Greeting must be at least 3 characters and no more than 4096."),
        ({"greeting": "x" * 4097}, "Greeting must be at least 3 characters and no more than 4096."),
        ({"title": "ab"}, "Title must be at least 3 characters and no more than 50."),
        ({"title": "t" * 51}, "Title must be at least 3 characters and no more than 50."),
        ({"description": "d" * 501}, "Description must be no more than 500 characters."),
        ({"definition": "d" * 32001}, "Definition must be no more than 32000 characters."),
        ({"name": None}, "name is required"),
        ({"visibility": "FRIENDS"}, "visibility must be PUBLIC, UNLISTED or PRIVATE"),
        ({"copyable": "yes"}, "copyable must be true or false"),
        ({"name": 12345}, "name must be a string"),
        ({"categories": "Helpers"}, "categories must be a list of strings"),
    ],
)
async def test_create_limits(api: Api, emu: Emulator, changes: dict[str, Any], error: str) -> None:
    before = len(emu.store.characters)
    body = await api.post("/plus/chat/character/create/", {**NEW, **changes})
    assert body == {"status": "NOT_OK", "error": error}
    assert len(emu.store.characters) == before


async def test_create_edges(api: Api, emu: Emulator, http: aiohttp.ClientSession) -> None:
    minimal = await api.post(
        "/plus/chat/character/create/", {"name": "Abc", "greeting": "Hey", "title": ""}
    )
    assert minimal["status"] == "OK"
    assert minimal["character"]["visibility"] == "PRIVATE"
    assert minimal["character"]["identifier"].startswith("id:")
    lower = await api.create(visibility="unlisted", name="x" * 20, greeting="g" * 4096)
    assert lower["visibility"] == "UNLISTED"
    await api.post("/plus/chat/character/create/", [NEW], status=400)
    async with http.post(emu.url + "/plus/chat/character/create/", json=NEW) as r:
        assert r.status == 401
        assert await r.json() == {"detail": "Authentication credentials were not provided."}


async def test_update_and_archive(api: Api, other: Api, emu: Emulator) -> None:
    cid = (await api.create())["external_id"]
    changed = await api.post(
        "/plus/chat/character/update/",
        {"external_id": cid, "name": "Robo Two", "visibility": "private", "archived": False},
    )
    assert changed["status"] == "OK"
    assert changed["character"]["name"] == "Robo Two"
    assert changed["character"]["visibility"] == "PRIVATE"
    assert changed["character"]["greeting"] == NEW["greeting"]  # Not sent: kept.
    assert emu.store.characters[cid].name == "Robo Two"
    # Another user: a private character is "missing"; a public one is "not yours".
    theirs = await other.post("/plus/chat/character/update/", {"external_id": cid, "name": "Hax"})
    assert theirs == NOT_OK
    sage = emu.character("Sage").id
    refused = await api.post("/plus/chat/character/update/", {"external_id": sage, "name": "Hax"})
    assert refused["status"] == "NOT_OK"
    assert "permission" in refused["error"]
    too_long = await api.post("/plus/chat/character/update/", {"external_id": cid, "title": "xy"})
    assert too_long["status"] == "NOT_OK"
    archived = await api.post(
        "/plus/chat/character/update/", {"external_id": cid, "archived": True}
    )
    assert archived["status"] == "OK"
    assert await api.info(cid) == NOT_OK
    assert await api.post("/plus/chat/character/update/", {"external_id": cid, "name": "Back"}) == (
        NOT_OK
    )
    assert cid in emu.store.characters  # Kept, so existing chats keep working.


async def test_private_characters_are_invisible_to_others(
    api: Api, other: Api, emu: Emulator
) -> None:
    cid = (await api.create(visibility="PRIVATE", name="Hidden One"))["external_id"]
    assert (await api.info(cid))["character"]["name"] == "Hidden One"
    assert await other.info(cid) == await other.info("x" * 43)
    vote = await other.post("/plus/chat/character/vote/", {"external_id": cid, "vote": True})
    assert vote == NOT_OK
    await other.get(f"/plus/chat/character/{cid}/voted/", status=404)
    similar = await other.get(f"/neo/recommendation/v1/character/{cid}", status=404)
    assert similar["comment"] == "Character not found"
    for client in (api, other):
        found = await client.get("/neo/search/v1/character", params={"query": "Hidden"})
        assert found["characters"] == []
        recommended = await client.get("/neo/recommendation/v1/user")
        assert "Hidden One" not in names(recommended["characters"])


async def test_unlisted_is_reachable_by_id_only(api: Api, other: Api) -> None:
    cid = (await api.create(visibility="UNLISTED", name="Shy Robot"))["external_id"]
    assert (await other.info(cid))["character"]["name"] == "Shy Robot"
    found = await other.get("/plus/chat/characters/search/", params={"query": "Shy"})
    assert found["characters"] == []
    mine = await api.get("/plus/chat/characters/", params={"scope": "user"})
    assert names(mine["characters"]) == ["Shy Robot"]


# ---- votes -------------------------------------------------------------------------------------


async def test_votes(api: Api, other: Api, emu: Emulator) -> None:
    nova = emu.character("Nova")
    path = f"/plus/chat/character/{nova.id}/voted/"
    assert await api.get(path) == {"vote": None}
    ok = await api.post("/plus/chat/character/vote/", {"external_id": nova.id, "vote": True})
    assert ok == {"status": "OK"}
    await other.post("/plus/chat/character/vote/", {"external_id": nova.id, "vote": True})
    assert await api.get(path) == {"vote": True}
    info = (await api.info(nova.id))["character"]
    assert info["upvotes"] == info["num_likes"] == nova.upvotes + 2
    liked = await api.get("/plus/chat/user/characters/upvoted/")
    assert names(liked["characters"]) == ["Nova"]
    await api.post("/plus/chat/character/vote/", {"external_id": nova.id, "vote": False})
    assert await api.get(path) == {"vote": False}
    assert (await api.info(nova.id))["character"]["upvotes"] == nova.upvotes + 1
    assert (await api.get("/plus/chat/user/characters/upvoted/"))["characters"] == []
    await api.post("/plus/chat/character/vote/", {"external_id": nova.id, "vote": None})
    assert await api.get(path) == {"vote": None}
    await api.post("/plus/chat/character/vote/", {"external_id": nova.id, "vote": 1}, status=400)
    missing = await api.post("/plus/chat/character/vote/", {"external_id": "no", "vote": True})
    assert missing == NOT_OK
    await api.get("/plus/chat/character/nope/voted/", status=404)


async def test_liked_is_latest_first(api: Api, emu: Emulator) -> None:
    for name in ("Sage", "Echo", "Nova"):
        body = {"external_id": emu.character(name).id, "vote": True}
        await api.post("/plus/chat/character/vote/", body)
    liked = await api.get("/plus/chat/user/characters/upvoted/")
    assert names(liked["characters"]) == ["Nova", "Echo", "Sage"]


async def test_characters_and_votes_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    async with Emulator(state_file=state) as first, aiohttp.ClientSession() as http:
        api = Api(http, first, first.token)
        cid = (await api.create(visibility="PRIVATE"))["external_id"]
        sage = first.character("Sage").id
        await api.post("/plus/chat/character/vote/", {"external_id": sage, "vote": True})
        await api.post("/plus/chat/character/vote/", {"external_id": cid, "vote": False})
    async with Emulator(state_file=state) as second, aiohttp.ClientSession() as http:
        api = Api(http, second, second.token)
        assert (await api.info(cid))["character"]["definition"] == NEW["definition"]
        assert await api.get(f"/plus/chat/character/{sage}/voted/") == {"vote": True}
        assert await api.get(f"/plus/chat/character/{cid}/voted/") == {"vote": False}
        assert (await api.info(sage))["character"]["upvotes"] == second.character(
            "Sage"
        ).upvotes + 1
        assert second.store.characters[cid].reply("hi", 1).startswith("Robo here.")


# ---- search ------------------------------------------------------------------------------------


async def test_plus_search_shape_and_order(api: Api, emu: Emulator) -> None:
    await api.create(name="Captain Nemo", title="Submarine commander")
    body = await api.get("/plus/chat/characters/search/", params={"query": "CAPTAIN"})
    assert set(body) == {"characters", "request_id"}
    assert names(body["characters"]) == ["Captain Byte", "Captain Nemo"]
    first = body["characters"][0]
    assert set(first) == {
        "document_id",
        "external_id",
        "title",
        "greeting",
        "avatar_file_name",
        "visibility",
        "participant__name",
        "participant__num_interactions",
        "user__username",
        "priority",
        "search_score",
        "upvotes",
    }
    assert isinstance(first["participant__num_interactions"], float)
    assert first["search_score"] > body["characters"][1]["search_score"]
    words = await api.get("/plus/chat/characters/search/", params={"query": "byte captain"})
    # Word by word, in any order: both words beat one.
    assert names(words["characters"]) == ["Captain Byte", "Captain Nemo"]
    assert [c["search_score"] for c in words["characters"]] == [1.0, 0.5]
    # Description-only matches rank below name matches.
    stars = await api.get("/beta/chat/characters/search/", params={"query": "sky"})
    assert names(stars["characters"]) == ["Nova"]
    assert (await api.get("/plus/chat/characters/search/", params={"query": "zzz"}))[
        "characters"
    ] == []
    suggest = await api.get("/plus/chat/characters/suggest/", params={"query": "libr"})
    assert [c["name"] for c in suggest["characters"]] == ["Sage"]
    assert set(suggest["characters"][0]) == {
        "document_id",
        "external_id",
        "name",
        "avatar_file_name",
        "num_interactions",
        "title",
        "greeting",
    }


async def test_trpc_search_without_token(emu: Emulator, http: aiohttp.ClientSession) -> None:
    url = emu.url + "/web/api/trpc/search.search"
    payload = json.dumps({"0": {"json": {"searchQuery": "captain byte"}}}, separators=(",", ":"))
    async with http.get(url, params={"batch": "1", "input": payload}) as r:  # URL-encoded
        assert r.status == 200
        body = await r.json()
    characters = body[0]["result"]["data"]["json"]["characters"]
    assert names(characters) == ["Captain Byte"]
    assert characters[0]["num_likes"] == emu.character("Captain Byte").upvotes
    # PC's form: the query URL-quoted inside raw JSON.
    raw = json.dumps({"0": {"json": {"searchQuery": quote("captain byte")}}}, separators=(",", ":"))
    async with http.get(f"{url}?batch=1&input={raw}") as r:
        quoted = await r.json()
    assert names(quoted[0]["result"]["data"]["json"]["characters"]) == ["Captain Byte"]
    async with http.get(url, params={"batch": "1", "input": '{"0": {"json": {}}}'}) as r:
        assert r.status == 400
        error = (await r.json())[0]["error"]["json"]
        assert error["data"]["httpStatus"] == 400


async def test_trpc_search_creators(api: Api, emu: Emulator, http: aiohttp.ClientSession) -> None:
    await api.create(visibility="PUBLIC")
    url = emu.url + "/web/api/trpc/search.searchCreators"
    payload = json.dumps({"0": {"json": {"searchQuery": "emulator"}}})
    async with http.get(url, params={"batch": "1", "input": payload}) as r:
        creators = (await r.json())[0]["result"]["data"]["json"]["creators"]
    assert [c["username"] for c in creators] == [emu.username]
    assert creators[0]["num_characters"] == 1


async def test_neo_search_and_queries(api: Api, emu: Emulator) -> None:
    body = await api.get("/neo/search/v1/character", params={"query": "librarian"})
    assert set(body) == {"characters", "safety_filtered", "tags", "uuid"}
    assert body["safety_filtered"] is False
    (sage,) = body["characters"]
    assert sage["name"] == "Sage"
    for key in ("document_id", "search_score", "priority", "tag_id", "tag", "created_at"):
        assert key in sage
    assert isinstance(sage["created_at"], int)
    assert sage["_distance"] is None
    popular = await api.get("/neo/search/v1/query/popular")
    assert popular["popular_search_queries"][0] == "captain byte"
    trending = await api.get("/neo/search/v1/query/trending")
    assert set(trending["trending_search_queries"]) == {"echo", "sage", "captain byte", "nova"}
    auto = await api.get("/neo/search/v1/query/autocomplete", params={"query_prefix": "By"})
    assert auto == {"search_autocomplete": ["captain byte"]}
    assert await api.get("/neo/search/v1/query/autocomplete") == {"search_autocomplete": []}
    await Api(api.http, emu, "f" * 40).get("/neo/search/v1/character", status=401)


# ---- discovery ---------------------------------------------------------------------------------


async def test_neo_recommendations(api: Api, emu: Emulator) -> None:
    mine = await api.create(name="Mine Only")
    user = await api.get("/neo/recommendation/v1/user")
    assert names(user["characters"]) == ["Captain Byte", "Echo", "Sage", "Nova"]
    assert "Mine Only" not in names(user["characters"])
    entry = user["characters"][0]
    assert {"external_id", "name", "participant__name", "num_likes", "creator_id"} <= set(entry)
    featured = await api.get("/neo/recommendation/v1/featured")
    assert set(names(featured["characters"])) == {"Echo", "Sage", "Captain Byte", "Nova"}
    similar = await api.get(f"/neo/recommendation/v1/character/{emu.character('Sage').id}")
    assert names(similar["characters"])[0] == "Echo"  # Shares "Helpers" with Sage.
    assert "Sage" not in names(similar["characters"])
    assert mine["external_id"]
    await api.get("/neo/recommendation/v1/character/nope", status=404)
    categories = await api.get("/neo/recommendation/v1/category")
    assert categories["categories"][0] == "Helpers"
    models = await api.get("/neo/get-available-models")
    assert models["default_model_type"] == "MODEL_TYPE_SMART"
    assert "MODEL_TYPE_FAST" in models["available_models"]
    tags = await api.get("/neo/character/v1/character_tag_options")
    assert {"id": "0", "name": "Anime"} in tags["tags"]


async def test_plus_lists(api: Api, emu: Emulator) -> None:
    await api.create(name="My Robot", visibility="PRIVATE")
    curated = await api.get("/plus/chat/curated_categories/characters/")
    groups = curated["characters_by_curated_category"]
    assert list(groups)[:3] == ["Helpers", "Games", "Comedy"]
    assert names(groups["Helpers"]) == ["Echo", "Sage"]
    helper = groups["Helpers"][0]
    assert isinstance(helper["user__id"], int)
    assert isinstance(helper["participant__num_interactions"], int)
    featured = await api.get("/plus/chat/characters/featured_v2/")
    assert len(featured["characters"]) == 4
    trending = await api.get("/plus/chat/characters/trending/")
    assert names(trending["trending_characters"])[0] == "Captain Byte"
    public = await api.get("/plus/chat/characters/public/")
    assert "My Robot" not in names(public["characters"])
    own = await api.get("/plus/chat/characters/", params={"scope": "user"})
    assert names(own["characters"]) == ["My Robot"]
    assert own["characters"][0]["user__id"] == int(emu.user_id)
    await api.get("/plus/chat/characters/", params={"scope": "public"}, status=400)


async def test_recent_characters_follow_chats(api: Api, emu: Emulator) -> None:
    assert await api.get("/plus/chat/characters/recent/") == {"characters": []}
    async with api.http.ws_connect(
        emu.url + "/neo/ws/", headers={"Cookie": f'HTTP_AUTHORIZATION="Token {emu.token}"'}
    ) as ws:
        for name in ("Sage", "Nova", "Sage"):
            chat = {
                "chat_id": str(uuid.uuid4()),
                "creator_id": emu.user_id,
                "visibility": "VISIBILITY_PRIVATE",
                "character_id": emu.character(name).id,
                "type": "TYPE_ONE_ON_ONE",
            }
            frame = {"command": "create_chat", "request_id": "r", "payload": {"chat": chat}}
            await ws.send_str(json.dumps(frame))
            assert json.loads((await ws.receive(timeout=5)).data)["command"] == (
                "create_chat_response"
            )
    recent = await api.get("/plus/chat/characters/recent/")
    assert names(recent["characters"]) == ["Sage", "Nova"]
    assert TS.match(recent["characters"][0]["max_last_interaction"])


# ---- reports and neo creator search ------------------------------------------------------


async def test_emulator_report_shapes_and_errors(emu: Emulator) -> None:
    url = f"{emu.url}/neo/report/create"
    headers = {"Authorization": f"Token {emu.token}"}
    sage = emu.character("Sage").id
    body = {
        "category": "SPAM",
        "comments": "ads",
        "reported_resource_id": sage,
        "type": "CHARACTER",
    }
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers=headers) as r:
            assert r.status == 200
            report = (await r.json())["report"]
            assert len(report["report_id"]) == 36
        async with session.post(url, json={**body, "category": "BORING"}, headers=headers) as r:
            assert r.status == 400
            assert (await r.json())["command"] == "neo_error"
        async with session.post(
            url, json={**body, "reported_resource_id": "x" * 43}, headers=headers
        ) as r:
            assert r.status == 404
            assert (await r.json())["comment"] == "Character not found"
        async with session.post(url, json=body) as r:
            assert r.status == 401


async def test_emulator_neo_creator_search(emu: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{emu.url}/neo/search/v1/creator", params={"query": "cast"}) as r:
            assert r.status == 200
            creators = (await r.json())["creators"]
        async with session.get(f"{emu.url}/neo/search/v1/creator", params={"query": "zzz"}) as r:
            assert (await r.json())["creators"] == []
    assert [c["username"] for c in creators] == ["caiclient_cast"]
    assert creators[0]["num_characters"] == len(emu.characters)


# ---- the cast's streaming pieces ----------------------------------------------------------


@pytest.mark.parametrize("n", range(2, 12))
def test_split_cumulative_strictly_growing(n: int) -> None:
    text = "The quick brown fox jumps over the lazy dog, twice over."
    pieces = split_cumulative(text, n)
    assert len(pieces) == n
    assert pieces[-1] == text
    assert all(p and text.startswith(p) for p in pieces)
    assert all(len(a) < len(b) for a, b in itertools.pairwise(pieces))
