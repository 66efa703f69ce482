"""Measurement helpers shared by the workers: CPU time, RSS, percentiles. Stdlib only."""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["cpu_seconds", "own_size", "percentile", "rss_bytes", "settled_rss"]


def cpu_seconds() -> float:
    """User plus system CPU time of this process (all threads) so far, in seconds."""
    return time.process_time()


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def settled_rss() -> int:
    """RSS after a full garbage collection, so that only live objects are counted."""
    gc.collect()
    gc.collect()
    return rss_bytes()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    index = min(max(round(q * 10) - 1, 0), len(cuts) - 1)
    return cuts[index]


def _children(obj: Any) -> list[Any]:
    fields = getattr(type(obj), "__struct_fields__", None)
    if fields is not None:
        return [getattr(obj, name) for name in fields]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    return []


def own_size(obj: Any, sibling: Any) -> int:
    """Bytes of ``obj`` and everything it references that ``sibling`` (an object of the same
    kind) does not share: what one more such object really costs."""
    shared: set[int] = set()
    stack = [sibling]
    while stack:
        item = stack.pop()
        if id(item) not in shared:
            shared.add(id(item))
            stack.extend(_children(item))
    total, seen, stack = 0, set(), [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen or id(item) in shared or item is None or isinstance(item, bool):
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        stack.extend(_children(item))
    return total
