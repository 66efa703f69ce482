"""Typed models of the payloads Character.AI sends.

Every model is a frozen :class:`msgspec.Struct`: fields the server adds later are ignored,
fields it may omit are optional. Ids are strings everywhere, including user ids, which the
legacy API sends as integers and the neo API as digit strings (normalised where parsed).
Each area keeps its models in its own private module; this package re-exports them all.
"""

from ._account import *  # noqa: F403
from ._character import *  # noqa: F403
from ._chat import *  # noqa: F403
from ._media import *  # noqa: F403
from ._v1 import *  # noqa: F403
