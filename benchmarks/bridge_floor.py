"""The HTTP floor of the bridge benchmark: ``python -m benchmarks.bridge_floor URL TOKEN``.

An aiohttp.web server that answers ``POST /v1/chat/completions`` with the bytes the bridge
sends (an SSE stream: role chunk, text chunks, finish chunk, ``[DONE]``) over one
``AsyncClient``'s ``chats.stream``, and does nothing else: no reconcile, no state, no locks,
no validation beyond decoding the body, one chat per ``X-Conversation-Id`` kept in a dict,
and the whole answer in one write at its end (the bridge writes once too when, as in this
benchmark, the frames of a reply arrive together; it never writes less), so it is a lower
bound. Its CPU per completion is what the HTTP layer plus the client cost, so the bridge's
own share is the bridge's figure minus this one (docs/benchmarks.md, section 7). The garbage
collector is tuned as ``cai serve`` tunes it. Prints ``listening on URL`` once it listens.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import msgspec
from aiohttp import web

from caiclient import AsyncClient, Endpoints
from caiclient.bridge import tune_collector

_HEAD = b'data: {"id":"chatcmpl-floor","object":"chat.completion.chunk","created":0,"choices":['
_ROLE = _HEAD + b'{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
_END = (
    _HEAD + b'{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)  # fmt: skip
_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


class _Message(msgspec.Struct):
    role: str
    content: str


class _Body(msgspec.Struct):
    model: str
    messages: list[_Message]


class _SSE(web.StreamResponse):
    _send_headers_immediately = False  # As the bridge: headers go out with the first write.


def _delta(text: str) -> bytes:
    content = msgspec.json.encode(text)
    return _HEAD + b'{"index":0,"delta":{"content":' + content + b'},"finish_reason":null}]}\n\n'


async def _serve(url: str, token: str) -> None:
    chats: dict[str, Any] = {}
    async with AsyncClient(token, endpoints=Endpoints.local(url)) as client:

        async def completions(request: web.Request) -> web.StreamResponse:
            body = msgspec.json.decode(await request.read(), type=_Body)
            conversation = request.headers.get("X-Conversation-Id", "")
            chat = chats.get(conversation)
            if chat is None:
                chat, _ = await client.chats.create(body.model)
                chats[conversation] = chat
            out = [_ROLE]
            async for chunk in client.chats.stream(chat, body.messages[-1].content):
                if chunk.delta:
                    out.append(_delta(chunk.delta))
            response = _SSE(headers=_HEADERS)
            await response.prepare(request)
            await response.write_eof(b"".join([*out, _END]))  # One write: a lower bound.
            return response

        app = web.Application()
        app.router.add_post("/v1/chat/completions", completions)
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        tune_collector()
        print(f"listening on http://127.0.0.1:{port}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def main() -> int:
    asyncio.run(_serve(sys.argv[1], sys.argv[2]))  # Until SIGTERM ends the process.
    return 0


if __name__ == "__main__":
    sys.exit(main())
