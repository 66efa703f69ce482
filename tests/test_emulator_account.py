"""The emulator's account area (PROTOCOL.md §4), driven by aiohttp's client, not caiclient."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from caiclient.emulator import Emulator, SeedCharacter
from caiclient.emulator.store import User

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

B64URL_43 = re.compile(r"^[A-Za-z0-9_-]{43}$")
PERSONA_SHORT_KEYS = {
    "external_id", "title", "greeting", "description", "definition", "avatar_file_name",
    "visibility", "copyable", "participant__name", "participant__num_interactions", "user__id",
    "user__username", "img_gen_enabled", "default_voice_id", "is_persona",
}  # fmt: skip
PERSONA_KEYS = {
    "external_id", "title", "name", "visibility", "copyable", "greeting", "description",
    "identifier", "avatar_file_name", "songs", "img_gen_enabled", "base_img_prompt",
    "img_prompt_regex", "strip_img_prompt_from_msg", "definition", "default_voice_id",
    "starter_prompts", "comments_enabled", "categories", "user__username", "participant__name",
    "participant__user__username", "num_interactions", "voice_id",
}  # fmt: skip
DEFAULT_SETTINGS = {
    "voiceOverrides": {},
    "personaOverrides": {},
    "voiceOverridesMigrated": True,
    "proactiveDmOptedOut": False,
    "outputStylePreferences": {"bannedWords": []},
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


class Api:
    """Tiny helper: JSON requests as one user against one host prefix."""

    def __init__(self, http: aiohttp.ClientSession, emu: Emulator, token: str, prefix: str):
        self.http, self.base, self.headers = http, f"{emu.url}{prefix}", auth(token)

    async def get(self, path: str, **params: str) -> tuple[int, Any]:
        url = self.base + path
        async with self.http.get(url, params=params, headers=self.headers) as resp:
            return resp.status, await resp.json()

    async def post(self, path: str, body: object) -> tuple[int, Any]:
        async with self.http.post(self.base + path, json=body, headers=self.headers) as resp:
            return resp.status, await resp.json()


@pytest.fixture
def api(emu: Emulator, http: aiohttp.ClientSession) -> Api:
    return Api(http, emu, emu.token, "/plus")


@pytest.fixture
def other(emu: Emulator) -> User:
    return emu.store.add_user("someone", "Some One")


def as_user(http: aiohttp.ClientSession, emu: Emulator, user: User) -> Api:
    return Api(http, emu, user.token, "/plus")


def persona_body(name: str = "Tester", **extra: Any) -> dict[str, Any]:
    """The create body of PROTOCOL.md §4.5, as PyCharacterAI sends it."""
    body = {
        "title": name, "name": name, "identifier": "id:3f1c2a4e-0000-4000-8000-000000000001",
        "categories": [], "visibility": "PRIVATE", "copyable": False,
        "description": "This is my persona.", "greeting": "Hello! This is my persona",
        "definition": "I like tea.", "avatar_rel_path": "", "avatar_file_name": "",
        "img_gen_enabled": False, "base_img_prompt": "", "voice_id": "",
        "strip_img_prompt_from_msg": False,
    }  # fmt: skip
    body.update(extra)
    return body


async def create_persona(api: Api, name: str = "Tester", **extra: Any) -> dict[str, Any]:
    status, body = await api.post("/chat/persona/create/", persona_body(name, **extra))
    assert status == 200 and body["status"] == "OK", body
    persona: dict[str, Any] = body["persona"]
    return persona


# ---- auth: every route refuses a bad token (except the anonymous one) ---------------------

ROUTES = [
    ("GET", "/chat/user/"),
    ("POST", "/chat/user/update/"),
    ("GET", "/chat/user/settings/"),
    ("POST", "/chat/user/update_settings/"),
    ("POST", "/chat/user/public/"),
    ("GET", "/chat/user/followers/"),
    ("GET", "/chat/user/following/"),
    ("POST", "/chat/user/public/followers/"),
    ("POST", "/chat/user/public/following/"),
    ("POST", "/chat/user/follow/"),
    ("POST", "/chat/user/unfollow/"),
    ("GET", "/chat/personas/"),
    ("GET", "/chat/persona/"),
    ("POST", "/chat/persona/create/"),
    ("POST", "/chat/persona/update/"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_routes_reject_a_bad_token(
    emu: Emulator, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    url = f"{emu.url}/plus{path}"
    async with http.request(method, url, json={}, headers=auth("0" * 40)) as resp:
        assert resp.status == 401
        assert await resp.json() == {"detail": "Invalid token."}


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[0] == "POST"])
async def test_malformed_bodies_are_400(
    emu: Emulator, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    url = f"{emu.url}/plus{path}"
    async with http.post(url, data=b"{oops", headers=auth(emu.token)) as resp:
        assert resp.status == 400
        assert "detail" in await resp.json()
    async with http.post(url, json=["not", "an", "object"], headers=auth(emu.token)) as resp:
        assert resp.status == 400


# ---- own account (§4.1, §4.2) -------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/plus", "/beta"])
async def test_update_is_reflected_in_chat_user(
    emu: Emulator, http: aiohttp.ClientSession, prefix: str
) -> None:
    api = Api(http, emu, emu.token, prefix)
    body = {
        "username": "renamed_user",
        "name": "Renamed",
        "avatar_type": "UPLOADED",
        "avatar_rel_path": "uploaded/2024/5/1/me.webp",
        "bio": "Hello there",
    }
    assert await api.post("/chat/user/update/", body) == (200, {"status": "OK"})
    status, me = await api.get("/chat/user/")
    assert status == 200
    outer = me["user"]
    assert outer["user"]["username"] == "renamed_user"
    assert outer["user"]["account"]["name"] == outer["name"] == "Renamed"
    assert outer["user"]["account"]["avatar_type"] == "UPLOADED"
    assert outer["user"]["account"]["avatar_file_name"] == "uploaded/2024/5/1/me.webp"
    assert outer["bio"] == "Hello there"
    reset = {"avatar_type": "DEFAULT"}
    assert await api.post("/chat/user/update/", reset) == (200, {"status": "OK"})
    account = (await api.get("/chat/user/"))[1]["user"]["user"]["account"]
    assert account["avatar_type"] == "DEFAULT" and account["avatar_file_name"] is None


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"username": "x"}, "Username must be 2-20 characters"),
        ({"username": "u" * 21}, "Username must be 2-20 characters"),
        ({"name": "N"}, "Name must be 2-50 characters"),
        ({"name": "n" * 51}, "Name must be 2-50 characters"),
        ({"bio": "b" * 501}, "Bio must be at most 500 characters"),
        ({"avatar_type": "SPARKLY"}, "avatar_type must be UPLOADED or DEFAULT"),
    ],
)
async def test_update_limits_are_enforced(
    emu: Emulator, api: Api, change: dict[str, str], error: str
) -> None:
    assert await api.post("/chat/user/update/", change) == (
        200,
        {"status": "NOT_OK", "error": error},
    )
    assert emu.store.seed_user.username == "emulator_user"
    assert emu.store.seed_user.name == "Emulator User" and emu.store.seed_user.bio is None


async def test_limits_accept_their_bounds(api: Api) -> None:
    for body in ({"username": "ab", "name": "ab", "bio": ""}, {"username": "u" * 20}):
        assert await api.post("/chat/user/update/", body) == (200, {"status": "OK"})
    body = {"name": "n" * 50, "bio": "b" * 500}
    assert await api.post("/chat/user/update/", body) == (200, {"status": "OK"})


async def test_username_must_be_unique(emu: Emulator, api: Api, other: User) -> None:
    for taken in ("someone", "SomeOne"):
        status, body = await api.post("/chat/user/update/", {"username": taken})
        assert (status, body) == (200, {"status": "NOT_OK", "error": "Username is already taken"})
    # Re-sending one's own username (the web client sends every field) is fine.
    status, body = await api.post("/chat/user/update/", {"username": emu.username})
    assert (status, body) == (200, {"status": "OK"})


async def test_update_wrong_types_are_400(api: Api) -> None:
    status, body = await api.post("/chat/user/update/", {"name": 42})
    assert status == 400 and "detail" in body


# ---- settings (§4.4) ----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/plus", "/beta"])
async def test_default_settings_shape(
    emu: Emulator, http: aiohttp.ClientSession, prefix: str
) -> None:
    assert await Api(http, emu, emu.token, prefix).get("/chat/user/settings/") == (
        200,
        DEFAULT_SETTINGS,
    )


async def test_update_settings_whole_object(api: Api) -> None:
    persona = await create_persona(api)
    new = {
        "default_persona_id": persona["external_id"],
        "voiceOverrides": {"char-a": "voice-1"},
        "personaOverrides": {"char-b": persona["external_id"]},
        "voiceOverridesMigrated": False,
        "proactiveDmOptedOut": True,
        "outputStylePreferences": {"bannedWords": ["moist"]},
    }
    status, body = await api.post("/chat/user/update_settings/", new)
    assert (status, body) == (200, {"success": True, "settings": new})
    assert await api.get("/chat/user/settings/") == (200, new)


async def test_update_settings_merges_posted_keys_and_ignores_unknown(api: Api) -> None:
    persona = await create_persona(api)
    body = {"default_persona_id": persona["external_id"], "somethingNew": 1}
    assert (await api.post("/chat/user/update_settings/", body))[1]["success"] is True
    _, body = await api.post("/chat/user/update_settings/", {"proactiveDmOptedOut": True})
    assert body["settings"]["default_persona_id"] == persona["external_id"]
    assert body["settings"]["proactiveDmOptedOut"] is True
    assert "somethingNew" not in body["settings"]
    # null clears the default persona; the key then disappears (it is optional, §4.4).
    _, body = await api.post("/chat/user/update_settings/", {"default_persona_id": None})
    assert "default_persona_id" not in body["settings"]


async def test_update_settings_refuses_foreign_and_unknown_personas(
    emu: Emulator, http: aiohttp.ClientSession, api: Api, other: User
) -> None:
    theirs = await create_persona(as_user(http, emu, other))
    answers = []
    for persona_id in (theirs["external_id"], "A" * 43):
        for body in ({"default_persona_id": persona_id}, {"personaOverrides": {"c": persona_id}}):
            answers.append(await api.post("/chat/user/update_settings/", body))
    assert answers == [(200, {"success": False, "error": "Persona not found"})] * 4
    assert await api.get("/chat/user/settings/") == (200, DEFAULT_SETTINGS)


async def test_update_settings_wrong_types_are_400(api: Api) -> None:
    for body in ({"voiceOverrides": []}, {"proactiveDmOptedOut": "yes"}):
        status, answer = await api.post("/chat/user/update_settings/", body)
        assert status == 400 and "detail" in answer


async def test_settings_are_per_user(
    emu: Emulator, http: aiohttp.ClientSession, api: Api, other: User
) -> None:
    await api.post("/chat/user/update_settings/", {"proactiveDmOptedOut": True})
    assert await as_user(http, emu, other).get("/chat/user/settings/") == (200, DEFAULT_SETTINGS)


# ---- public profiles and follows (§4.3) ---------------------------------------------------


async def test_public_user_shape(emu: Emulator, api: Api, other: User) -> None:
    def made(name: str, visibility: str) -> SeedCharacter:
        character = SeedCharacter(
            id=name * 43, name=name, title="t", greeting="g", description="d",
            avatar_file_name="a.webp", style="generic", visibility=visibility,
            creator_id=other.id, creator_username=other.username, num_interactions=7,
        )  # fmt: skip
        emu.store.characters[character.id] = character
        return character

    public, _ = made("P", "PUBLIC"), made("Q", "PRIVATE")
    await api.post("/chat/user/follow/", {"username": "someone"})
    status, body = await api.post("/chat/user/public/", {"username": "someone"})
    assert status == 200
    profile = body["public_user"]
    assert set(profile) == {
        "username", "name", "num_following", "num_followers", "avatar_file_name",
        "subscription_type", "bio", "creator_info", "characters",
    }  # fmt: skip
    assert profile["username"] == "someone" and profile["name"] == "Some One"
    assert (profile["num_followers"], profile["num_following"]) == (1, 0)
    assert profile["subscription_type"] == "NONE" and profile["creator_info"] is None
    assert [c["external_id"] for c in profile["characters"]] == [public.id]
    short = profile["characters"][0]
    assert short["participant__name"] == "P" and short["user__username"] == "someone"
    assert short["user__id"] == int(other.id) and short["participant__num_interactions"] == 7


async def test_unknown_username_is_a_django_500(emu: Emulator, http: aiohttp.ClientSession) -> None:
    for path, body in [
        ("/chat/user/public/", {"username": "nobody"}),
        ("/chat/user/follow/", {"username": "nobody"}),
        ("/chat/user/unfollow/", {"username": "nobody"}),
        ("/chat/user/public/followers/", {"username": "nobody", "pageParam": 1}),
        ("/chat/user/public/following/", {"username": "nobody", "pageParam": 1}),
    ]:
        url = f"{emu.url}/plus{path}"
        async with http.post(url, json=body, headers=auth(emu.token)) as resp:
            assert resp.status == 500
            assert resp.content_type == "text/html"
            assert "Server Error (500)" in await resp.text()


async def test_follow_and_unfollow(
    emu: Emulator, http: aiohttp.ClientSession, api: Api, other: User
) -> None:
    for _ in range(2):  # Following twice is a no-op.
        assert await api.post("/chat/user/follow/", {"username": "someone"}) == (
            200,
            {"status": "OK"},
        )
    assert await api.get("/chat/user/following/") == (200, {"following": ["someone"]})
    assert await api.get("/chat/user/followers/") == (200, {"followers": []})
    theirs = as_user(http, emu, other)
    assert await theirs.get("/chat/user/followers/") == (200, {"followers": [emu.username]})
    for _ in range(2):
        assert await api.post("/chat/user/unfollow/", {"username": "someone"}) == (
            200,
            {"status": "OK"},
        )
    assert await api.get("/chat/user/following/") == (200, {"following": []})


async def test_following_yourself_is_refused(emu: Emulator, api: Api) -> None:
    status, body = await api.post("/chat/user/follow/", {"username": emu.username})
    assert (status, body) == (200, {"status": "NOT_OK", "error": "You cannot follow yourself"})
    assert await api.get("/chat/user/following/") == (200, {"following": []})


async def test_public_follower_pages(
    emu: Emulator, http: aiohttp.ClientSession, api: Api, other: User
) -> None:
    fans = [emu.store.add_user(f"fan{i:02d}") for i in range(25)]
    for fan in fans:
        await as_user(http, emu, fan).post("/chat/user/follow/", {"username": "someone"})
    status, page1 = await api.post(
        "/chat/user/public/followers/", {"username": "someone", "pageParam": 1}
    )
    assert status == 200 and page1["has_next_page"] is True
    assert [u["username"] for u in page1["users"]] == [f.username for f in fans[:20]]
    assert set(page1["users"][0]) == {"username", "account__avatar_file_name", "account__bio"}
    # N2 posts the same body to /chat/user/followers (no ``public/``, §15.10).
    _, page2 = await api.post("/chat/user/followers", {"username": "someone", "pageParam": 2})
    assert [u["username"] for u in page2["users"]] == [f.username for f in fans[20:]]
    assert page2["has_next_page"] is False
    _, theirs = await api.post("/chat/user/public/following/", {"username": "fan00"})
    assert theirs == {
        "users": [{"username": "someone", "account__avatar_file_name": None, "account__bio": None}],
        "has_next_page": False,
    }


@pytest.mark.parametrize("page", [0, -1, "1", None])
async def test_bad_page_param_is_400(api: Api, other: User, page: object) -> None:
    body = {"username": "someone", "pageParam": page}
    status, answer = await api.post("/chat/user/public/followers/", body)
    assert status == 400 and "detail" in answer


async def test_anon_public_users(emu: Emulator, http: aiohttp.ClientSession, other: User) -> None:
    url = f"{emu.url}/plus/chat/anon/users/public/"
    async with http.post(url, json={"usernames": ["someone", "nobody"]}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body == {
        "public_users": [
            {
                "username": "someone",
                "account__avatar_file_name": None,
                "character_info": {
                    "num_characters": 0,
                    "num_interactions": 0,
                    "top_1_char": None,
                    "top_2_char": None,
                },
            }
        ]
    }


# ---- personas (§4.5) ----------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/plus", "/beta"])
async def test_persona_create_get_list(
    emu: Emulator, http: aiohttp.ClientSession, prefix: str
) -> None:
    api = Api(http, emu, emu.token, prefix)
    persona = await create_persona(api)
    assert set(persona) == PERSONA_KEYS
    assert B64URL_43.match(persona["external_id"])
    assert persona["identifier"] == "id:3f1c2a4e-0000-4000-8000-000000000001"
    assert persona["name"] == persona["title"] == persona["participant__name"] == "Tester"
    assert persona["definition"] == "I like tea." and persona["visibility"] == "PRIVATE"
    assert persona["user__username"] == emu.username
    assert persona["participant__user__username"].startswith("internal_id:")
    status, got = await api.get("/chat/persona/", id=persona["external_id"])
    assert (status, got) == (200, {"persona": persona})
    status, listed = await api.get("/chat/personas/", force_refresh="1")
    assert status == 200 and len(listed["personas"]) == 1
    short = listed["personas"][0]
    assert set(short) == PERSONA_SHORT_KEYS
    assert short["is_persona"] is True and short["user__id"] == int(emu.user_id)
    assert short["participant__name"] == "Tester" and short["external_id"] == persona["external_id"]


async def test_persona_ids_are_unique(api: Api) -> None:
    ids = {(await create_persona(api, f"P{i:03d}"))["external_id"] for i in range(5)}
    assert len(ids) == 5
    _, listed = await api.get("/chat/personas/", force_refresh="0")
    assert [p["participant__name"] for p in listed["personas"]] == [f"P{i:03d}" for i in range(5)]


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"name": "ab", "title": "ab"}, "Name must be 3-20 characters"),
        ({"name": "n" * 21, "title": "n"}, "Name must be 3-20 characters"),
        ({"definition": "d" * 751}, "Definition must be at most 750 characters"),
        ({"visibility": "SECRET"}, "visibility must be one of PRIVATE, PUBLIC, UNLISTED"),
    ],
)
async def test_persona_limits(api: Api, extra: dict[str, str], error: str) -> None:
    status, body = await api.post("/chat/persona/create/", persona_body(**extra))
    assert (status, body) == (200, {"status": "NOT_OK", "error": error})
    assert await api.get("/chat/personas/") == (200, {"personas": []})


async def test_persona_limit_bounds_accepted(api: Api) -> None:
    await create_persona(api, "abc", definition="d" * 750)
    await create_persona(api, "n" * 20)


async def test_persona_update_and_archive(api: Api) -> None:
    persona = await create_persona(api)
    await api.post("/chat/user/update_settings/", {"default_persona_id": persona["external_id"]})
    await api.post(
        "/chat/user/update_settings/", {"personaOverrides": {"c": persona["external_id"]}}
    )
    change = {**persona, "definition": "Now coffee.", "external_id": persona["external_id"]}
    status, body = await api.post("/chat/persona/update/", change)
    assert status == 200 and body["status"] == "OK"
    assert body["persona"]["definition"] == "Now coffee." and body["persona"]["name"] == "Tester"
    too_long = {"external_id": persona["external_id"], "definition": "d" * 751}
    assert (await api.post("/chat/persona/update/", too_long))[1]["status"] == "NOT_OK"
    _, got = await api.get("/chat/persona/", id=persona["external_id"])
    assert got["persona"]["definition"] == "Now coffee."
    archive = {"external_id": persona["external_id"], "archived": True}
    status, body = await api.post("/chat/persona/update/", archive)
    assert status == 200 and body["status"] == "OK"
    assert await api.get("/chat/personas/") == (200, {"personas": []})
    assert await api.get("/chat/persona/", id=persona["external_id"]) == (
        404,
        {"error": "Persona not found"},
    )
    # Settings no longer point at the deleted persona.
    assert await api.get("/chat/user/settings/") == (200, DEFAULT_SETTINGS)


async def test_foreign_persona_answers_like_a_missing_one(
    emu: Emulator, http: aiohttp.ClientSession, api: Api, other: User
) -> None:
    theirs = await create_persona(as_user(http, emu, other))
    missing = "B" * 43
    for persona_id in (theirs["external_id"], missing):
        assert await api.get("/chat/persona/", id=persona_id) == (
            404,
            {"error": "Persona not found"},
        )
        for extra in ({"definition": "hacked"}, {"archived": True}):
            body = {"external_id": persona_id, **extra}
            assert await api.post("/chat/persona/update/", body) == (
                404,
                {"status": "NOT_OK", "error": "Persona not found"},
            )
    assert await api.get("/chat/personas/") == (200, {"personas": []})
    _, still = await as_user(http, emu, other).get("/chat/persona/", id=theirs["external_id"])
    assert still["persona"]["definition"] == "I like tea."


async def test_persona_get_without_id_is_400(api: Api) -> None:
    assert await api.get("/chat/persona/") == (400, {"error": "id is required"})
    status, _ = await api.post("/chat/persona/update/", {"definition": "x"})
    assert status == 400


async def test_persona_wrong_types_are_400(api: Api) -> None:
    status, body = await api.post("/chat/persona/create/", persona_body(name=5))
    assert status == 400 and "detail" in body


# ---- persistence ----------------------------------------------------------------------------


async def test_account_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    async with Emulator(state_file=state) as first, aiohttp.ClientSession() as http:
        first.store.add_user("someone")
        api = Api(http, first, first.token, "/plus")
        await api.post("/chat/user/update/", {"bio": "kept", "name": "Kept Name"})
        await api.post("/chat/user/follow/", {"username": "someone"})
        persona = await create_persona(api)
        gone = await create_persona(api, "Gone")
        await api.post(
            "/chat/persona/update/", {"external_id": gone["external_id"], "archived": True}
        )
        new = {"default_persona_id": persona["external_id"], "proactiveDmOptedOut": True}
        await api.post("/chat/user/update_settings/", new)
    async with Emulator(state_file=state) as second, aiohttp.ClientSession() as http:
        api = Api(http, second, second.token, "/plus")
        me = (await api.get("/chat/user/"))[1]["user"]
        assert (me["bio"], me["name"]) == ("kept", "Kept Name")
        assert await api.get("/chat/user/following/") == (200, {"following": ["someone"]})
        _, listed = await api.get("/chat/personas/")
        assert [p["external_id"] for p in listed["personas"]] == [persona["external_id"]]
        _, settings = await api.get("/chat/user/settings/")
        assert settings["default_persona_id"] == persona["external_id"]
        assert settings["proactiveDmOptedOut"] is True


# ---- REST auth and account ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "Authentication credentials were not provided."),
        ({"Authorization": "Token " + "0" * 40}, "Invalid token."),
        ({"Authorization": "Bearer whatever"}, "Invalid token."),
    ],
)
async def test_rest_rejects_bad_auth(
    emu: Emulator, http: aiohttp.ClientSession, headers: dict[str, str], detail: str
) -> None:
    async with http.get(f"{emu.url}/plus/chat/user/", headers=headers) as resp:
        assert resp.status == 401
        assert await resp.json() == {"detail": detail}


@pytest.mark.parametrize("prefix", ["/plus", "/beta"])
async def test_chat_user_shape(emu: Emulator, http: aiohttp.ClientSession, prefix: str) -> None:
    headers = {"authorization": f"Token {emu.token}"}  # lowercase, as PyCharacterAI sends
    async with http.get(f"{emu.url}{prefix}/chat/user/", headers=headers) as resp:
        assert resp.status == 200
        body = await resp.json()
    outer = body["user"]
    inner = outer["user"]
    assert inner["id"] == int(emu.user_id) and isinstance(inner["id"], int)
    assert inner["username"] == emu.username
    assert inner["first_name"] is None and inner["is_staff"] is False
    assert inner["subscription"] is None and inner["entitlements"] == []
    assert inner["account"]["avatar_type"] == "DEFAULT"
    assert inner["account"]["onboarding_complete"] is True
    assert outer["is_human"] is True and TS.match(outer["date_joined"])
    assert outer["hidden_characters"] == [] and outer["suspended_until"] is None
    assert set(outer) >= {"name", "email", "bio", "interests", "date_of_birth", "blocked_users"}


async def test_unknown_paths_are_json_404(emu: Emulator, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{emu.url}/plus/chat/nope/") as resp:
        assert resp.status == 404
        assert await resp.json() == {"detail": "Not found."}
    async with http.get(f"{emu.url}/neo/nope/") as resp:
        assert resp.status == 404
        assert (await resp.json())["command"] == "neo_error"


async def test_malformed_json_body_is_400(emu: Emulator, http: aiohttp.ClientSession) -> None:
    url = f"{emu.url}/plus/chat/user/update/"
    async with http.post(url, data=b"{not json", headers=auth(emu.token)) as resp:
        assert resp.status == 400
        assert "detail" in await resp.json()
    async with http.post(url, json={"bio": "hello"}, headers=auth(emu.token)) as resp:
        assert await resp.json() == {"status": "OK"}
