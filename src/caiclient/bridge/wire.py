"""The OpenAI chat-completions wire format: requests in, responses and SSE chunks out. No I/O.

Shapes follow the OpenAI wire contract of docs/bridge.md (what the official clients and the chat
front ends rely on):
unknown request fields are ignored; a response always carries ``id``, ``object``,
``created``, ``model`` and per choice ``index`` and ``finish_reason``; a stream sends the
role in the first chunk of each choice only, one ``created`` for the whole stream, a final
chunk with ``finish_reason``, the usage chunk (``choices: []``) when
``stream_options.include_usage`` is set, then ``data: [DONE]``. Keep-alives are comment
lines; there is never an ``event:`` line. Errors are ``{"error": {message, type, param,
code}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..errors import ValidationError
from .reconcile import Message

__all__ = [
    "DONE",
    "PING",
    "ChatRequest",
    "ChunkWriter",
    "Truncator",
    "WireError",
    "completion",
    "error_body",
    "error_event",
    "estimate_tokens",
    "model_list",
    "model_object",
    "parse_request",
    "usage",
]

DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_IGNORED_ROLES = frozenset({"tool", "function"})
_AT = re.compile(r" - at `\$\.?([^`]*)`$")


class WireError(ValidationError):
    """A request the bridge refuses, with the HTTP status and OpenAI error fields to send."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str | None = None,
        param: str | None = None,
        type: str = "invalid_request_error",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.param = param
        self.type = type
        self.headers = dict(headers or {})


# --- requests ---------------------------------------------------------------------------------


class _Part(msgspec.Struct):
    type: str = "text"
    text: str | None = None


class _Message(msgspec.Struct):
    role: str
    content: str | list[_Part] | None = None
    name: str | None = None
    tool_calls: list[Any] | None = None


class _StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class _Request(msgspec.Struct):
    model: str
    messages: list[_Message]
    stream: bool | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stream_options: _StreamOptions | None = None
    user: str | None = None
    conversation_id: str | None = None
    metadata: dict[str, Any] | None = None
    continue_final_message: bool | None = None
    continue_: bool | None = None


@dataclass(frozen=True)
class ChatRequest:
    """A validated ``POST /chat/completions`` body.

    ``max_chars`` is ``max_tokens`` in characters (the estimate of :func:`estimate_tokens`);
    ``conversation_id`` comes from the body (``conversation_id`` or
    ``metadata.conversation_id``); headers are the server's business.
    """

    model: str
    messages: tuple[Message, ...]
    stream: bool = False
    n: int = 1
    stop: tuple[str, ...] = ()
    max_chars: int | None = None
    include_usage: bool = False
    user: str | None = None
    conversation_id: str | None = None
    continue_flag: bool = False


def _decode(body: bytes) -> _Request:
    try:
        return msgspec.json.decode(body, type=_Request)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at = _AT.search(text)
        param = at.group(1) if at else None
        if "missing required field" in text:
            field = text.split("`")[1] if "`" in text else None
            param = f"{param}.{field}" if param and field else field
        raise WireError(f"invalid request body: {text}", param=param) from None
    except msgspec.DecodeError as exc:
        raise WireError(f"the request body is not valid JSON: {exc}") from None


