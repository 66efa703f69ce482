"""Tier-2 support: a scripted stand-in for the service behind ``MockTransport``.

Nothing here opens a socket. :class:`Service` is a REST handler for
``MockTransport(handler)``: it answers each request by its method and URL from a table the
test fills with literal bodies in the service's own shapes (docs/protocol.md), and fails
the test on a request nobody expected. :class:`Neo` is a frame handler for
``MockTransport(websocket=...)``: it records every frame the client sends, decoded, and
answers by command with the test's scripts. The builders below write the bodies and frames.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from caiclient import AsyncClient, Endpoints
from caiclient.protocol.http import Request, Response
from caiclient.protocol.retry import Backoff, RetryPolicy
from caiclient.transports import MockTransport, MockWebSocket, Sent

TOKEN = "c0ffee" + "0" * 34
LIVE = Endpoints.live()
PLUS, NEO, BETA, WEB = LIVE.plus, LIVE.neo, LIVE.beta, LIVE.web
FIREBASE = LIVE.identitytoolkit
VOICES = f"{NEO}/multimodal/api/v1/voices"

USER_ID = "123456789"
CHARACTER_ID = "YntB_ZeqRq2l_aVf2gWDCZl4oBttQzDvhj9cXafWcF8"
CHARACTER_2 = "Dvhj9cXafWcF8YntB_ZeqRq2l_aVf2gWDCZl4oBttQz"
PERSONA_ID = "Zl4oBttQzDvhj9cXafWcF8YntB_ZeqRq2l_aVf2gWDC"
CHAT_ID = "0f6b3b9e-3c41-4cf4-9a58-2d1c7a4d5e61"
VOICE_ID = "9b1d2f3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f"

RETRIES = 2
"""How many times FAST_RETRY retries a call the policy calls transient."""

FAST_RETRY = RetryPolicy(
    backoff=Backoff(initial=0.001, factor=1.0, max_delay=0.001, jitter=0.0, attempts=RETRIES),
    max_retry_after=1.0,
)
"""Real retries with waits of a millisecond, and any Retry-After over 1 s is not waited."""

NO_RETRY = RetryPolicy(backoff=Backoff(attempts=0))

ME = {
    "user": {
        "user": {
            "username": "ada_l",
            "id": 123456789,
            "first_name": None,
            "account": {
                "name": "Ada Lovelace",
                "avatar_type": "UPLOADED",
                "onboarding_complete": True,
                "avatar_file_name": "uploaded/2024/05/01/ada.webp",
                "mobile_onboarding_complete": 1,
            },
            "is_staff": False,
            "subscription": None,
            "entitlements": [],
        },
        "is_human": True,
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "date_joined": "2023-01-02T03:04:05Z",
        "needs_to_acknowledge_policy": False,
        "suspended_until": None,
        "hidden_characters": [],
        "blocked_users": [],
        "bio": "Analytical engines.",
        "interests": None,
        "date_of_birth": "1815-12-10",
    }
}
"""``GET /chat/user/`` as docs/protocol.md §4.1 shows it."""

CLOUDFLARE_PAGE = (
    b'<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
    b"<body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)
DJANGO_500_PAGE = (
    b'<!doctype html><html lang="en"><head><title>Server Error (500)</title></head>'
    b"<body><h1>Server Error (500)</h1><p></p></body></html>"
)


# --- responses -------------------------------------------------------------------------------


def json_body(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON answer (``content-type: application/json``)."""
    head = {"content-type": "application/json", **(headers or {})}
    return Response(status, head, json.dumps(obj).encode())


def text_body(text: str | bytes, status: int = 200, content_type: str = "text/plain") -> Response:
    data = text.encode() if isinstance(text, str) else text
    return Response(status, {"content-type": content_type}, data)


def cloudflare(status: int = 403, ray: str = "8f1e2d3c4b5a6978-FRA") -> Response:
    """Cloudflare's challenge page, with its ray id."""
    headers = {"content-type": "text/html; charset=UTF-8", "cf-ray": ray, "server": "cloudflare"}
    return Response(status, headers, CLOUDFLARE_PAGE)


def unauthorized() -> Response:
    return json_body({"detail": "Invalid token."}, 401)


