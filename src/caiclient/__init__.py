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

# The public names are imported on first use (PEP 562), from the first of these modules
# (lightest first) whose ``__all__`` has them: ``import caiclient`` and ``cai --help`` do not
# pay for asyncio, msgspec and the client until a name is touched. Type checkers read the
# ``TYPE_CHECKING`` imports above instead (a test checks that both give the same objects).
_SOURCES = (
    "errors",
    "endpoints",
    "models",
    "protocol.retry",
    "protocol.stream",
    "_validate",
    "_config",
    "_core",
    "auth",
    "client",
    "sync",
)
# The sub-modules ``import caiclient`` used to bring in, reachable as attributes as before.
_SUBMODULES = frozenset({"auth", "client", "endpoints", "errors", "models", "protocol", "sync"})


if not _typing.TYPE_CHECKING:  # For type checkers every name is imported above: no Any fallback.

    def __getattr__(name: str) -> _typing.Any:
        if name in _SUBMODULES:
            value = _importlib.import_module(f".{name}", __name__)
        else:
            value = _public(name)
        globals()[name] = value
        return value


def _public(name: str) -> object:
    if name in _PUBLIC:
        for source in _SOURCES:
            module = _importlib.import_module(f".{source}", __name__)
            if name in module.__all__:
                return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
_PUBLIC = frozenset(__all__)
