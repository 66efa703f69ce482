"""caiclient: a typed client, CLI and local emulator for Character.AI's unofficial web API.

Start with :class:`AsyncClient`; every error is a :class:`CaiError` (see :mod:`caiclient.errors`).
"""

from ._core import ClientStats
from .client import AsyncClient
from .endpoints import Endpoints
from .errors import (
    AuthError,
    BlockedError,
    CaiError,
    CharacterNotFound,
    ChatNotFound,
    Disconnected,
    Filtered,
    HistoryNotFound,
    LoginRequired,
    NotFound,
    NotLoggedIn,
    PersonaNotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
    TurnNotFound,
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
from .sync import Client

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
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
    "ClientStats",
    "Disconnected",
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
    "ReplyAccumulator",
    "ReplyChunk",
    "RetryPolicy",
    "ServerError",
    "Settings",
    "Timeout",
    "TransportError",
    "Turn",
    "TurnKey",
    "TurnNotFound",
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
]