def rate_limited(retry_after: str | None = "120") -> Response:
    headers = {} if retry_after is None else {"retry-after": retry_after}
    return json_body({"detail": "Request was throttled."}, 429, headers)


def unavailable(status: int = 503) -> Response:
    """A gateway failure with a JSON body (an HTML 503 would read as an anti-bot block)."""
    return json_body({"detail": "Service temporarily unavailable"}, status)


def neo_error_body(comment: str, error_code: int = 404, **fields: Any) -> dict[str, Any]:
    """The neo error object (docs/protocol.md §2.4.1, §8.6)."""
    return {
        "command": "neo_error",
        "comment": comment,
        "error_code": error_code,
        "sub_code": None,
        **fields,
    }


def not_ok(error: str) -> Response:
    """The Django app's in-band refusal: HTTP 200 ``{"status": "NOT_OK", "error"}`` (§2.4.2)."""
    return json_body({"status": "NOT_OK", "error": error})


# --- the REST side ---------------------------------------------------------------------------

Answer = Response | Callable[[Request], Response] | BaseException


class Service:
    """A MockTransport handler answering by ``(method, url)``.

    ``route(method, url, *answers)`` queues answers for that route: each request takes the
    next one, and the last one keeps answering. An answer is a Response, a function of the
    Request, or an exception to raise (a network failure). A request to no route fails the
    test with AssertionError naming it.
    """

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], list[Answer]] = {}
        self.hits: dict[tuple[str, str], int] = {}

    def route(self, method: str, url: str, *answers: Answer) -> Service:
        if not answers:
            raise ValueError("route() needs at least one answer")
        self._routes[(method, url)] = list(answers)
        return self

    def me(self, body: Any = ME) -> Service:
        """Answer ``GET /chat/user/`` (the account the client looks up for the socket)."""
        return self.route("GET", f"{PLUS}/chat/user/", json_body(body))

    def __call__(self, request: Request) -> Response:
        key = (request.method, request.url)
        answers = self._routes.get(key)
        if answers is None:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        self.hits[key] = self.hits.get(key, 0) + 1
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer(request) if callable(answer) else answer


@dataclass(frozen=True)
class Wire:
    """One request as it went out, with its JSON body decoded."""

    method: str
    url: str
    params: Mapping[str, str] | None
    json: Any
    headers: Mapping[str, str]
    body: bytes | None


def wire(sent: Iterable[Sent]) -> list[Wire]:
    """The requests a MockTransport recorded, with their JSON bodies decoded."""
    out = []
    for item in sent:
        body = item.body
        is_json = item.headers.get("Content-Type") == "application/json"
        decoded = json.loads(body) if body is not None and is_json else None
        request = item.request
        out.append(Wire(request.method, request.url, request.params, decoded, item.headers, body))
    return out


def urls(sent: Iterable[Sent]) -> list[str]:
    return [f"{s.request.method} {s.request.url}" for s in sent]


def make_client(transport: MockTransport, **options: Any) -> AsyncClient:
    """An AsyncClient on the live endpoints over ``transport`` (fast real retries)."""
    options.setdefault("retry", FAST_RETRY)
    return AsyncClient(TOKEN, endpoints=LIVE, transport=transport, **options)


# --- the chat socket -------------------------------------------------------------------------

Script = Callable[[dict[str, Any], MockWebSocket], None]


class Neo:
    """A frame handler for ``MockTransport(websocket=...)``.

    ``frames`` holds every frame the client sent, decoded (``{}`` keepalives included);
    ``scripts`` maps a command to a function ``(frame, ws)`` that answers it with
    ``ws.push(...)``. :meth:`wait_for` waits (with a deadline) until a command arrived.
    """

    def __init__(self, **scripts: Script) -> None:
        self.frames: list[dict[str, Any]] = []
        self.scripts: dict[str, Script] = dict(scripts)
        self._waiters: list[asyncio.Event] = []

    def __call__(self, data: bytes, ws: MockWebSocket) -> None:
        frame = json.loads(data)
        self.frames.append(frame)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.set()
        script = self.scripts.get(frame.get("command", ""))
        if script is not None:
            script(frame, ws)

    def sent(self, command: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("command") == command]

    async def wait_until(
        self, found: Callable[[list[dict[str, Any]]], Any], timeout: float = 5.0
    ) -> Any:
        """Wait (up to ``timeout`` seconds) until ``found(frames)`` is truthy; return it."""

        async def arrival() -> Any:
            while True:
                result = found(self.frames)
                if result:
                    return result
                waiter = asyncio.Event()
                self._waiters.append(waiter)
                await waiter.wait()

        return await asyncio.wait_for(arrival(), timeout)

    async def wait_for(self, command: str, timeout: float = 5.0) -> dict[str, Any]:
        """The first frame of ``command``, waiting for it up to ``timeout`` seconds."""
        frames: list[dict[str, Any]] = await self.wait_until(lambda _: self.sent(command), timeout)
        return frames[0]


