"""The fixtures of the tier-2 tests (``tests/test_client_*_mock.py``), loaded by conftest.py:
``service`` (a :class:`mock_service.Service` with no routes), ``transport`` (a MockTransport
over it) and ``api`` (an AsyncClient on that transport). A test file overrides one by
defining its own (e.g. a service that already answers ``/chat/user/``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from caiclient import AsyncClient
from caiclient.transports import MockTransport
from mock_service import Service, make_client


@pytest.fixture
def service() -> Service:
    return Service()


@pytest.fixture
def transport(service: Service) -> MockTransport:
    return MockTransport(service)


@pytest.fixture
async def api(transport: MockTransport) -> AsyncIterator[AsyncClient]:
    async with make_client(transport) as client:
        yield client
