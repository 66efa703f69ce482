"""Tier 2: ``client.capture_raw()`` hands out the exact bodies the service sent, per task."""

from __future__ import annotations

import asyncio
import json

from caiclient import AsyncClient
from caiclient.protocol.http import Request, Response
from caiclient.transports import MockTransport

USER = {"user": {"user": {"username": "me", "id": 7, "future_field": {"x": 1}}}}


async def test_capture_keeps_fields_the_models_drop_and_stays_per_task() -> None:
    async def handler(request: Request) -> Response:
        await asyncio.sleep(0)
        if "settings" in request.url:
            return Response(200, {}, b'{"default_persona_id": "p", "unknownSetting": true}')
        return Response(200, {}, json.dumps(USER).encode())

    async with AsyncClient("f" * 40, transport=MockTransport(handler)) as client:

        async def me() -> list[bytes]:
            with client.capture_raw() as bodies:
                await client.account.me()
            return [b.body for b in bodies]

        async def settings() -> list[bytes]:
            with client.capture_raw() as bodies:
                await client.account.settings()
            return [b.body for b in bodies]

        mine, theirs = await asyncio.gather(me(), settings())
        assert [json.loads(b) for b in mine] == [USER]  # the unknown field is there
        assert [json.loads(b)["unknownSetting"] for b in theirs] == [True]
        # Outside a capture nothing is collected.
        with client.capture_raw() as later:
            pass
        await client.account.me()
        assert later == []
