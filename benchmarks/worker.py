"""One measurement in its own process: ``python -m benchmarks.worker '<json spec>'``.

The spec names the implementation (``ours``, ``floor`` or ``load``) and the task; the result
is printed as one ``RESULT {json}`` line. Only the implementation's own modules are imported,
so the floor's RSS and start-up do not include caiclient.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from typing import Any

__all__ = ["main"]


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    module = importlib.import_module(f"benchmarks.{spec['impl']}")
    task = module.TASKS[spec["task"]]
    result: dict[str, Any] = await asyncio.wait_for(task(spec), spec.get("timeout", 300))
    return result


def main() -> int:
    spec = json.loads(sys.argv[1])
    result = asyncio.run(_run(spec))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
