"""How every benchmark figure is timed: CPU and wall time, repeated, interleaved, summarised.

Why: on a shared machine wall-clock figures move with other people's load
(the same peer-protocol command gave 26x and 87x). Process CPU time with one
torch thread is what the code costs and barely moves with load; wall time is
what a user waits and is reported next to it. Every measured quantity is
repeated (``REPEATS`` >= 3) and summarised by its median and spread (min, max,
and (max - min) / median); when two things are compared, their repetitions are
interleaved (A B B A A B ...) so that a load change hits both arms alike.
Projections (a per-step cost times a step count) come from at least
``MIN_PROJECTION_STEPS`` measured steps.
"""

from __future__ import annotations

import os
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")

REPEATS = 3
MIN_PROJECTION_STEPS = 20
STABILITY_TOLERANCE = 0.15  # two consecutive runs of a section agree within +-15 % on every ratio


@dataclass
class Sample:
    """One measurement: process CPU seconds and wall seconds."""

    cpu_s: float
    wall_s: float

    def __add__(self, other: "Sample") -> "Sample":
        return Sample(self.cpu_s + other.cpu_s, self.wall_s + other.wall_s)

    def __sub__(self, other: "Sample") -> "Sample":
        return Sample(self.cpu_s - other.cpu_s, self.wall_s - other.wall_s)

    def scaled(self, k: float) -> "Sample":
        return Sample(self.cpu_s * k, self.wall_s * k)


class Stopwatch:
    """Filled in when its ``timed()`` block ends: ``.sample`` (CPU and wall seconds)."""

    sample: Sample


@contextmanager
def timed() -> Iterator[Stopwatch]:
    """Measure a block's process CPU time (all threads) and wall time."""
    sw = Stopwatch()
    c0, w0 = time.process_time(), time.perf_counter()
    try:
        yield sw
    finally:
        sw.sample = Sample(time.process_time() - c0, time.perf_counter() - w0)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread inside the block (the per-run setting of albench's runs), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def measure(fn: Callable[[], T]) -> tuple[T, Sample]:
    with timed() as sw:
        out = fn()
    return out, sw.sample


def summary(values: list[float]) -> dict:
    """Median and spread of repeated measurements (spread_pct = (max - min) / median, in %)."""
    if not values:
        raise ValueError("summary() of no measurements")
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {
        "median": med,
        "min": lo,
        "max": hi,
        "n": len(values),
        "spread_pct": round(100 * (hi - lo) / med, 1) if med else 0.0,
    }


def summarise(samples: list[Sample]) -> dict:
    """``{"cpu": summary, "wall": summary}`` of repeated samples."""
    return {"cpu": summary([s.cpu_s for s in samples]), "wall": summary([s.wall_s for s in samples])}


def interleaved(arms: dict[str, Callable[[], T]], repeats: int = REPEATS) -> dict[str, list[tuple[T, Sample]]]:
    """Run every arm ``repeats`` times, alternating the order each repetition (A B, B A, A B, ...).

    Returns per arm the list of (result, sample). Alternating cancels a linear
    drift in load between arms; repeating exposes the spread.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    names = list(arms)
    out: dict[str, list[tuple[T, Sample]]] = {n: [] for n in names}
    for r in range(repeats):
        for n in names if r % 2 == 0 else names[::-1]:
            out[n].append(measure(arms[n]))
    return out


def check_projection_steps(steps: int) -> None:
    """Refuse a projection from fewer than ``MIN_PROJECTION_STEPS`` measured steps."""
    if steps < MIN_PROJECTION_STEPS:
        raise ValueError(f"a projection needs at least {MIN_PROJECTION_STEPS} measured steps, got {steps}")


def ratio_cell(num: dict, den: dict) -> float:
    """Ratio of two medians (from ``summary``), rounded for a table."""
    return round(num["median"] / den["median"], 2) if den["median"] else float("inf")


def fmt(s: dict, digits: int = 3) -> str:
    """``median [min-max]`` of a summary, for a table cell."""
    return f"{s['median']:.{digits}g} [{s['min']:.{digits}g}-{s['max']:.{digits}g}]"


def load_average() -> float | None:
    """The 1-minute load average (how busy the machine was), or None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def compare_runs(
    first: dict[str, float], second: dict[str, float], tolerance: float = STABILITY_TOLERANCE
) -> list[dict]:
    """Stability check: per ratio, the two runs' values and whether they agree within ``tolerance``.

    Agreement is |r2 - r1| / r1 (the first run is the reference); a ratio
    present in only one run fails the check.
    """
    rows = []
    for name in sorted(set(first) | set(second)):
        a, b = first.get(name), second.get(name)
        if a is None or b is None or not a:
            rows.append({"ratio": name, "run_1": a, "run_2": b, "diff_pct": None, "within": False})
            continue
        d = abs(b - a) / abs(a)
        rows.append({"ratio": name, "run_1": a, "run_2": b, "diff_pct": round(100 * d, 1), "within": d <= tolerance})
    return rows
