"""Shared set-up of the bridge tests: the emulator, an AsyncClient, the bridge on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from caiclient import AsyncClient, Endpoints, Turn
from caiclient.bridge import create_app, running
from caiclient.emulator import Emulator


@dataclass
class Bridge:
    url: str
    app: web.Application
    client: AsyncClient
    emu: Emulator
    echo: str

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    async def post(
        self, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.v1 + "/chat/completions", json=body, headers=headers or {}) as response,
        ):
            return response.status, dict(response.headers), await response.read()

    async def history(self, chat_id: str | None = None) -> list[Turn]:
        if chat_id is None:
            chats = await self.client.chats.recent(self.echo)
            chat_id = chats[0].chat_id
        return await self.client.chats.history(chat_id, all_candidates=True)


@asynccontextmanager
async def bridge_on(emu: Emulator, state: Any, **options: Any) -> AsyncIterator[Bridge]:
    async with AsyncClient(emu.token, endpoints=Endpoints.local(emu.url)) as client:
        app = create_app(client, state=state, **options)
        async with running(app) as url:
            yield Bridge(url, app, client, emu, emu.character("Echo").id)


def sqlite_url(tmp: Path) -> str:
    return "sqlite:///" + str(tmp / "bridge.sqlite3")


def texts(turns: list[Turn]) -> list[tuple[str, list[str]]]:
    """Each turn as (who, its candidates' texts, primary first)."""
    out = []
    for turn in turns:
        primary = turn.primary
        ordered = [primary] if primary else []
        ordered += [c for c in turn.candidates if c is not primary]
        out.append(("user" if turn.is_human else "char", [c.raw_content for c in ordered]))
    return out


class Ops:
    """The c.ai operations the bridge performed (logger ``caiclient.bridge.ops``) since the
    last call: the first word of each record, e.g. ``["create", "stream"]``."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO, logger="caiclient.bridge.ops")
        self.caplog = caplog
        self.seen = 0

    def __call__(self) -> list[str]:
        records = [r for r in self.caplog.records if r.name == "caiclient.bridge.ops"]
        new, self.seen = records[self.seen :], len(records)
        return [r.getMessage().split(" ", 1)[0] for r in new]
