"""pytest fixtures for testing your code against the emulator (loaded automatically).

- ``cai_emulator``: a running :class:`~caiclient.emulator.Emulator` (fresh per test, served
  from a background thread, so sync and async tests both work; replies stream without delay).
  Its ``url`` and ``token`` point any client at it; ``faults`` makes it misbehave.
- ``cai_client``: an :class:`~caiclient.AsyncClient` bound to ``cai_emulator`` (needs an
  async test runner such as pytest-asyncio).

Mark a test ``@pytest.mark.cai_emulator(chunk_delay=0.05, seed={...})`` to pass options.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from .emulator.app import Emulator
from .emulator.background import BackgroundEmulator


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cai_emulator(**options): options for the cai_emulator fixture's Emulator"
    )


@pytest.fixture
def cai_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    marker = request.node.get_closest_marker("cai_emulator")
    options = {"chunk_delay": 0.0, **(marker.kwargs if marker else {})}
    with BackgroundEmulator(**options) as emulator:
        yield emulator


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - depends on the user's environment

    @pytest.fixture
    def cai_client(cai_emulator: Emulator) -> None:
        pytest.skip("the cai_client fixture needs pytest-asyncio")

else:
    from .client import AsyncClient
    from .endpoints import Endpoints

    @pytest_asyncio.fixture
    async def cai_client(cai_emulator: Emulator) -> AsyncIterator[AsyncClient]:  # type: ignore[misc]
        async with AsyncClient(
            cai_emulator.token, endpoints=Endpoints.local(cai_emulator.url)
        ) as client:
            yield client
