"""One type for "this call must be over by then": every wait of a call counts against it."""

from __future__ import annotations

import asyncio

from .errors import Timeout

__all__ = ["Deadline"]


class Deadline:
    """A point in the running loop's time by which a call must end.

    Made once per call (:meth:`after`) and handed down to every wait of that call: REST
    requests, the socket connect, the chat lock, each frame, recovery polling.
    """

    __slots__ = ("_loop", "at")

    def __init__(self, at: float, loop: asyncio.AbstractEventLoop) -> None:
        self.at = at
        self._loop = loop

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        """The deadline ``seconds`` from now on the running loop."""
        loop = asyncio.get_running_loop()
        return cls(loop.time() + seconds, loop)

    def remaining(self) -> float:
        """Seconds left; zero or negative once the deadline has passed."""
        return self.at - self._loop.time()

    @property
    def expired(self) -> bool:
        return self._loop.time() >= self.at

    def left(self, what: str = "the call") -> float:
        """Seconds left (> 0); raises Timeout once the deadline has passed."""
        left = self.at - self._loop.time()
        if left <= 0:
            raise Timeout(f"{what} did not finish within its deadline")
        return left

    def sooner(self, seconds: float | None) -> Deadline:
        """This deadline, or the one ``seconds`` from now if that comes first."""
        if seconds is None:
            return self
        at = self._loop.time() + seconds
        return self if self.at <= at else Deadline(at, self._loop)

    def __repr__(self) -> str:
        return f"<Deadline in {self.remaining():.3f} s>"