def push(ws: MockWebSocket, command: str, request_id: str | None, **fields: Any) -> None:
    """Send the client a frame ``{"command", "request_id", **fields}``."""
    ws.push(json.dumps({"command": command, "request_id": request_id, **fields}))


def candidate(candidate_id: str, text: str, *, final: bool = True, **fields: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"candidate_id": candidate_id, "raw_content": text, **fields}
    if final:
        found["is_final"] = True
    return found


def bot_turn(
    chat_id: str,
    text: str,
    *,
    final: bool = True,
    turn_id: str = "bot-turn-1",
    candidate_id: str = "bot-cand-1",
    others: Iterable[dict[str, Any]] = (),
    **fields: Any,
) -> dict[str, Any]:
    """A character turn as the socket sends it (no ``is_human`` key, docs/protocol.md §7.2)."""
    return {
        "turn_key": {"chat_id": chat_id, "turn_id": turn_id},
        "create_time": "2025-01-01T12:00:00Z",
        "last_update_time": "2025-01-01T12:00:01Z",
        "state": "STATE_OK",
        "author": {"author_id": CHARACTER_ID, "name": "Sage"},
        "candidates": [candidate(candidate_id, text, final=final), *others],
        "primary_candidate_id": candidate_id,
        **fields,
    }


def echo_of(sent_turn: dict[str, Any]) -> dict[str, Any]:
    """The server's ``add_turn`` echo of the user's turn from a create_and_generate_turn."""
    turn = json.loads(json.dumps(sent_turn))
    for item in turn["candidates"]:
        item["is_final"] = True
    return turn


def replies(*chunks: str, echo: bool = True, **turn_fields: Any) -> Script:
    """A script answering create_and_generate_turn: the echo, then ``chunks`` as cumulative
    frames (``add_turn`` first, then ``update_turn``s, the last one final)."""

    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        rid = frame["request_id"]
        turn = frame["payload"]["turn"]
        chat_id = turn["turn_key"]["chat_id"]
        if echo:
            push(ws, "add_turn", rid, turn=echo_of(turn))
        for index, text in enumerate(chunks):
            final = index == len(chunks) - 1
            command = "add_turn" if index == 0 else "update_turn"
            push(ws, command, rid, turn=bot_turn(chat_id, text, final=final, **turn_fields))

    return script


def answer_with(command: str, **fields: Any) -> Script:
    """A script answering any request with one frame of ``command`` and ``fields``."""

    def script(frame: dict[str, Any], ws: MockWebSocket) -> None:
        push(ws, command, frame["request_id"], **fields)

    return script


def refuse(comment: str, error_code: int = 400, **fields: Any) -> Script:
    """A script answering with a ``neo_error`` frame."""
    return answer_with("neo_error", comment=comment, error_code=error_code, **fields)


def forwarding(real: Any, token: str | None = None, *, timeout: float = 30.0) -> Any:
    """A MockTransport handler that passes every request on to a real transport (to reach
    the emulator), so that MockTransport records what was sent.

    A handler sees the Request only, not the client's headers, so the token's
    ``Authorization`` header is added here (none when ``token`` is None, as for logins).
    A streamed request is forwarded whole: MockTransport yields its body in one chunk,
    under the request's URL (a redirect the real transport followed does not show).
    """
    headers = {"Authorization": f"Token {token}"} if token else {}

    async def forward(request: Request) -> Response:
        response: Response = await real.request(request, headers=headers, timeout=timeout)
        return response

    return forward
