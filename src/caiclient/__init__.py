"""caiclient: a typed client, CLI and local emulator for Character.AI's unofficial web API.

Start with :class:`Client` (blocking) or :class:`AsyncClient`; log in with :class:`Auth` /
:class:`AsyncAuth` (or the coroutines of :mod:`caiclient.auth`); every error is a
:class:`CaiError` (see :mod:`caiclient.errors`). Names with an ``Async`` prefix are the
coroutine API; the plain name is the blocking twin.
"""

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
