from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from caiclient import AsyncClient, Endpoints
from caiclient.emulator import Emulator


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(chunk_delay=0.0) as emulator:
        yield emulator


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as c:
        yield c
