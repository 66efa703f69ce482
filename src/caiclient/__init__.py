"""caiclient: a typed client, CLI and local emulator for Character.AI's unofficial web API.

Start with :class:`Client` (blocking) or :class:`AsyncClient`; log in with :class:`Auth` /
:class:`AsyncAuth` (or the coroutines of :mod:`caiclient.auth`); every error is a
:class:`CaiError` (see :mod:`caiclient.errors`). Names with an ``Async`` prefix are the
coroutine API; the plain name is the blocking twin.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from . import auth
    from ._config import ClientOptions
    from ._core import ClientStats, RawBody
    from ._validate import RATING_LABELS
    from .auth import AsyncAuth
    from .client import AsyncClient
    from .endpoints import Endpoints
    from .errors import (
        AuthError,
        BlockedError,
        CaiError,
        CharacterNotFound,
        ChatNotFound,
        ClientClosed,
        Disconnected,
        DuplicateRequest,
        Filtered,
        HistoryNotFound,
        LoginRequired,
        NotFound,
        NotLoggedIn,
        PersonaNotFound,
        ProtocolError,
        RateLimited,
        RoomNotFound,
        ServerError,
        Timeout,
        TransportError,
        TurnNotFound,
        UsageError,
        UserNotFound,
        ValidationError,
        VoiceNotFound,
    )
    from .models import (
        Author,
        Candidate,
        Character,
        CharacterShort,
        Chat,
        Persona,
        PublicUser,
        Settings,
        Turn,
        TurnKey,
        User,
        V1Chunk,
        V1History,
        V1Message,
        Voice,
        VoiceCreator,
    )
    from .protocol.retry import Backoff, RetryPolicy
    from .protocol.stream import ReplyAccumulator, ReplyChunk
    from .sync import Auth, Client

__version__ = "0.1.0"

# The public names and the module each comes from. They are imported on first use (PEP 562),
# so ``import caiclient`` and ``cai --help`` do not pay for asyncio, msgspec and the client
# until a name is touched; ``from caiclient import AsyncClient`` imports what it needs. The
# ``TYPE_CHECKING`` block above says the same for type checkers (a test keeps the two equal).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "_config": ("ClientOptions",),
    "_core": ("ClientStats", "RawBody"),
    "_validate": ("RATING_LABELS",),
    "auth": ("AsyncAuth",),
    "client": ("AsyncClient",),
    "endpoints": ("Endpoints",),
    "errors": (
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
    ),
    "models": (
        "Author",
        "Candidate",
        "Character",
        "CharacterShort",
        "Chat",
        "Persona",
        "PublicUser",
        "Settings",
        "Turn",
        "TurnKey",
        "User",
        "V1Chunk",
        "V1History",
        "V1Message",
        "Voice",
        "VoiceCreator",
    ),
    "protocol.retry": ("Backoff", "RetryPolicy"),
    "protocol.stream": ("ReplyAccumulator", "ReplyChunk"),
    "sync": ("Auth", "Client"),
}
_ORIGIN = {name: module for module, names in _EXPORTS.items() for name in names}
# The sub-modules ``import caiclient`` used to bring in, reachable as attributes as before.
_SUBMODULES = frozenset({"auth", "client", "endpoints", "errors", "models", "protocol", "sync"})


if not _typing.TYPE_CHECKING:  # For type checkers every name is imported above: no Any fallback.

    def __getattr__(name: str) -> _typing.Any:
        module = _ORIGIN.get(name)
        if module is not None:
            value = getattr(_importlib.import_module(f".{module}", __name__), name)
        elif name in _SUBMODULES:
            value = _importlib.import_module(f".{name}", __name__)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "RATING_LABELS",
    "AsyncAuth",
    "AsyncClient",
    "Auth",
    "AuthError",
    "Author",
    "Backoff",
    "BlockedError",
    "CaiError",
    "Candidate",
    "Character",
    "CharacterNotFound",
    "CharacterShort",
    "Chat",
    "ChatNotFound",
    "Client",
    "ClientClosed",
    "ClientOptions",
    "ClientStats",
    "Disconnected",
    "DuplicateRequest",
    "Endpoints",
    "Filtered",
    "HistoryNotFound",
    "LoginRequired",
    "NotFound",
    "NotLoggedIn",
    "Persona",
    "PersonaNotFound",
    "ProtocolError",
    "PublicUser",
    "RateLimited",
    "RawBody",
    "ReplyAccumulator",
    "ReplyChunk",
    "RetryPolicy",
    "RoomNotFound",
    "ServerError",
    "Settings",
    "Timeout",
    "TransportError",
    "Turn",
    "TurnKey",
    "TurnNotFound",
    "UsageError",
    "User",
    "UserNotFound",
    "V1Chunk",
    "V1History",
    "V1Message",
    "ValidationError",
    "Voice",
    "VoiceCreator",
    "VoiceNotFound",
    "__version__",
    "auth",
]
