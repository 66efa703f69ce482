"""An OpenAI-compatible server over a Character.AI account (``cai serve``).

``create_app(client, ...)`` gives an ``aiohttp.web.Application`` to run or mount,
``serve(client, ...)`` runs one until cancelled. Chat front ends (SillyTavern, Open WebUI,
LibreChat) and programs written for the official ``openai`` client talk to it; each of their
conversations is kept in step with one c.ai chat (reconcile.py), in state that survives
restarts (state/). See docs/bridge.md.

The bridge's own errors, all in the ``caiclient.errors`` tree (so ``except CaiError``
catches them) and importable from here:

- :class:`WireError` (a ``ValidationError``): a request the bridge refuses, with the HTTP
  status and OpenAI error fields it answers with;
- :class:`StateUnavailable` (a ``TransportError``): the state database cannot be reached
  (HTTP 503);
- :class:`Busy` (a ``RateLimited``): the conversation stayed busy until the lock deadline
  (HTTP 429 with Retry-After).
"""

from .engine import BridgeConfig
from .reconcile import Policy
from .server import LOOPBACK_HOSTS, create_app, running, serve, tune_collector
from .state import Busy, StateUnavailable, Store, default_state_url, open_store
from .wire import WireError

__all__ = [
    "LOOPBACK_HOSTS",
    "BridgeConfig",
    "Busy",
    "Policy",
    "StateUnavailable",
    "Store",
    "WireError",
    "create_app",
    "default_state_url",
    "open_store",
    "running",
    "serve",
    "tune_collector",
]
