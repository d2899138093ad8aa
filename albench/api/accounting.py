"""Process-wide counters of encoder work (machine-independent cost figures).

The image-encoder count is the number of images pushed through a CLIP image
tower; a run's record stores how much it added. The target for frozen-encoder
adapters is that every image is encoded once per backbone across a whole grid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

COUNTERS: Counter[str] = Counter()


def count(name: str, n: int) -> None:
    COUNTERS[name] += int(n)


@contextmanager
def measure() -> Iterator[dict[str, int]]:
    """Yields a dict filled, on exit, with the counter increments inside the block."""
    before = COUNTERS.copy()
    out: dict[str, int] = {}
    try:
        yield out
    finally:
        for key in set(COUNTERS) | set(before):
            out[key] = COUNTERS[key] - before[key]
