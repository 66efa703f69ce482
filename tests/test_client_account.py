"""AsyncClient's account, personas and users namespaces against the emulator.

The checks that arguments are refused before any I/O run on a MockTransport (``wire``),
whose ``sent`` list shows that nothing went out; the literal-body tests of these
namespaces are in test_client_account_mock.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from caiclient import (
    AsyncClient,
    Endpoints,
    PersonaNotFound,
    ServerError,
    UserNotFound,
    ValidationError,
)
from caiclient.emulator import Emulator, SeedCharacter
from caiclient.emulator.store import User as StoredUser
from caiclient.models import Persona, PublicUser, Settings, User
from caiclient.transports import CurlTransport, MockTransport
from mock_service import TOKEN, forwarding


@pytest.fixture
def wire() -> MockTransport:
    """Records every request; a request reaching it fails the test with TransportError
    (no handler), so the validation tests below prove nothing was sent."""
    return MockTransport()


@pytest.fixture
async def counted(wire: MockTransport) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(TOKEN, endpoints=Endpoints.live(), transport=wire) as c:
        yield c


@pytest.fixture
def other(emu: Emulator) -> StoredUser:
    return emu.store.add_user("someone", "Some One")


def client_for(emu: Emulator, user: StoredUser) -> AsyncClient:
    return AsyncClient(user.token, endpoints=Endpoints.local(emu.url))


# ---- account ------------------------------------------------------------------------------


async def test_me(emu: Emulator, client: AsyncClient) -> None:
    me = await client.account.me()
    assert isinstance(me, User) and me.id == emu.user_id and me.username == emu.username


async def test_update_returns_the_new_profile_and_keeps_the_rest(
    emu: Emulator, client: AsyncClient
) -> None:
    me = await client.account.update(bio="Hello!", avatar_rel_path="uploaded/me.webp")
    assert (me.bio, me.avatar_file_name, me.name) == ("Hello!", "uploaded/me.webp", "Emulator User")
    me = await client.account.update(username="new_name", name="New Name")
    assert (me.username, me.name, me.bio) == ("new_name", "New Name", "Hello!")
    assert me.avatar_file_name == "uploaded/me.webp"  # Kept: the client re-sends it.
    assert emu.store.seed_user.username == "new_name"
    me = await client.account.update(avatar_rel_path="")
    assert me.avatar_file_name is None


async def test_update_taken_username_is_a_server_error(
    client: AsyncClient, other: StoredUser
) -> None:
    with pytest.raises(ServerError, match="already taken"):
        await client.account.update(username="someone")


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
        {"avatar_rel_path": 3},
        {"bio": "ok", "timeout": 0},
    ],
)
async def test_update_is_validated_before_sending(
    counted: AsyncClient, wire: MockTransport, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        await counted.account.update(**kwargs)
    assert wire.sent == []


async def test_settings_and_update_settings(client: AsyncClient) -> None:
    assert await client.account.settings() == Settings(voice_overrides_migrated=True)
    new = await client.account.update_settings(
        proactive_dm_opted_out=True, banned_words=["moist"], voice_overrides={"c1": "v1"}
    )
    assert new.proactive_dm_opted_out and new.banned_words == ["moist"]
    assert new.voice_overrides == {"c1": "v1"}
    assert await client.account.settings() == new
    # A whole Settings object; keywords win over it.
    again = await client.account.update_settings(new, banned_words=[])
    assert again.banned_words == [] and again.voice_overrides == {"c1": "v1"}


async def test_update_settings_unknown_persona_is_persona_not_found(
    emu: Emulator, client: AsyncClient, other: StoredUser
) -> None:
    async with client_for(emu, other) as theirs:
        foreign = await theirs.personas.create("Theirs")
    for persona_id in (foreign.id, "A" * 43):
        with pytest.raises(PersonaNotFound):
            await client.account.update_settings(default_persona_id=persona_id)
    assert (await client.account.settings()).default_persona_id is None


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        ((), {"no_such_field": 1}),
        ((), {"proactive_dm_opted_out": "yes"}),
        ((), {"voice_overrides": {"c": 5}}),
        ((), {"persona_overrides": {"bad/id": "p"}}),
        ((), {"default_persona_id": ""}),
        (({"proactive_dm_opted_out": True},), {}),
        ((Settings(banned_words="x"),), {}),  # type: ignore[arg-type]
    ],
)
async def test_update_settings_is_validated_before_sending(
    counted: AsyncClient, wire: MockTransport, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        await counted.account.update_settings(*args, **kwargs)
    assert wire.sent == []


async def test_update_settings_posts_the_whole_object(emu: Emulator) -> None:
    # Read-modify-write: every key read is sent back (see test_protocol_account for keys
    # this library does not model). The requests go to the emulator through a real
    # transport; MockTransport records them on the way.
    real = CurlTransport(impersonate=None)
    wire = MockTransport(forwarding(real, emu.token))
    try:
        async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url), transport=wire) as c:
            await c.account.update_settings(proactive_dm_opted_out=True)
    finally:
        await real.aclose()
    posted = wire.sent[-1].request
    assert posted.url.endswith("/plus/chat/user/update_settings/")
    assert set(posted.json) == {
        "voiceOverrides",
        "personaOverrides",
        "voiceOverridesMigrated",
        "proactiveDmOptedOut",
        "outputStylePreferences",
    }
    assert posted.json["proactiveDmOptedOut"] is True


async def test_followers_and_following(
    emu: Emulator, client: AsyncClient, other: StoredUser
) -> None:
    assert await client.account.following() == []
    await client.users.follow("someone")
    assert await client.account.following() == ["someone"]
    async with client_for(emu, other) as theirs:
        assert await theirs.account.followers() == [emu.username]
    assert await client.account.followers() == []


async def test_account_calls_reject_a_bad_timeout(
    counted: AsyncClient, wire: MockTransport
) -> None:
    for call in (counted.account.settings, counted.account.followers, counted.account.following):
        with pytest.raises(ValidationError):
            await call(timeout=-1)
    assert wire.sent == []


# ---- personas -----------------------------------------------------------------------------


async def test_persona_lifecycle(client: AsyncClient) -> None:
    assert await client.personas.list() == []
    made = await client.personas.create("Tester", "I like tea.")
    assert isinstance(made, Persona) and len(made.id) == 43
    assert (made.name, made.definition, made.visibility) == ("Tester", "I like tea.", "PRIVATE")
    assert made.greeting and made.description  # The web client's defaults.
    assert await client.personas.get(made.id) == made
    assert await client.personas.list() == [made]
    changed = await client.personas.update(made, name="Renamed", greeting="Hi!")
    assert (changed.name, changed.title, changed.greeting) == ("Renamed", "Renamed", "Hi!")
    assert changed.definition == "I like tea."
    await client.personas.delete(made.id)
    assert await client.personas.list() == []


async def test_persona_not_found(emu: Emulator, client: AsyncClient, other: StoredUser) -> None:
    async with client_for(emu, other) as theirs:
        foreign = await theirs.personas.create("Theirs", "secret")
    for persona_id in (foreign.id, "B" * 43):
        with pytest.raises(PersonaNotFound):
            await client.personas.get(persona_id)
        with pytest.raises(PersonaNotFound):
            await client.personas.update(persona_id, definition="hacked")
        with pytest.raises(PersonaNotFound):
            await client.personas.delete(persona_id)
        with pytest.raises(PersonaNotFound):
            await client.personas.set_default(persona_id)
        with pytest.raises(PersonaNotFound):
            await client.personas.set_for_character(emu.character("Echo").id, persona_id)
    async with client_for(emu, other) as theirs:
        assert (await theirs.personas.get(foreign.id)).definition == "secret"


async def test_persona_server_refusal_is_a_server_error(emu: Emulator, client: AsyncClient) -> None:
    # The emulator caps greetings at 4096 characters; the client leaves that to the server.
    with pytest.raises(ServerError, match="Greeting"):
        await client.personas.create("Tester", greeting="g" * 4097)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("ab",), {}),
        (("n" * 21,), {}),
        (("   ",), {}),
        ((5,), {}),
        (("Tester", "d" * 751), {}),
        (("Tester",), {"greeting": 1}),
        (("Tester",), {"timeout": 0}),
    ],
)
async def test_persona_create_is_validated_before_sending(
    counted: AsyncClient, wire: MockTransport, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        await counted.personas.create(*args, **kwargs)
    assert wire.sent == []


async def test_persona_calls_are_validated_before_sending(
    counted: AsyncClient, wire: MockTransport
) -> None:
    p = "A" * 43
    with pytest.raises(ValidationError):
        await counted.personas.get("bad/id")
    with pytest.raises(ValidationError):
        await counted.personas.update(p)
    with pytest.raises(ValidationError):
        await counted.personas.update(p, name="ab")
    with pytest.raises(ValidationError):
        await counted.personas.update(p, definition="d" * 751)
    with pytest.raises(ValidationError):
        await counted.personas.delete(None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await counted.personas.set_default(42)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await counted.personas.set_for_character("bad id", p)
    with pytest.raises(ValidationError):
        await counted.personas.list(timeout=0)
    assert wire.sent == []


async def test_set_default_and_per_character(emu: Emulator, client: AsyncClient) -> None:
    echo, sage = emu.character("Echo").id, emu.character("Sage").id
    first = await client.personas.create("First")
    second = await client.personas.create("Second")
    settings = await client.personas.set_default(first)
    assert settings.default_persona_id == first.id
    await client.personas.set_for_character(echo, second.id)
    settings = await client.personas.set_for_character(sage, first)
    assert settings.persona_overrides == {echo: second.id, sage: first.id}
    settings = await client.personas.set_for_character(echo, None)
    assert settings.persona_overrides == {sage: first.id}
    settings = await client.personas.set_default(None)
    assert settings.default_persona_id is None
    assert await client.account.settings() == settings
    # Deleting a persona drops the settings that used it.
    await client.personas.set_default(first)
    await client.personas.delete(first)
    after = await client.account.settings()
    assert after.default_persona_id is None and after.persona_overrides == {}


# ---- users ----------------------------------------------------------------------------------


async def test_get_public_user(emu: Emulator, client: AsyncClient, other: StoredUser) -> None:
    character = SeedCharacter(
        id="C" * 43,
        name="Made",
        title="made by someone",
        greeting="hi",
        description="d",
        avatar_file_name="made.webp",
        style="generic",
        creator_id=other.id,
        creator_username=other.username,
        num_interactions=12,
    )
    emu.store.characters[character.id] = character
    await client.users.follow("someone")
    profile = await client.users.get("someone")
    assert isinstance(profile, PublicUser)
    assert (profile.username, profile.name, profile.num_followers) == ("someone", "Some One", 1)
    assert [c.id for c in profile.characters] == [character.id]
    short = profile.characters[0]
    assert (short.name, short.num_interactions, short.creator_username) == ("Made", 12, "someone")
    assert short.creator_id == other.id


async def test_unknown_user_is_user_not_found(client: AsyncClient) -> None:
    for call in (
        client.users.get,
        client.users.follow,
        client.users.unfollow,
        client.users.followers,
        client.users.following,
    ):
        with pytest.raises(UserNotFound):
            await call("nobody")


async def test_follow_unfollow(emu: Emulator, client: AsyncClient, other: StoredUser) -> None:
    await client.users.follow("someone")
    assert other.id in emu.store.seed_user.following
    await client.users.unfollow("someone")
    assert emu.store.seed_user.following == []
    with pytest.raises(ServerError, match="yourself"):
        await client.users.follow(emu.username)


async def test_public_lists_read_every_page(emu: Emulator, client: AsyncClient) -> None:
    emu.store.add_user("someone")
    fans = [emu.store.add_user(f"fan{i:02d}") for i in range(23)]
    for fan in fans:
        async with client_for(emu, fan) as theirs:
            await theirs.users.follow("someone")
    assert await client.users.followers("someone") == [f.username for f in fans]
    assert await client.users.following("fan07") == ["someone"]
    assert await client.users.following("someone") == []


@pytest.mark.parametrize("username", ["", "  ", " padded", None, 7, "x" * 65])
async def test_usernames_are_validated_before_sending(
    counted: AsyncClient, wire: MockTransport, username: Any
) -> None:
    for call in (
        counted.users.get,
        counted.users.follow,
        counted.users.unfollow,
        counted.users.followers,
        counted.users.following,
    ):
        with pytest.raises(ValidationError):
            await call(username)
    assert wire.sent == []
