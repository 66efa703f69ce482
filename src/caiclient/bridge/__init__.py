"""An OpenAI-compatible server over a Character.AI account (``cai serve``).

``create_app(client, ...)`` gives an ``aiohttp.web.Application`` to run or mount,
``serve(client, ...)`` runs one until cancelled. Chat front ends (SillyTavern, Open WebUI,
LibreChat) and programs written for the official ``openai`` client talk to it; each of their
conversations is kept in step with one c.ai chat (reconcile.py), in state that survives
restarts (state/). See docs/bridge.md.
"""

from .engine import BridgeConfig
from .reconcile import Policy
from .server import LOOPBACK_HOSTS, create_app, running, serve
from .state import Store, default_state_url, open_store

__all__ = [
    "LOOPBACK_HOSTS",
    "BridgeConfig",
    "Policy",
    "Store",
    "create_app",
    "default_state_url",
    "open_store",
    "running",
    "serve",
]
