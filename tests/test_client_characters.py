"""``client.characters`` against the emulator: every call's happy path and main error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from caiclient import AsyncClient, Endpoints
from caiclient.emulator import Emulator
from caiclient.errors import (
    AuthError,
    CharacterNotFound,
    RateLimited,
    ServerError,
    ValidationError,
)
from caiclient.models._character import Character, CharacterShort, avatar_url_for
from caiclient.protocol.http import Request, Response
from caiclient.protocol.retry import Backoff, RetryPolicy
from caiclient.transports import CurlTransport, MockTransport
from mock_service import forwarding

NO_RETRY = RetryPolicy(backoff=Backoff(attempts=0))


class Injected:
    """A MockTransport handler: a URL containing a key of ``fail`` is answered with that
    status; every other request goes on to the emulator through a real transport."""

    def __init__(self, real: CurlTransport, token: str) -> None:
        self.forward = forwarding(real, token)
        self.fail: dict[str, int] = {}

    async def __call__(self, request: Request) -> Response:
        for fragment, status in self.fail.items():
            if fragment in request.url:
                body = b'{"detail": "injected failure"}'
                return Response(status, {"content-type": "application/json"}, body)
        response: Response = await self.forward(request)
        return response


@pytest.fixture
async def injected(emu: Emulator) -> AsyncIterator[Injected]:
    real = CurlTransport(impersonate=None)
    yield Injected(real, emu.token)
    await real.aclose()


@pytest.fixture
def recording(injected: Injected) -> MockTransport:
    """Records every request (``sent``) of ``rclient``."""
    return MockTransport(injected)


def urls(transport: MockTransport) -> list[str]:
    return [sent.request.url for sent in transport.sent]


@pytest.fixture
async def rclient(emu: Emulator, recording: MockTransport) -> AsyncIterator[AsyncClient]:
    """A client whose requests are recorded (and optionally failed, ``injected.fail``)."""
    async with AsyncClient(
        emu.token, endpoints=Endpoints.local(emu.url), transport=recording, retry=NO_RETRY
    ) as c:
        yield c


@pytest.fixture
async def stranger(emu: Emulator) -> AsyncIterator[AsyncClient]:
    token = emu.store.add_user("someone").token
    async with AsyncClient(token, endpoints=Endpoints.local(emu.url)) as c:
        yield c


@pytest.fixture
async def bad_token(emu: Emulator) -> AsyncIterator[AsyncClient]:
    async with AsyncClient("f" * 40, endpoints=Endpoints.local(emu.url), retry=NO_RETRY) as c:
        yield c


def names(characters: list[CharacterShort]) -> list[str]:
    return [c.name for c in characters]


# ---- info --------------------------------------------------------------------------------------


async def test_info(client: AsyncClient, emu: Emulator) -> None:
    echo = emu.character("Echo")
    character = await client.characters.info(echo.id)
    assert isinstance(character, Character)
    assert character.id == character.external_id == echo.id
    assert character.name == "Echo"
    assert character.greeting == echo.greeting
    assert character.participant_username == echo.participant_username
    assert character.creator_username == echo.creator_username
    assert character.num_interactions == echo.num_interactions
    assert character.upvotes == echo.upvotes
    assert character.definition is None  # Not ours, not copyable.
    assert character.has_definition is True
    assert character.updated is not None
    assert character.avatar_url == "https://characterai.io/i/400/static/avatars/emulator/echo.webp"
    local = client.characters.avatar_url(character, size=80)
    assert local == f"{emu.url}/cdn/i/80/static/avatars/emulator/echo.webp"


async def test_info_missing_and_private(
    client: AsyncClient, stranger: AsyncClient, recording: MockTransport, rclient: AsyncClient
) -> None:
    with pytest.raises(CharacterNotFound):
        await client.characters.info("x" * 43)
    private = await client.characters.create("Hidden", "Shh, hello.")
    assert (await client.characters.info(private)).name == "Hidden"
    with pytest.raises(CharacterNotFound):
        await stranger.characters.info(private.id)
    # A NOT_OK answer is an answer: the legacy route is not asked.
    with pytest.raises(CharacterNotFound):
        await rclient.characters.info("y" * 43)
    assert len(recording.sent) == 1
    with pytest.raises(ValidationError):
        await client.characters.info("bad/id")


@pytest.mark.parametrize("status", [404, 500])
async def test_info_falls_back_to_plus(
    injected: Injected, emu: Emulator, recording: MockTransport, rclient: AsyncClient, status: int
) -> None:
    injected.fail["/character/v1/get_character_info"] = status
    sage = emu.character("Sage")
    character = await rclient.characters.info(sage.id)
    assert character.name == "Sage"
    assert character.definition is None
    assert urls(recording)[0].endswith("/neo/character/v1/get_character_info")
    assert urls(recording)[1].endswith("/plus/chat/character/info/")
    assert len(urls(recording)) == 2


async def test_info_does_not_fall_back_on_auth_errors(
    injected: Injected, emu: Emulator, recording: MockTransport, rclient: AsyncClient
) -> None:
    injected.fail["/character/v1/get_character_info"] = 401
    with pytest.raises(AuthError):
        await rclient.characters.info(emu.character("Sage").id)
    assert len(recording.sent) == 1


# ---- search ------------------------------------------------------------------------------------


async def test_search(client: AsyncClient, emu: Emulator) -> None:
    found = await client.characters.search("captain")
    assert names(found) == ["Captain Byte"]
    (captain,) = found
    assert captain.id == emu.character("Captain Byte").id
    assert captain.num_interactions == emu.character("Captain Byte").num_interactions
    assert captain.upvotes == emu.character("Captain Byte").upvotes
    assert captain.search_score is not None
    assert await client.characters.search("no such thing at all") == []


async def test_search_falls_back_through_the_generations(
    injected: Injected, emu: Emulator, recording: MockTransport, rclient: AsyncClient
) -> None:
    injected.fail["/neo/search/v1/character"] = 404
    assert names(await rclient.characters.search("nova")) == ["Nova"]
    assert [u.split("/")[-1] for u in urls(recording)] == ["character", "search.search"]
    # The 404 route is remembered; tRPC failing (500) falls back to the legacy search.
    recording.sent.clear()
    injected.fail["/web/api/trpc/"] = 500
    found = await rclient.characters.search("nova")
    assert names(found) == ["Nova"]
    assert isinstance(found[0].num_interactions, int)  # A float on this route.
    assert [u.split("/")[-2] for u in urls(recording)] == ["trpc", "search"]
    # Every route failing raises the last failure.
    injected.fail["/chat/characters/search/"] = 500
    with pytest.raises(ServerError) as caught:
        await rclient.characters.search("nova")
    assert caught.value.status == 500


@pytest.mark.parametrize(("status", "error"), [(401, AuthError), (429, RateLimited)])
async def test_search_does_not_fall_back_on_auth_or_rate_limits(
    injected: Injected,
    recording: MockTransport,
    rclient: AsyncClient,
    status: int,
    error: type[Exception],
) -> None:
    injected.fail["/neo/search/v1/character"] = status
    with pytest.raises(error):
        await rclient.characters.search("nova")
    assert len(recording.sent) == 1


@pytest.mark.parametrize("query", ["", "   ", 42, "x" * 201])
async def test_search_validates_before_io(
    recording: MockTransport, rclient: AsyncClient, query: Any
) -> None:
    with pytest.raises(ValidationError):
        await rclient.characters.search(query)
    assert recording.sent == []


# ---- discovery ---------------------------------------------------------------------------------


async def test_discovery_lists(client: AsyncClient, emu: Emulator) -> None:
    recommended = await client.characters.recommended()
    assert names(recommended) == ["Captain Byte", "Echo", "Sage", "Nova"]
    assert all(isinstance(c, CharacterShort) and c.creator_id for c in recommended)
    featured = await client.characters.featured()
    assert set(names(featured)) == {"Echo", "Sage", "Captain Byte", "Nova"}
    similar = await client.characters.similar(emu.character("Sage").id)
    assert names(similar)[0] == "Echo"
    assert "Sage" not in names(similar)
    categories = await client.characters.categories()
    assert list(categories)[:2] == ["Helpers", "Games"]
    assert names(categories["Helpers"]) == ["Echo", "Sage"]
    assert categories["Helpers"][0].creator_id == emu.character("Echo").creator_id


async def test_similar_unknown_character(client: AsyncClient) -> None:
    with pytest.raises(CharacterNotFound):
        await client.characters.similar("x" * 43)


@pytest.mark.parametrize(
    "call", ["recommended", "featured", "categories", "mine", "liked", "recent", "similar"]
)
async def test_lists_need_a_valid_token(bad_token: AsyncClient, emu: Emulator, call: str) -> None:
    api = bad_token.characters
    with pytest.raises(AuthError):
        if call == "similar":
            await api.similar(emu.character("Echo").id)
        else:
            await getattr(api, call)()


async def test_mine_and_liked(client: AsyncClient, stranger: AsyncClient, emu: Emulator) -> None:
    assert await client.characters.mine() == []
    created = await client.characters.create("Robo", "Beep boop.", visibility="unlisted")
    mine = await client.characters.mine()
    assert names(mine) == ["Robo"]
    assert mine[0].visibility == "UNLISTED"
    assert mine[0].creator_id == emu.user_id
    assert await stranger.characters.mine() == []
    await client.characters.vote(created, True)
    await client.characters.vote(emu.character("Sage").id, True)
    assert names(await client.characters.liked()) == ["Sage", "Robo"]
    assert await stranger.characters.liked() == []


async def test_recent_lists_every_character_you_chatted_with(
    client: AsyncClient, stranger: AsyncClient, emu: Emulator
) -> None:
    assert await client.characters.recent() == []
    sage, nova, echo = (emu.character(n).id for n in ("Sage", "Nova", "Echo"))
    archived, _ = await client.chats.create(sage)
    await client.chats.archive(archived)  # Sage's only chat is archived
    chat, _ = await client.chats.create(nova)
    await client.v1.create(echo)  # Echo only through a legacy V1 history
    await client.chats.send(chat, "the latest activity")
    recent = await client.characters.recent()
    assert names(recent) == ["Nova", "Echo", "Sage"]  # latest activity first
    assert all(isinstance(c, CharacterShort) and c.id for c in recent)
    assert sage not in {c.character_id for c in await client.chats.recent()}  # what it adds
    assert await stranger.characters.recent() == []


# ---- create / update / delete ------------------------------------------------------------------


async def test_create_then_chat(client: AsyncClient, emu: Emulator) -> None:
    character = await client.characters.create(
        "Robo",
        "Beep. Hello, human.",
        title="A brass robot",
        description="Beeps politely.",
        definition="{{char}} beeps.",
        visibility="public",
        categories=["Helpers"],
    )
    assert len(character.id) == 43
    assert character.definition == "{{char}} beeps."
    assert character.visibility == "PUBLIC"
    assert character.creator_username == emu.username
    assert character.identifier is not None and character.identifier.startswith("id:")
    assert emu.store.characters[character.id].categories == ("Helpers",)
    chat, greeting = await client.chats.create(character.id)
    assert greeting is not None and greeting.text == "Beep. Hello, human."
    reply = await client.chats.send(chat, "hello there")
    assert reply.text.startswith("Robo here.")
    assert names(await client.characters.search("brass")) == ["Robo"]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("Ro", "Hello!"), {}),
        (("R" * 21, "Hello!"), {}),
        (("Robo", "Hi"), {}),
        (("Robo", "x" * 4097), {}),
        (("Robo", "Hello!"), {"title": "ab"}),
        (("Robo", "Hello!"), {"title": "t" * 51}),
        (("Robo", "Hello!"), {"description": "d" * 501}),
        (("Robo", "Hello!"), {"definition": "d" * 32001}),
        (("Robo", "Hello!"), {"visibility": "friends"}),
        (("Robo", "Hello!"), {"copyable": "yes"}),
        (("Robo", "Hello!"), {"categories": "Helpers"}),
        ((None, "Hello!"), {}),
        (("Robo", "Hello!"), {"timeout": 0}),
    ],
)
async def test_create_validates_before_io(
    recording: MockTransport,
    rclient: AsyncClient,
    emu: Emulator,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    before = len(emu.store.characters)
    with pytest.raises(ValidationError):
        await rclient.characters.create(*args, **kwargs)
    assert recording.sent == []
    assert len(emu.store.characters) == before


async def test_create_refused_by_the_server(
    injected: Injected, recording: MockTransport, rclient: AsyncClient
) -> None:
    injected.fail["/chat/character/create/"] = 401
    with pytest.raises(AuthError):
        await rclient.characters.create("Robo", "Hello!")


async def test_update(
    client: AsyncClient, recording: MockTransport, rclient: AsyncClient, emu: Emulator
) -> None:
    created = await rclient.characters.create("Robo", "Hello!", definition="secret")
    recording.sent.clear()
    # From a full Character: one request, nothing fetched first.
    renamed = await rclient.characters.update(created, name="Robo Two", visibility="public")
    assert len(recording.sent) == 1
    assert renamed.name == "Robo Two"
    assert renamed.visibility == "PUBLIC"
    assert renamed.definition == "secret"
    assert renamed.greeting == "Hello!"
    # From an id: fetched (with its definition, we own it), then saved.
    recording.sent.clear()
    retitled = await rclient.characters.update(created.id, title="Now with a title")
    assert len(recording.sent) == 2
    assert retitled.title == "Now with a title"
    assert retitled.name == "Robo Two"
    assert emu.store.characters[created.id].definition == "secret"
    with pytest.raises(CharacterNotFound):
        await client.characters.update("x" * 43, name="Nobody")


async def test_update_others_characters(
    client: AsyncClient, stranger: AsyncClient, emu: Emulator
) -> None:
    with pytest.raises(ServerError, match="permission"):
        await client.characters.update(emu.character("Sage").id, name="Hacked")
    private = await client.characters.create("Robo", "Hello!")
    with pytest.raises(CharacterNotFound):
        await stranger.characters.update(private.id, name="Hacked")
    assert emu.store.characters[private.id].name == "Robo"


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"name": "Ro"}, {"greeting": "x" * 4097}, {"visibility": "everyone"}, {"copyable": 1}],
)
async def test_update_validates_before_io(
    recording: MockTransport, rclient: AsyncClient, emu: Emulator, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        await rclient.characters.update(emu.character("Echo").id, **kwargs)
    assert recording.sent == []


async def test_delete(client: AsyncClient, emu: Emulator) -> None:
    created = await client.characters.create("Robo", "Hello!")
    await client.characters.delete(created.id)
    with pytest.raises(CharacterNotFound):
        await client.characters.info(created.id)
    assert await client.characters.mine() == []
    with pytest.raises(CharacterNotFound):
        await client.characters.delete(created.id)
    assert emu.store.characters[created.id].archived


# ---- votes -------------------------------------------------------------------------------------


async def test_vote(client: AsyncClient, emu: Emulator) -> None:
    nova = emu.character("Nova")
    assert await client.characters.my_vote(nova.id) is None
    await client.characters.vote(nova.id, True)
    assert await client.characters.my_vote(nova.id) is True
    assert (await client.characters.info(nova.id)).upvotes == nova.upvotes + 1
    await client.characters.vote(nova.id, False)
    assert await client.characters.my_vote(nova.id) is False
    await client.characters.vote(nova.id, None)
    assert await client.characters.my_vote(nova.id) is None
    assert (await client.characters.info(nova.id)).upvotes == nova.upvotes


async def test_vote_errors(recording: MockTransport, rclient: AsyncClient, emu: Emulator) -> None:
    with pytest.raises(CharacterNotFound):
        await rclient.characters.vote("x" * 43, True)
    with pytest.raises(CharacterNotFound):
        await rclient.characters.my_vote("x" * 43)
    recording.sent.clear()
    with pytest.raises(ValidationError):
        await rclient.characters.vote(emu.character("Nova").id, 1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await rclient.characters.my_vote("")
    assert recording.sent == []


# ---- helpers without I/O -----------------------------------------------------------------------


def test_avatar_urls() -> None:
    short = CharacterShort(id="a" * 43, avatar_file_name="uploaded/x.webp")
    assert short.avatar_url == "https://characterai.io/i/400/static/avatars/uploaded/x.webp"
    assert CharacterShort(id="b" * 43).avatar_url is None
    assert avatar_url_for("f.png", cdn="http://h/cdn/", size=80) == (
        "http://h/cdn/i/80/static/avatars/f.png"
    )


async def test_avatar_url_validates(client: AsyncClient) -> None:
    with pytest.raises(ValidationError):
        client.characters.avatar_url("abc")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        client.characters.avatar_url(CharacterShort(id="x"), size=0)