def _text(message: _Message, index: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    # Parts: text kept, images and audio left out (c.ai chats here are text only).
    return "\n".join(part.text for part in content if part.type == "text" and part.text)


def _messages(raw: Sequence[_Message]) -> tuple[Message, ...]:
    if not raw:
        raise WireError("messages is empty", param="messages")
    out: list[Message] = []
    roles = _ROLES
    for index, message in enumerate(raw):
        role = roles.get(message.role)
        if role is None:
            if message.role in _IGNORED_ROLES:
                continue
            raise WireError(
                f"messages[{index}].role {message.role!r} is not one of system, developer, "
                "user, assistant, tool",
                param=f"messages[{index}].role",
            )
        content = message.content
        text = content if type(content) is str else _text(message, index)
        if not text or text.isspace():  # (As ``not text.strip()``, without a copy.)
            if role == "system" or (role == "assistant" and message.tool_calls):
                continue
            raise WireError(
                f"messages[{index}].content is empty", param=f"messages[{index}].content"
            )
        out.append(Message(role, text, message.name))
    return tuple(out)


def _limits(req: _Request, max_n: int) -> tuple[int, tuple[str, ...], int | None]:
    n = 1 if req.n is None else req.n
    if not 1 <= n <= max_n:
        raise WireError(f"n must be between 1 and {max_n}, got {n}", param="n")
    stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
    if len(stop) > 4 or any(not s for s in stop):
        raise WireError("stop takes up to 4 non-empty strings", param="stop")
    tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if tokens is not None and tokens < 1:
        raise WireError("max_tokens must be at least 1", param="max_tokens")
    return n, stop, None if tokens is None else tokens * 4


def parse_request(body: bytes, *, max_n: int = 4) -> ChatRequest:
    """Validate a chat-completions body. Raises WireError (HTTP 400) saying what to fix."""
    req = _decode(body)
    if not req.model.strip():
        raise WireError("model is empty", param="model")
    messages = _messages(req.messages)
    n, stop, max_chars = _limits(req, max_n)
    conversation = req.conversation_id
    if conversation is None and req.metadata is not None:
        value = req.metadata.get("conversation_id")
        conversation = value if isinstance(value, str) and value else None
    options = req.stream_options
    return ChatRequest(
        model=req.model.strip(),
        messages=messages,
        stream=bool(req.stream),
        n=n,
        stop=stop,
        max_chars=max_chars,
        include_usage=bool(req.stream and options is not None and options.include_usage),
        user=req.user,
        conversation_id=conversation or None,
        continue_flag=bool(req.continue_final_message or req.continue_),
    )


# --- stop strings and max_tokens ---------------------------------------------------------------


class Truncator:
    """Apply ``stop`` strings and a character limit to a streamed reply.

    :meth:`feed` returns what may be shown now, holding back a tail that could be the
    start of a stop string; :meth:`flush` releases it at the end. ``finish`` becomes
    ``"stop"`` or ``"length"`` once the reply was cut; ``shown`` is everything returned.
    """

    def __init__(self, stop: Sequence[str] = (), max_chars: int | None = None) -> None:
        self._stop = tuple(stop)
        self._max = max_chars
        self._held = ""
        self.shown = ""
        self.finish: str | None = None

    def _emit(self, text: str) -> str:
        if self._max is not None and len(self.shown) + len(text) >= self._max:
            text = text[: self._max - len(self.shown)]
            self.finish = "length"
        self.shown += text
        return text

    def feed(self, delta: str) -> str:
        if self.finish is not None:
            return ""
        if not self._stop:
            return self._emit(delta)
        buffer = self._held + delta
        cuts = [i for i in (buffer.find(s) for s in self._stop) if i >= 0]
        if cuts:
            self._held = ""
            out = self._emit(buffer[: min(cuts)])
            self.finish = self.finish or "stop"
            return out
        keep = 0
        for s in self._stop:
            for size in range(min(len(s) - 1, len(buffer)), keep, -1):
                if buffer.endswith(s[:size]):
                    keep = size
                    break
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return self._emit(buffer[: len(buffer) - keep])

    def flush(self) -> str:
        held, self._held = self._held, ""
        return self._emit(held) if held and self.finish is None else ""


# --- responses --------------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """c.ai reports no token counts: about four characters a token (X-Usage-Estimated)."""
    return (len(text) + 3) // 4


def usage(prompt: str | int, completion: int) -> dict[str, int]:
    prompt_tokens = prompt if isinstance(prompt, int) else estimate_tokens(prompt)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }


def completion(
    completion_id: str,
    created: int,
    model: str,
    choices: Sequence[tuple[str, str]],
    usage_counts: Mapping[str, int],
) -> bytes:
    """A whole ``chat.completion`` object; ``choices`` are (text, finish_reason)."""
    return msgspec.json.encode(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": index,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": reason,
                }
                for index, (text, reason) in enumerate(choices)
            ],
            "usage": dict(usage_counts),
            "system_fingerprint": None,
        }
    )


class ChunkWriter:
    """The SSE events of one stream, as bytes: every chunk shares ``id`` and ``created``.

    The constant head of each chunk is encoded once; a delta costs one string encode.
    """

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool):
        head = msgspec.json.encode(
            {"id": completion_id, "object": "chat.completion.chunk", "created": created}
        )
        model_json = msgspec.json.encode(model)
        self._head = b"data: " + head[:-1] + b',"model":' + model_json + b',"choices":['
        self._tail = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"
        self._include_usage = include_usage

    def _choice(self, index: int, delta: bytes, finish: str | None) -> bytes:
        reason = b"null" if finish is None else msgspec.json.encode(finish)
        return (
            self._head
            + b'{"index":%d,"delta":%s,"logprobs":null,"finish_reason":%s}' % (index, delta, reason)
            + self._tail
        )

    def role(self, index: int) -> bytes:
        """The first chunk of a choice: the role and empty content."""
        return self._choice(index, b'{"role":"assistant","content":""}', None)

    def delta(self, index: int, text: str) -> bytes:
        return self._choice(index, b'{"content":' + msgspec.json.encode(text) + b"}", None)

    def finish(self, index: int, reason: str) -> bytes:
        return self._choice(index, b"{}", reason)

    def usage(self, counts: Mapping[str, int]) -> bytes:
        """The last chunk with ``include_usage``: no choices, the usage."""
        return self._head + b'],"usage":' + msgspec.json.encode(dict(counts)) + b"}\n\n"


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> bytes:
    return msgspec.json.encode(
        {"error": {"message": message, "type": type, "param": param, "code": code}}
    )


def error_event(message: str, *, type: str = "api_error", code: str | None = None) -> bytes:
    """An error in the middle of a stream: a ``data:`` line the clients raise on."""
    return b"data: " + error_body(message, type=type, code=code) + b"\n\n"


def model_object(
    model_id: str, *, name: str | None = None, created: int = 0, owned_by: str = "character.ai"
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": owned_by,
    }
    if name:
        item["name"] = name
    return item


def model_list(models: Sequence[Mapping[str, Any]]) -> bytes:
    return msgspec.json.encode({"object": "list", "data": [dict(m) for m in models]})
