"""Every error caiclient raises, in one tree.

::

    CaiError
    ├── ValidationError        bad arguments; raised before any I/O (also a ValueError)
    ├── AuthError              the token is missing, invalid or expired
    │   ├── LoginRequired      a guest account hit a limit that needs a real login
    │   └── NotLoggedIn        no usable stored token for a profile (caiclient.profiles)
    ├── BlockedError           Cloudflare or another proxy refused us (HTML body, cf-* headers)
    ├── NotFound               the server has no such thing (or it is not yours)
    │   ├── CharacterNotFound
    │   ├── ChatNotFound
    │   ├── HistoryNotFound    (legacy Chat V1)
    │   ├── PersonaNotFound
    │   ├── RoomNotFound       a group chat that does not exist or you are not in
    │   ├── TurnNotFound
    │   ├── UserNotFound
    │   └── VoiceNotFound
    ├── RateLimited            too many requests; ``retry_after`` seconds, if the server said
    ├── Filtered               the input filter refused the message (``comment``, ``sub_code``)
    ├── ServerError            any other refusal the server reported (``status``, ``body``)
    │   └── DuplicateRequest   "… already exists": the server has this chat or message already
    ├── ProtocolError          a response or frame we could not understand
    ├── UsageError             the client cannot be used this way (also a RuntimeError)
    │   └── ClientClosed       the client was closed; create a new one
    └── TransportError         the connection failed
        ├── Disconnected       the socket closed before the answer arrived (retryable; ``code``)
        └── Timeout            no answer within the deadline (also a TimeoutError)

Messages never contain the token.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BlockedError",
    "CaiError",
    "CharacterNotFound",
    "ChatNotFound",
    "ClientClosed",
    "Disconnected",
    "DuplicateRequest",
    "Filtered",
    "HistoryNotFound",
    "LoginRequired",
    "NotFound",
    "NotLoggedIn",
    "PersonaNotFound",
    "ProtocolError",
    "RateLimited",
    "RoomNotFound",
    "ServerError",
    "Timeout",
    "TransportError",
    "TurnNotFound",
    "UsageError",
    "UserNotFound",
    "ValidationError",
    "VoiceNotFound",
]


class CaiError(Exception):
    """Base class of every error raised by caiclient."""


class ValidationError(CaiError, ValueError):
    """An argument is invalid; nothing was sent."""


class AuthError(CaiError):
    """The token is missing, invalid or expired."""


class LoginRequired(AuthError):
    """A guest token reached a limit; log in with a real account to go on."""


class NotLoggedIn(AuthError):
    """No usable token for a login profile: none stored, or its file is unsafe or damaged.

    ``profile`` names the profile; the message says what to do (``cai login``, ``chmod``).
    """

    def __init__(self, message: str, *, profile: str = "default"):
        self.profile = profile
        super().__init__(message)


class BlockedError(CaiError):
    """The request was refused by Cloudflare (or another proxy), not by Character.AI.

    This is never a verdict on the token: retry later, through another network or proxy,
    or with another ``impersonate`` browser target.
    """

    def __init__(self, message: str, *, status: int | None = None, ray: str | None = None):
        self.status = status
        self.ray = ray
        hint = (
            " Hint: this is an anti-bot block, not a bad token; try again later, use a proxy, "
            "or pass another impersonate= target."
        )
        super().__init__(message + hint)


class NotFound(CaiError):
    """The server has no such object, or it belongs to someone else."""


class CharacterNotFound(NotFound):
    """No character with that id."""


class ChatNotFound(NotFound):
    """No chat with that id for this account."""


class HistoryNotFound(NotFound):
    """No legacy Chat V1 history with that id (or none between you and the character)."""


class PersonaNotFound(NotFound):
    """No persona with that id among yours."""


class VoiceNotFound(NotFound):
    """No voice with that id."""


class RoomNotFound(NotFound):
    """No group chat with that id among yours (a room you are not a member of reads the
    same: join it with its join token first)."""


class TurnNotFound(NotFound):
    """No turn with that id in the chat."""


class UserNotFound(NotFound):
    """No user with that username."""


# A server's "retry after" beyond this is not a wait anyone should follow; it is kept as this.
MAX_RETRY_AFTER = 86400.0


class RateLimited(CaiError):
    """Too many requests; ``retry_after`` is the wait the server asked for, in seconds.

    It is None when the server named no (usable) wait, and otherwise a finite number
    between 0 and one day: negative waits read as 0, longer ones as one day.
    """

    def __init__(self, message: str, *, retry_after: float | None = None):
        if retry_after is not None:
            retry_after = float(retry_after)
            if retry_after != retry_after:  # NaN
                retry_after = None
            else:
                retry_after = min(max(retry_after, 0.0), MAX_RETRY_AFTER)
        self.retry_after = retry_after
        if retry_after is not None:
            message = f"{message} (retry after {retry_after:g} s)"
        super().__init__(message)


class Filtered(CaiError):
    """The server's input filter refused the message; nothing was generated."""

    def __init__(self, comment: str, *, sub_code: int | str | None = None):
        self.comment = comment
        self.sub_code = sub_code
        super().__init__(comment if sub_code is None else f"{comment} (sub_code {sub_code})")


class ServerError(CaiError):
    """The server refused or failed the request; ``status`` is the HTTP status or neo error code."""

    def __init__(self, message: str, *, status: int | None = None, body: str = ""):
        self.status = status
        self.body = body
        super().__init__(message)


class DuplicateRequest(ServerError):
    """The server already has what the request would create ("create_chat already exists",
    "create_and_generate_turn already exists"): a chat or turn id was used twice.

    After the client re-sent a message whose first send may have been lost, this means the
    first one did arrive, and its reply is on the way.
    """


class ProtocolError(CaiError):
    """A response or frame did not have the shape we expect."""


class UsageError(CaiError, RuntimeError):
    """The client was used in a way that cannot work, e.g. from another event loop than the
    one it started on; the message says what to do instead."""


class ClientClosed(UsageError):
    """The client was closed (``aclose()``/``close()``); create a new one to go on."""


class TransportError(CaiError):
    """The network connection failed."""


class Disconnected(TransportError):
    """The connection closed before the answer arrived; the call may be retried.

    ``code`` is the WebSocket close code when the server closed the socket with one.
    """

    def __init__(self, message: str, *, code: int | None = None):
        self.code = code
        super().__init__(message)


class Timeout(TransportError, TimeoutError):
    """No answer arrived within the deadline."""
