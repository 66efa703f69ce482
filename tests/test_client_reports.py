"""caiclient's characters.report against the emulator, and its checks before any I/O."""

from __future__ import annotations

import pytest

from caiclient import AsyncClient, CharacterNotFound, Endpoints, ValidationError
from caiclient.emulator import Emulator


async def test_client_report(emu: Emulator, client: AsyncClient) -> None:
    report_id = await client.characters.report(emu.character("Echo").id, "SPAM", "too loud")
    assert len(report_id) == 36
    with pytest.raises(CharacterNotFound):
        await client.characters.report("A" * 43, "ABUSE")


async def test_client_report_checks_arguments_before_sending() -> None:
    # A dead port: any I/O would fail with a TransportError, not a ValidationError.
    async with AsyncClient("t" * 40, endpoints=Endpoints.local("http://127.0.0.1:9")) as offline:
        with pytest.raises(ValidationError, match="category"):
            await offline.characters.report("A" * 43, "BORING")
        with pytest.raises(ValidationError, match="comments"):
            await offline.characters.report("A" * 43, "SPAM", "x" * 1001)


async def test_other_users_private_character_cannot_be_reported(emu: Emulator) -> None:
    owner = emu.store.add_user("owner")
    async with (
        AsyncClient(owner.token, endpoints=Endpoints.local(emu.url)) as alice,
        AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as bob,
    ):
        secret = await alice.characters.create("Secretive", "Hush.")
        with pytest.raises(CharacterNotFound):
            await bob.characters.report(secret.id, "SPAM")
