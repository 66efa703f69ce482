"""Tier 2: ``client.account``, ``client.personas`` and ``client.users`` over MockTransport.

No network: a handler plays the plus host with literal bodies (docs/protocol.md §4). Each
test checks the exact request (method, URL, query, JSON body), the parsing of the answer,
or the typed error of an in-band refusal. The HTTP error shapes every call shares are in
tests/test_client_errors_mock.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from caiclient import (
    AsyncClient,
    PersonaNotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    UserNotFound,
    ValidationError,
)
from caiclient.models import CharacterShort, Persona, PublicUser, Settings, User
from caiclient.protocol.http import Request, Response
from caiclient.transports import MockTransport
from mock_service import (
    CHARACTER_2,
    CHARACTER_ID,
    DJANGO_500_PAGE,
    ME,
    PERSONA_ID,
    PLUS,
    TOKEN,
    Service,
    json_body,
    not_ok,
    text_body,
    unavailable,
    urls,
    wire,
)

ME_URL = f"{PLUS}/chat/user/"
UPDATE_URL = f"{PLUS}/chat/user/update/"
SETTINGS_URL = f"{PLUS}/chat/user/settings/"
UPDATE_SETTINGS_URL = f"{PLUS}/chat/user/update_settings/"
PERSONA_URL = f"{PLUS}/chat/persona/"
PERSONA_UPDATE_URL = f"{PLUS}/chat/persona/update/"
PUBLIC_URL = f"{PLUS}/chat/user/public/"

SETTINGS = {
    "default_persona_id": PERSONA_ID,
    "voiceOverrides": {CHARACTER_ID: "9b1d2f3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f"},
    "personaOverrides": {CHARACTER_2: PERSONA_ID},
    "voiceOverridesMigrated": True,
    "proactiveDmOptedOut": False,
    "outputStylePreferences": {"bannedWords": ["moist"], "tone": "warm"},
    "someFutureSetting": {"enabled": True},
}
"""``GET /chat/user/settings/`` (§4.4), with keys this library does not model."""

PERSONA = {
    "external_id": PERSONA_ID,
    "title": "Ada",
    "name": "Ada",
    "visibility": "PRIVATE",
    "copyable": False,
    "greeting": "Hello, I am Ada.",
    "description": "A mathematician.",
    "identifier": "id:6f1c2a8e-0d4b-4b8e-9f61-2f0f5b1f9c11",
    "avatar_file_name": None,
    "songs": [],
    "img_gen_enabled": False,
    "base_img_prompt": None,
    "img_prompt_regex": "",
    "strip_img_prompt_from_msg": False,
    "definition": "Loves engines.",
    "default_voice_id": None,
    "starter_prompts": {"phrases": []},
    "comments_enabled": True,
    "categories": [],
    "user__username": "ada_l",
    "participant__name": "Ada",
    "participant__user__username": "internal_id:123456789:6f1c2a8e",
    "num_interactions": 0,
    "voice_id": None,
}
"""``GET /chat/persona/?id=`` → ``{"persona": PERSONA}`` (§4.5)."""


@pytest.fixture
def service() -> Service:
    return Service().me()


# ---- account.me -----------------------------------------------------------------------------


async def test_me_is_a_get_with_the_token(api: AsyncClient, transport: MockTransport) -> None:
    await api.account.me()
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params, sent.body) == ("GET", ME_URL, None, None)
    assert sent.headers["Authorization"] == f"Token {TOKEN}"


async def test_me_parses_the_account(api: AsyncClient) -> None:
    me = await api.account.me()
    assert me == User(
        id="123456789",
        username="ada_l",
        name="Ada Lovelace",
        avatar_file_name="uploaded/2024/05/01/ada.webp",
        bio="Analytical engines.",
        email="ada@example.com",
        is_staff=False,
    )
    assert not me.is_guest


@pytest.mark.parametrize(
    ("inner", "outer", "expected_name", "expected_avatar"),
    [
        ({"account": None}, {"name": "Outer Name"}, "Outer Name", None),
        ({"account": {"name": "", "avatar_file_name": ""}}, {}, "ada_l", None),
        ({}, {}, "ada_l", None),
        (
            {"account": {"name": "Acc", "avatar_file_name": "a.webp"}},
            {"name": "X"},
            "Acc",
            "a.webp",
        ),
    ],
)
async def test_me_falls_back_for_names_and_avatars(
    service: Service,
    api: AsyncClient,
    inner: dict[str, Any],
    outer: dict[str, Any],
    expected_name: str,
    expected_avatar: str | None,
) -> None:
    service.me({"user": {"user": {"username": "ada_l", "id": 7, **inner}, **outer}})
    me = await api.account.me()
    assert (me.id, me.name, me.avatar_file_name) == ("7", expected_name, expected_avatar)


async def test_me_is_fresh_each_time(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    renamed = json.loads(json.dumps(ME))
    renamed["user"]["user"]["username"] = "ada_2"
    service.route("GET", ME_URL, json_body(ME), json_body(renamed))
    assert (await api.account.me()).username == "ada_l"
    assert (await api.account.me()).username == "ada_2"
    assert len(transport.sent) == 2


async def test_guest_accounts_are_recognised(service: Service, api: AsyncClient) -> None:
    service.me({"user": {"user": {"username": "Guest1a2b3c", "id": 9}}})
    assert (await api.account.me()).is_guest


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b'{"user": null}', b'{"user": {"user": {"id": 1}}}', b"<html>hi</html>"],
)
async def test_me_in_an_unknown_shape_is_a_protocol_error(
    service: Service, api: AsyncClient, body: bytes
) -> None:
    service.route("GET", ME_URL, Response(200, {}, body))
    with pytest.raises(ProtocolError):
        await api.account.me()


# ---- account.update -------------------------------------------------------------------------


def with_bio(bio: str | None) -> dict[str, Any]:
    changed = json.loads(json.dumps(ME))
    changed["user"]["bio"] = bio
    return changed


async def test_update_sends_every_field_and_returns_the_account_read_afresh(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", ME_URL, json_body(ME), json_body(with_bio("New bio")))
    service.route("POST", UPDATE_URL, json_body({"status": "OK"}))
    me = await api.account.update(bio="New bio")
    assert me.bio == "New bio"  # from the second GET, not from the arguments
    assert urls(transport.sent) == [f"GET {ME_URL}", f"POST {UPDATE_URL}", f"GET {ME_URL}"]
    assert wire(transport.sent)[1].json == {
        "username": "ada_l",
        "name": "Ada Lovelace",
        "avatar_type": "UPLOADED",
        "avatar_rel_path": "uploaded/2024/05/01/ada.webp",
        "bio": "New bio",
    }


async def test_update_to_the_default_avatar_sends_no_path(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", UPDATE_URL, json_body({"status": "OK"}))
    await api.account.update(avatar_rel_path="", username="ada_2", name="Ada L")
    assert wire(transport.sent)[1].json == {
        "username": "ada_2",
        "name": "Ada L",
        "avatar_type": "DEFAULT",
        "bio": "Analytical engines.",
    }


async def test_update_of_an_account_without_bio_or_avatar_sends_empty_values(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.me({"user": {"user": {"username": "plain", "id": 5}}})
    service.route("POST", UPDATE_URL, json_body({"status": "OK"}))
    await api.account.update(name="Plain Name")
    assert wire(transport.sent)[1].json == {
        "username": "plain",
        "name": "Plain Name",
        "avatar_type": "DEFAULT",
        "bio": "",
    }


async def test_update_refused_in_band_is_a_server_error_and_nothing_is_reread(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", UPDATE_URL, not_ok("Username is already taken"))
    with pytest.raises(ServerError, match="already taken") as caught:
        await api.account.update(username="someone")
    assert caught.value.body == "Username is already taken"
    assert len(transport.sent) == 2


@pytest.mark.parametrize("body", [b"[]", b'"OK"', b"", b"not json"])
async def test_update_answer_that_is_not_an_object_is_a_protocol_error(
    service: Service, api: AsyncClient, body: bytes
) -> None:
    service.route("POST", UPDATE_URL, Response(200, {}, body))
    with pytest.raises(ProtocolError):
        await api.account.update(bio="x")


async def test_update_is_posted_once_even_when_the_gateway_fails(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", UPDATE_URL, unavailable(503))
    with pytest.raises(ServerError) as caught:
        await api.account.update(bio="x")
    assert caught.value.status == 503
    assert urls(transport.sent).count(f"POST {UPDATE_URL}") == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"username": "x"},
        {"username": "u" * 21},
        {"username": "  "},
        {"name": "N"},
        {"name": "n" * 51},
        {"bio": "b" * 501},
        {"bio": 5},
        {"username": None, "name": 3},
        {"avatar_rel_path": 3},
        {"bio": "ok", "timeout": 0},
        {"bio": "ok", "timeout": "5"},
    ],
)
async def test_update_is_validated_before_sending(
    api: AsyncClient, transport: MockTransport, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        await api.account.update(**kwargs)
    assert transport.sent == []


# ---- account.settings / update_settings -----------------------------------------------------


async def test_settings_parses_the_camel_case_object(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", SETTINGS_URL, json_body(SETTINGS))
    settings = await api.account.settings()
    assert settings == Settings(
        default_persona_id=PERSONA_ID,
        voice_overrides={CHARACTER_ID: "9b1d2f3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f"},
        persona_overrides={CHARACTER_2: PERSONA_ID},
        voice_overrides_migrated=True,
        proactive_dm_opted_out=False,
        banned_words=["moist"],
    )
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("GET", SETTINGS_URL, None)


async def test_settings_with_nulls_and_missing_keys_read_as_empty(
    service: Service, api: AsyncClient
) -> None:
    body = {"default_persona_id": "", "voiceOverrides": None, "outputStylePreferences": {}}
    service.route("GET", SETTINGS_URL, json_body(body))
    assert await api.account.settings() == Settings()


@pytest.mark.parametrize(
    "body", [{"voiceOverrides": 5}, {"proactiveDmOptedOut": "yes"}, {"personaOverrides": []}]
)
async def test_settings_of_the_wrong_types_are_a_protocol_error(
    service: Service, api: AsyncClient, body: dict[str, Any]
) -> None:
    service.route("GET", SETTINGS_URL, json_body(body))
    with pytest.raises(ProtocolError):
        await api.account.settings()


async def test_settings_refused_in_band_is_an_error(service: Service, api: AsyncClient) -> None:
    service.route("GET", SETTINGS_URL, not_ok("Something went wrong"))
    with pytest.raises(ServerError, match="Something went wrong"):
        await api.account.settings()


def saved(settings: dict[str, Any]) -> Response:
    return json_body({"success": True, "settings": settings})


async def test_update_settings_posts_the_whole_object_back_with_the_change(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    answer = {**SETTINGS, "proactiveDmOptedOut": True}
    service.route("GET", SETTINGS_URL, json_body(SETTINGS))
    service.route("POST", UPDATE_SETTINGS_URL, saved(answer))
    new = await api.account.update_settings(proactive_dm_opted_out=True)
    assert new.proactive_dm_opted_out is True
    read, posted = wire(transport.sent)
    assert (read.method, read.url) == ("GET", SETTINGS_URL)
    assert (posted.method, posted.url) == ("POST", UPDATE_SETTINGS_URL)
    assert posted.json == {**SETTINGS, "proactiveDmOptedOut": True}


async def test_update_settings_keeps_unknown_output_style_keys(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", SETTINGS_URL, json_body(SETTINGS))
    service.route("POST", UPDATE_SETTINGS_URL, saved(SETTINGS))
    await api.account.update_settings(banned_words=["damp", "soggy"])
    posted = wire(transport.sent)[1].json
    assert posted["outputStylePreferences"] == {"bannedWords": ["damp", "soggy"], "tone": "warm"}
    assert posted["someFutureSetting"] == {"enabled": True}


async def test_update_settings_returns_what_the_server_saved_not_what_was_sent(
    service: Service, api: AsyncClient
) -> None:
    service.route("GET", SETTINGS_URL, json_body(SETTINGS))
    service.route("POST", UPDATE_SETTINGS_URL, saved({"proactiveDmOptedOut": False}))
    new = await api.account.update_settings(proactive_dm_opted_out=True)
    assert new == Settings()


async def test_update_settings_keywords_win_over_a_settings_object(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", SETTINGS_URL, json_body({}))
    service.route("POST", UPDATE_SETTINGS_URL, saved({}))
    whole = Settings(banned_words=["a"], voice_overrides={CHARACTER_ID: "v1"})
    await api.account.update_settings(whole, banned_words=[])
    posted = wire(transport.sent)[1].json
    assert posted["outputStylePreferences"] == {"bannedWords": []}
    assert posted["voiceOverrides"] == {CHARACTER_ID: "v1"}
    assert posted["proactiveDmOptedOut"] is False  # every field of the Settings object


async def test_clearing_the_default_persona_sends_null(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", SETTINGS_URL, json_body(SETTINGS))
    service.route("POST", UPDATE_SETTINGS_URL, saved({}))
    await api.account.update_settings(default_persona_id=None)
    posted = wire(transport.sent)[1].json
    assert "default_persona_id" in posted and posted["default_persona_id"] is None


async def test_clearing_an_unset_default_persona_adds_no_key(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", SETTINGS_URL, json_body({"voiceOverrides": {}}))
    service.route("POST", UPDATE_SETTINGS_URL, saved({}))
    await api.account.update_settings(default_persona_id=None)
    assert wire(transport.sent)[1].json == {"voiceOverrides": {}}


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        ({"success": False, "error": "Persona not found"}, PersonaNotFound, "Persona not found"),
        ({"success": False, "error": "Rate limit exceeded"}, RateLimited, "Rate limit"),
        ({"success": False, "error": "Invalid settings"}, ServerError, "Invalid settings"),
        ({"success": False}, ServerError, "refused"),
        ({"success": True}, ProtocolError, "update_settings"),
        ({"status": "NOT_OK", "error": "nope"}, ServerError, "nope"),
    ],
)
async def test_update_settings_refusals_are_typed(
    service: Service,
    api: AsyncClient,
    answer: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    service.route("GET", SETTINGS_URL, json_body(SETTINGS))
    service.route("POST", UPDATE_SETTINGS_URL, json_body(answer))
    with pytest.raises(error, match=match):
        await api.account.update_settings(default_persona_id=PERSONA_ID)


async def test_update_settings_does_not_write_back_a_refused_read(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", SETTINGS_URL, not_ok("Something went wrong"))
    service.route("POST", UPDATE_SETTINGS_URL, saved({}))
    with pytest.raises(ServerError):
        await api.account.update_settings(proactive_dm_opted_out=True)
    assert urls(transport.sent) == [f"GET {SETTINGS_URL}"]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        ((), {"no_such_field": 1}),
        ((), {"proactive_dm_opted_out": "yes"}),
        ((), {"voice_overrides": {"c": 5}}),
        ((), {"persona_overrides": {"bad/id": "p"}}),
        ((), {"voice_overrides": {CHARACTER_ID: "has space"}}),
        ((), {"default_persona_id": ""}),
        ((), {"default_persona_id": "a/b"}),
        ((), {"banned_words": "moist"}),
        (({"proactive_dm_opted_out": True},), {}),
        ((Settings(banned_words="x"),), {}),  # type: ignore[arg-type]
        ((), {"proactive_dm_opted_out": True, "timeout": 0}),
    ],
)
async def test_update_settings_is_validated_before_sending(
    api: AsyncClient, transport: MockTransport, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        await api.account.update_settings(*args, **kwargs)
    assert transport.sent == []


# ---- account.followers / following ----------------------------------------------------------


@pytest.mark.parametrize("which", ["followers", "following"])
async def test_own_follow_lists(
    service: Service, api: AsyncClient, transport: MockTransport, which: str
) -> None:
    url = f"{PLUS}/chat/user/{which}/"
    service.route("GET", url, json_body({which: ["babbage", "somerville"]}))
    assert await getattr(api.account, which)() == ["babbage", "somerville"]
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("GET", url, None)


@pytest.mark.parametrize("which", ["followers", "following"])
@pytest.mark.parametrize("body", [{}, {"followers": None, "following": None}])
async def test_own_follow_lists_missing_or_null_are_empty(
    service: Service, api: AsyncClient, which: str, body: dict[str, Any]
) -> None:
    service.route("GET", f"{PLUS}/chat/user/{which}/", json_body(body))
    assert await getattr(api.account, which)() == []


@pytest.mark.parametrize("which", ["followers", "following"])
async def test_own_follow_lists_in_another_shape_are_a_protocol_error(
    service: Service, api: AsyncClient, which: str
) -> None:
    service.route("GET", f"{PLUS}/chat/user/{which}/", json_body({which: [{"username": "x"}]}))
    with pytest.raises(ProtocolError):
        await getattr(api.account, which)()


@pytest.mark.parametrize("call", ["settings", "followers", "following", "me"])
async def test_account_reads_reject_a_bad_timeout(
    api: AsyncClient, transport: MockTransport, call: str
) -> None:
    with pytest.raises(ValidationError):
        await getattr(api.account, call)(timeout=-1)
    assert transport.sent == []


# ---- personas -------------------------------------------------------------------------------


async def test_personas_list(service: Service, api: AsyncClient, transport: MockTransport) -> None:
    short = {
        "external_id": PERSONA_ID,
        "title": "Ada",
        "greeting": "Hello",
        "description": "d",
        "definition": "Loves engines.",
        "avatar_file_name": "",
        "visibility": "PRIVATE",
        "copyable": False,
        "participant__name": "Ada P",
        "participant__num_interactions": 0,
        "user__id": 123456789,
        "user__username": "ada_l",
        "img_gen_enabled": False,
        "default_voice_id": 42,
        "is_persona": True,
    }
    url = f"{PLUS}/chat/personas/"
    service.route("GET", url, json_body({"personas": [short, {"external_id": "P2", "title": "T"}]}))
    found = await api.personas.list()
    assert found == [
        Persona(
            id=PERSONA_ID,
            name="Ada P",
            title="Ada",
            greeting="Hello",
            description="d",
            definition="Loves engines.",
            avatar_file_name=None,
            visibility="PRIVATE",
            copyable=False,
            default_voice_id="42",
            owner_username="ada_l",
        ),
        Persona(id="P2", name="T", title="T"),
    ]
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("GET", url, {"force_refresh": "1"})


@pytest.mark.parametrize("body", [{}, {"personas": None}, {"personas": []}])
async def test_no_personas(service: Service, api: AsyncClient, body: dict[str, Any]) -> None:
    service.route("GET", f"{PLUS}/chat/personas/", json_body(body))
    assert await api.personas.list() == []


async def test_personas_list_refused_in_band_is_an_error(
    service: Service, api: AsyncClient
) -> None:
    service.route("GET", f"{PLUS}/chat/personas/", not_ok("Something went wrong"))
    with pytest.raises(ServerError):
        await api.personas.list()


async def test_persona_get(service: Service, api: AsyncClient, transport: MockTransport) -> None:
    service.route("GET", PERSONA_URL, json_body({"persona": PERSONA}))
    persona = await api.personas.get(PERSONA_ID)
    assert persona == Persona(
        id=PERSONA_ID,
        name="Ada",
        title="Ada",
        greeting="Hello, I am Ada.",
        description="A mathematician.",
        definition="Loves engines.",
        visibility="PRIVATE",
        owner_username="ada_l",
    )
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.params) == ("GET", PERSONA_URL, {"id": PERSONA_ID})


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (json_body({"error": "Persona not found"}, 404), PersonaNotFound),
        (json_body({"error": "Persona not found"}), PersonaNotFound),
        (json_body({"persona": None}), PersonaNotFound),
        (json_body({}), PersonaNotFound),
        (not_ok("does not exist"), PersonaNotFound),
        (json_body({"error": "Database unavailable"}), ServerError),
        (json_body({"persona": {"title": "no id"}}), ProtocolError),
        (json_body({"persona": "Ada"}), ProtocolError),
    ],
)
async def test_persona_get_errors(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("GET", PERSONA_URL, answer)
    with pytest.raises(error):
        await api.personas.get(PERSONA_ID)


async def test_persona_create_sends_the_web_clients_body(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    url = f"{PLUS}/chat/persona/create/"
    service.route("POST", url, json_body({"status": "OK", "persona": PERSONA}))
    made = await api.personas.create("Ada", "Loves engines.")
    assert made.id == PERSONA_ID and made.definition == "Loves engines."
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url) == ("POST", url)
    body = dict(sent.json)
    identifier = body.pop("identifier")
    assert re.fullmatch(
        r"id:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", identifier
    )
    assert body == {
        "title": "Ada",
        "name": "Ada",
        "categories": [],
        "visibility": "PRIVATE",
        "copyable": False,
        "description": "This is my persona.",
        "greeting": "Hello! This is my persona",
        "definition": "Loves engines.",
        "avatar_rel_path": "",
        "avatar_file_name": "",
        "img_gen_enabled": False,
        "base_img_prompt": "",
        "voice_id": "",
        "strip_img_prompt_from_msg": False,
    }


async def test_persona_create_gives_each_persona_a_new_identifier(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", f"{PLUS}/chat/persona/create/", json_body({"persona": PERSONA}))
    await api.personas.create("Ada")
    await api.personas.create("Ada", greeting="Hi!", description="Me.")
    first, second = wire(transport.sent)
    assert first.json["identifier"] != second.json["identifier"]
    assert (second.json["greeting"], second.json["description"]) == ("Hi!", "Me.")
    assert first.json["definition"] == ""


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (not_ok("Greeting is too long"), ServerError, "Greeting is too long"),
        (json_body({"error": "Maximum personas reached"}), ServerError, "Maximum"),
        (json_body({"status": "OK"}), PersonaNotFound, "no persona"),
    ],
)
async def test_persona_create_refusals(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception], match: str
) -> None:
    service.route("POST", f"{PLUS}/chat/persona/create/", answer)
    with pytest.raises(error, match=match):
        await api.personas.create("Ada")


async def test_persona_update_posts_the_known_fields_with_the_changes(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    renamed = {**PERSONA, "name": "Ada B", "title": "Ada B"}
    service.route("GET", PERSONA_URL, json_body({"persona": PERSONA}))
    service.route("POST", PERSONA_UPDATE_URL, json_body({"status": "OK", "persona": renamed}))
    changed = await api.personas.update(PERSONA_ID, name="Ada B", definition="Counts.")
    assert changed.name == "Ada B"
    read, posted = wire(transport.sent)
    assert (read.url, read.params) == (PERSONA_URL, {"id": PERSONA_ID})
    assert (posted.method, posted.url) == ("POST", PERSONA_UPDATE_URL)
    assert posted.json == {
        "title": "Ada B",
        "name": "Ada B",
        "identifier": "id:6f1c2a8e-0d4b-4b8e-9f61-2f0f5b1f9c11",
        "categories": [],
        "visibility": "PRIVATE",
        "copyable": False,
        "description": "A mathematician.",
        "greeting": "Hello, I am Ada.",
        "definition": "Counts.",
        "avatar_file_name": "",
        "img_gen_enabled": False,
        "base_img_prompt": "",
        "voice_id": "",
        "strip_img_prompt_from_msg": False,
        "avatar_rel_path": "",
        "external_id": PERSONA_ID,
    }


async def test_persona_update_of_a_persona_object_reads_it_afresh(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    stale = Persona(id=PERSONA_ID, name="Old", greeting="stale greeting")
    service.route("GET", PERSONA_URL, json_body({"persona": PERSONA}))
    service.route("POST", PERSONA_UPDATE_URL, json_body({"persona": PERSONA}))
    await api.personas.update(stale, description="New.")
    posted = wire(transport.sent)[1].json
    assert (posted["greeting"], posted["description"]) == ("Hello, I am Ada.", "New.")


async def test_persona_update_of_a_missing_persona_posts_nothing(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", PERSONA_URL, json_body({"error": "Persona not found"}, 404))
    with pytest.raises(PersonaNotFound):
        await api.personas.update(PERSONA_ID, name="Ada B")
    assert urls(transport.sent) == [f"GET {PERSONA_URL}"]


async def test_persona_delete_posts_archived(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", PERSONA_URL, json_body({"persona": PERSONA}))
    service.route("POST", PERSONA_UPDATE_URL, json_body({"status": "OK", "persona": PERSONA}))
    assert await api.personas.delete(Persona(id=PERSONA_ID, name="Ada")) is None
    posted = wire(transport.sent)[1].json
    assert posted["archived"] is True and posted["external_id"] == PERSONA_ID
    assert posted["name"] == "Ada"


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (not_ok("Persona not found"), PersonaNotFound),
        (not_ok("Cannot delete the default persona"), ServerError),
        (Response(200, {}, b"[]"), ProtocolError),
    ],
)
async def test_persona_delete_refusals(
    service: Service, api: AsyncClient, answer: Response, error: type[Exception]
) -> None:
    service.route("GET", PERSONA_URL, json_body({"persona": PERSONA}))
    service.route("POST", PERSONA_UPDATE_URL, answer)
    with pytest.raises(error):
        await api.personas.delete(PERSONA_ID)


@pytest.mark.parametrize("call", ["update", "delete"])
async def test_a_persona_gone_before_the_update_post_is_persona_not_found(
    service: Service, api: AsyncClient, call: str
) -> None:
    service.route("GET", PERSONA_URL, json_body({"persona": PERSONA}))
    gone = json_body({"status": "NOT_OK", "error": "Persona not found"}, 404)
    service.route("POST", PERSONA_UPDATE_URL, gone)
    kwargs = {"name": "Ada B"} if call == "update" else {}
    with pytest.raises(PersonaNotFound):
        await getattr(api.personas, call)(PERSONA_ID, **kwargs)


async def test_set_default_checks_the_persona_then_patches_settings(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", PERSONA_URL, json_body({"persona": PERSONA}))
    service.route("GET", SETTINGS_URL, json_body({"voiceOverrides": {}}))
    service.route("POST", UPDATE_SETTINGS_URL, saved({"default_persona_id": PERSONA_ID}))
    settings = await api.personas.set_default(PERSONA_ID)
    assert settings.default_persona_id == PERSONA_ID
    assert urls(transport.sent) == [
        f"GET {PERSONA_URL}",
        f"GET {SETTINGS_URL}",
        f"POST {UPDATE_SETTINGS_URL}",
    ]
    posted = wire(transport.sent)[2].json
    assert posted == {"voiceOverrides": {}, "default_persona_id": PERSONA_ID}


async def test_set_default_none_clears_without_reading_a_persona(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", SETTINGS_URL, json_body(SETTINGS))
    service.route("POST", UPDATE_SETTINGS_URL, saved({}))
    settings = await api.personas.set_default(None)
    assert settings.default_persona_id is None
    assert urls(transport.sent) == [f"GET {SETTINGS_URL}", f"POST {UPDATE_SETTINGS_URL}"]
    assert wire(transport.sent)[1].json["default_persona_id"] is None


async def test_set_default_of_a_missing_persona_changes_no_settings(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", PERSONA_URL, json_body({"error": "Persona not found"}, 404))
    with pytest.raises(PersonaNotFound):
        await api.personas.set_default(PERSONA_ID)
    assert urls(transport.sent) == [f"GET {PERSONA_URL}"]


async def test_set_for_character_adds_and_removes_an_override(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("GET", PERSONA_URL, json_body({"persona": PERSONA}))
    service.route("GET", SETTINGS_URL, json_body(SETTINGS))
    service.route("POST", UPDATE_SETTINGS_URL, saved({}))
    await api.personas.set_for_character(CHARACTER_ID, PERSONA_ID)
    await api.personas.set_for_character(CHARACTER_2, None)
    added = wire(transport.sent)[2].json["personaOverrides"]
    removed = wire(transport.sent)[4].json["personaOverrides"]
    assert added == {CHARACTER_2: PERSONA_ID, CHARACTER_ID: PERSONA_ID}
    assert removed == {}
    assert urls(transport.sent)[3:] == [f"GET {SETTINGS_URL}", f"POST {UPDATE_SETTINGS_URL}"]


async def test_set_for_character_refused_by_the_server(service: Service, api: AsyncClient) -> None:
    service.route("GET", PERSONA_URL, json_body({"persona": PERSONA}))
    service.route("GET", SETTINGS_URL, json_body(SETTINGS))
    service.route(
        "POST", UPDATE_SETTINGS_URL, json_body({"success": False, "error": "Persona not found"})
    )
    with pytest.raises(PersonaNotFound):
        await api.personas.set_for_character(CHARACTER_ID, PERSONA_ID)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("ab",), {}),
        (("n" * 21,), {}),
        (("   ",), {}),
        ((5,), {}),
        (("Tester", "d" * 751), {}),
        (("Tester", 7), {}),
        (("Tester",), {"greeting": 1}),
        (("Tester",), {"description": None}),
        (("Tester",), {"timeout": 0}),
    ],
)
async def test_persona_create_is_validated_before_sending(
    api: AsyncClient, transport: MockTransport, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        await api.personas.create(*args, **kwargs)
    assert transport.sent == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.personas.get("bad/id"),
        lambda c: c.personas.get(""),
        lambda c: c.personas.update(PERSONA_ID),
        lambda c: c.personas.update(PERSONA_ID, name="ab"),
        lambda c: c.personas.update(PERSONA_ID, definition="d" * 751),
        lambda c: c.personas.update(PERSONA_ID, greeting=3),
        lambda c: c.personas.update("..", name="Good Name"),
        lambda c: c.personas.delete(None),
        lambda c: c.personas.delete("a b"),
        lambda c: c.personas.set_default(42),
        lambda c: c.personas.set_for_character("bad id", PERSONA_ID),
        lambda c: c.personas.set_for_character(CHARACTER_ID, "x?y"),
        lambda c: c.personas.list(timeout=0),
        lambda c: c.personas.set_default(PERSONA_ID, timeout=float("nan")),
    ],
)
async def test_persona_calls_are_validated_before_sending(
    api: AsyncClient, transport: MockTransport, call: Any
) -> None:
    with pytest.raises(ValidationError):
        await call(api)
    assert transport.sent == []


# ---- users ----------------------------------------------------------------------------------

PUBLIC_USER = {
    "public_user": {
        "username": "babbage",
        "name": "Charles Babbage",
        "num_following": 2,
        "num_followers": 40,
        "avatar_file_name": "uploaded/b.webp",
        "subscription_type": "NONE",
        "bio": None,
        "creator_info": None,
        "characters": [
            {
                "external_id": CHARACTER_ID,
                "participant__name": "Difference Engine",
                "title": "Counts for you",
                "description": "",
                "greeting": "Ready.",
                "avatar_file_name": "engine.webp",
                "visibility": "PUBLIC",
                "copyable": False,
                "user__id": 987,
                "user__username": "babbage",
                "participant__num_interactions": 1234.0,
                "num_likes": 12,
                "default_voice_id": "",
            }
        ],
    }
}


async def test_users_get(service: Service, api: AsyncClient, transport: MockTransport) -> None:
    service.route("POST", PUBLIC_URL, json_body(PUBLIC_USER))
    profile = await api.users.get("babbage")
    assert profile == PublicUser(
        username="babbage",
        name="Charles Babbage",
        bio=None,
        avatar_file_name="uploaded/b.webp",
        num_followers=40,
        num_following=2,
        subscription_type="NONE",
        characters=[
            CharacterShort(
                id=CHARACTER_ID,
                name="Difference Engine",
                title="Counts for you",
                greeting="Ready.",
                avatar_file_name="engine.webp",
                visibility="PUBLIC",
                copyable=False,
                creator_id="987",
                creator_username="babbage",
                num_interactions=1234,
                upvotes=12,
                default_voice_id=None,
            )
        ],
    )
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.json) == ("POST", PUBLIC_URL, {"username": "babbage"})


@pytest.mark.parametrize(
    "answer",
    [
        text_body(DJANGO_500_PAGE, 500, "text/html"),
        json_body({"public_user": []}),
        json_body({"public_user": None}),
        json_body({}),
        Response(200, {}, b""),
        Response(200, {}, b"  \n"),
        json_body({"detail": "Not found."}, 404),
    ],
)
async def test_every_form_of_an_unknown_user_is_user_not_found(
    service: Service, api: AsyncClient, answer: Response
) -> None:
    service.route("POST", PUBLIC_URL, answer)
    with pytest.raises(UserNotFound, match=r"nobody_here|Not found"):
        await api.users.get("nobody_here")


async def test_a_gateway_failure_is_not_read_as_an_unknown_user(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    service.route("POST", PUBLIC_URL, unavailable(503))
    with pytest.raises(ServerError) as caught:
        await api.users.get("babbage")
    assert not isinstance(caught.value, UserNotFound)
    assert caught.value.status == 503
    assert len(transport.sent) == 1  # a POST: not retried


@pytest.mark.parametrize("which", ["follow", "unfollow"])
async def test_follow_and_unfollow(
    service: Service, api: AsyncClient, transport: MockTransport, which: str
) -> None:
    url = f"{PLUS}/chat/user/{which}/"
    service.route("POST", url, json_body({"status": "OK"}))
    assert await getattr(api.users, which)("babbage") is None
    [sent] = wire(transport.sent)
    assert (sent.method, sent.url, sent.json) == ("POST", url, {"username": "babbage"})


@pytest.mark.parametrize("which", ["follow", "unfollow"])
@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (not_ok("You cannot follow yourself"), ServerError, "yourself"),
        (not_ok("User not found"), UserNotFound, "User not found"),
        (text_body(DJANGO_500_PAGE, 500, "text/html"), UserNotFound, "babbage"),
        (Response(200, {}, b"[]"), ProtocolError, "not a JSON object"),
        (json_body({"success": False, "error": "Too many follows today"}), RateLimited, "Too many"),
    ],
)
async def test_follow_refusals(
    service: Service,
    api: AsyncClient,
    which: str,
    answer: Response,
    error: type[Exception],
    match: str,
) -> None:
    service.route("POST", f"{PLUS}/chat/user/{which}/", answer)
    with pytest.raises(error, match=match):
        await getattr(api.users, which)("babbage")


def pages(*batches: list[str], more_after_last: bool = False) -> Any:
    """A handler of the paged public lists: page n (``pageParam``) is ``batches[n-1]``."""

    def answer(request: Request) -> Response:
        page = request.json["pageParam"]
        batch = batches[page - 1] if page <= len(batches) else []
        more = page < len(batches) or more_after_last
        users = [
            {"username": u, "account__avatar_file_name": "", "account__bio": ""} for u in batch
        ]
        return json_body({"users": users, "has_next_page": more})

    return answer


@pytest.mark.parametrize("which", ["followers", "following"])
async def test_public_lists_read_every_page(
    service: Service, api: AsyncClient, transport: MockTransport, which: str
) -> None:
    url = f"{PLUS}/chat/user/public/{which}/"
    service.route("POST", url, pages(["a", "b"], ["c", "d"], ["e"]))
    assert await getattr(api.users, which)("babbage") == ["a", "b", "c", "d", "e"]
    sent = wire(transport.sent)
    assert [(s.method, s.url) for s in sent] == [("POST", url)] * 3
    assert [s.json for s in sent] == [{"username": "babbage", "pageParam": n} for n in (1, 2, 3)]


async def test_public_lists_stop_at_an_empty_page_whatever_the_server_says(
    service: Service, api: AsyncClient, transport: MockTransport
) -> None:
    url = f"{PLUS}/chat/user/public/followers/"
    service.route("POST", url, pages(["a"], more_after_last=True))
    assert await api.users.followers("babbage") == ["a"]
    assert len(transport.sent) == 2


async def test_public_list_of_an_unknown_user(service: Service, api: AsyncClient) -> None:
    url = f"{PLUS}/chat/user/public/following/"
    service.route("POST", url, text_body(DJANGO_500_PAGE, 500, "text/html"))
    with pytest.raises(UserNotFound):
        await api.users.following("nobody")


@pytest.mark.parametrize("username", ["", "  ", " padded", "padded ", None, 7, "x" * 65])
@pytest.mark.parametrize("call", ["get", "follow", "unfollow", "followers", "following"])
async def test_usernames_are_validated_before_sending(
    api: AsyncClient, transport: MockTransport, username: Any, call: str
) -> None:
    with pytest.raises(ValidationError):
        await getattr(api.users, call)(username)
    assert transport.sent == []
