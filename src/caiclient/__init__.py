"""caiclient: a typed client, CLI and local emulator for Character.AI's unofficial web API.

Start with :class:`AsyncClient`; every error is a :class:`CaiError` (see :mod:`caiclient.errors`).
"""

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
from .models import Author, Candidate, Chat, Turn, TurnKey, User
from .protocol.stream import ReplyAccumulator, ReplyChunk

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "AuthError",
    "Author",
    "BlockedError",
    "CaiError",
    "Candidate",
    "CharacterNotFound",
    "Chat",
    "ChatNotFound",
    "Disconnected",
    "Endpoints",
    "Filtered",
    "HistoryNotFound",
    "LoginRequired",
    "NotFound",
    "PersonaNotFound",
    "ProtocolError",
    "RateLimited",
    "ReplyAccumulator",
    "ReplyChunk",
    "ServerError",
    "Timeout",
    "TransportError",
    "Turn",
    "TurnKey",
    "TurnNotFound",
    "User",
    "UserNotFound",
    "ValidationError",
    "VoiceNotFound",
    "__version__",
]
