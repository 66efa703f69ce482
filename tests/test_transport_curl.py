"""The curl_cffi transport's error mapping, by reflection over curl_cffi's own exception classes,
and the bytes both transports put on the wire for the same request."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import curl_cffi
import curl_cffi.curl
import curl_cffi.requests
import curl_cffi.requests.exceptions
import curl_cffi.requests.websockets
import pytest
from aiohttp import web
from curl_cffi import CurlError
from curl_cffi.const import CurlECode

from caiclient._transport.aiohttp import AiohttpTransport
from caiclient._transport.curl import CurlTransport, CurlWebSocket, _mapped
from caiclient.errors import CaiError, ClientClosed, Disconnected, Timeout, TransportError
from caiclient.protocol.http import Request

_MODULES: tuple[ModuleType, ...] = (
    curl_cffi,
    curl_cffi.curl,
    curl_cffi.requests,
    curl_cffi.requests.exceptions,
    curl_cffi.requests.websockets,
)


def _subclasses(cls: type[BaseException]) -> Iterator[type[BaseException]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


def _curl_exceptions() -> list[type[BaseException]]:
    """Every exception class curl_cffi defines: those its modules export, and every subclass
    of CurlError however it was reached (a class added by a later curl_cffi is found too)."""
    found: set[type[BaseException]] = set()
    for module in _MODULES:
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and not issubclass(value, Warning)
                and value.__module__.startswith("curl_cffi")
            ):
                found.add(value)
    found.update(c for c in _subclasses(CurlError) if c.__module__.startswith("curl_cffi"))
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _instance(cls: type[BaseException]) -> BaseException:
    return cls("boom from curl")


CURL_EXCEPTIONS = _curl_exceptions()


def test_the_reflection_finds_curl_cffis_exceptions() -> None:
    names = {c.__qualname__ for c in CURL_EXCEPTIONS}
    # A sample that must be there; if curl_cffi renamed them, the reflection must be revisited.
    assert {"CurlError", "RequestException", "Timeout", "SessionClosed", "WebSocketClosed"} <= names
    assert len(CURL_EXCEPTIONS) >= 30


@pytest.mark.parametrize("cls", CURL_EXCEPTIONS, ids=lambda c: c.__qualname__)
def test_every_curl_exception_is_a_curl_error(cls: type[BaseException]) -> None:
    # The transport's nets (`except CurlError`) catch a class only if it derives from it.
    assert issubclass(cls, CurlError)


def _expected(cls: type[BaseException]) -> type[CaiError]:
    if issubclass(cls, (curl_cffi.requests.exceptions.Timeout,)):
        return Timeout
    if issubclass(cls, curl_cffi.requests.exceptions.SessionClosed):
        return ClientClosed
    return TransportError


@pytest.mark.parametrize("cls", CURL_EXCEPTIONS, ids=lambda c: c.__qualname__)
def test_every_curl_exception_is_mapped_with_its_cause(cls: type[BaseException]) -> None:
    original = _instance(cls)
    with pytest.raises(CaiError) as caught, _mapped("GET https://example.invalid/x", timeout=5):
        raise original
    assert type(caught.value) is _expected(cls)
    assert caught.value.__cause__ is original
    assert "GET https://example.invalid/x" in str(caught.value)


def test_curls_own_timeout_code_is_a_timeout() -> None:
    # libcurl reports some timeouts only by their code (CURLE_OPERATION_TIMEDOUT).
    original = CurlError("Operation timed out", code=CurlECode.OPERATION_TIMEDOUT)
    with pytest.raises(Timeout) as caught, _mapped("GET https://example.invalid/x"):
        raise original
    assert caught.value.__cause__ is original


class _FailingWs:
    """Stands in for curl_cffi's AsyncWebSocket at the one point a real one cannot be made to
    raise each class on demand: ``send``/``recv`` raise the given exception."""

    close_code = 1006

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def recv(self) -> Any:
        raise self.exc

    async def send(self, data: bytes, flags: int) -> None:
        raise self.exc


@pytest.mark.parametrize("cls", CURL_EXCEPTIONS, ids=lambda c: c.__qualname__)
async def test_every_curl_exception_on_an_open_socket_is_disconnected(
    cls: type[BaseException],
) -> None:
    for operation in ("recv", "send"):
        original = _instance(cls)
        ws = CurlWebSocket(_FailingWs(original))  # type: ignore[arg-type]
        with pytest.raises(Disconnected) as caught:
            if operation == "recv":
                await ws.recv()
            else:
                await ws.send(b"{}")
        assert caught.value.__cause__ is original, operation


# --- the same request, the same bytes ----------------------------------------------------------


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[Seen]]]:
    seen: list[Seen] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        seen.append(Seen(request.method, request.path_qs, headers, body))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


REQUESTS = {
    "json": Request(
        "POST",
        "/chat/x/",
        params={"q": "a b/é", "odd": "~*()!'@:;,+=&?#[]%41", "n": "2"},
        json={"text": "Grüße — “quoted” 🙂", "nested": {"list": [1, 2.5, None, True]}},
    ),
    "get": Request("GET", "/chat/character/info/", params={"external_id": "abc_-123"}),
    "multipart": Request(
        "POST",
        "/upload/",
        multipart=(
            ("image", "avatar.png", "image/png", b"\x89PNG\r\n\x1a\n\x00\xff binary"),
            ("note", None, None, "ünïcode".encode()),
        ),
    ),
}


def _boundary(content_type: str) -> str:
    match = re.search(r"boundary=([^;]+)", content_type)
    assert match is not None, content_type
    return match.group(1)


@pytest.mark.parametrize("kind", sorted(REQUESTS))
async def test_both_transports_send_the_same_bytes(
    recorder: tuple[str, list[Seen]], kind: str
) -> None:
    base, seen = recorder
    template = REQUESTS[kind]
    ours = {"Authorization": "Token t0k", "X-Trace": "same"}
    for transport in (CurlTransport(), AiohttpTransport()):
        request = Request(
            template.method,
            base + template.url,
            params=template.params,
            json=template.json,
            multipart=template.multipart,
        )
        try:
            response = await transport.request(request, headers=ours, timeout=10)
        finally:
            await transport.aclose()
        assert response.status == 200
    curl, aio = seen
    assert (curl.method, curl.path_qs) == (aio.method, aio.path_qs)
    for name in ("authorization", "x-trace"):
        assert curl.headers[name] == aio.headers[name] == ours[name.title()]
    if kind == "multipart":
        # Each request gets a fresh random boundary; apart from it, the bytes are the same.
        b_curl, b_aio = (
            _boundary(curl.headers["content-type"]),
            _boundary(aio.headers["content-type"]),
        )
        assert b_curl != b_aio
        assert curl.body.replace(b_curl.encode(), b"B") == aio.body.replace(b_aio.encode(), b"B")
        assert curl.headers["content-type"].replace(b_curl, "B") == (
            aio.headers["content-type"].replace(b_aio, "B")
        )
    else:
        assert curl.body == aio.body
        assert curl.headers.get("content-type") == aio.headers.get("content-type")
    if template.params:  # And the server reads back exactly the values sent.
        assert parse_qsl(urlsplit(curl.path_qs).query) == list(template.params.items())
    body, content_headers = template.content(boundary="B")
    expected = b"" if body is None else body
    if kind == "multipart":
        assert curl.body.replace(_boundary(curl.headers["content-type"]).encode(), b"B") == expected
    else:
        assert curl.body == expected  # What the core encoded, moved unchanged.
        assert curl.headers.get("content-type") == content_headers.get("Content-Type")


async def test_the_recorder_sees_a_different_body_as_different(
    recorder: tuple[str, list[Seen]],
) -> None:
    # The comparison above can fail: a request with another body reads differently.
    base, seen = recorder
    transport = CurlTransport()
    try:
        for text in ("one", "two"):
            await transport.request(
                Request("POST", base + "/x", json={"text": text}), headers={}, timeout=10
            )
    finally:
        await transport.aclose()
    assert seen[0].body != seen[1].body
