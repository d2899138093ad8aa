"""Shared figure conventions: one colour per method in every figure of a report.

Colours come from matplotlib's qualitative palettes (tab10, then Dark2 and Set1)
in the order the methods are first named; the paper's method ("Ours") is
always red and zero-shot CLIP always a grey dashed line, so a reader can follow
a method from the curves to the bars to the critical-difference diagram.
"""

from __future__ import annotations

from typing import Iterable

OURS = "Ours"
OURS_COLOR = "#d62728"  # tab:red
ZERO_SHOT_COLOR = "#7f7f7f"  # tab:gray


def _palette() -> list[str]:
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cols = []
    for name in ("tab10", "Dark2", "Set1"):
        cmap = colormaps[name]  # qualitative: N listed colours
        cols += [to_hex(c) for c in cmap(np.arange(cmap.N))]
    return [c for c in dict.fromkeys(cols) if c not in (OURS_COLOR, ZERO_SHOT_COLOR)]


def method_colors(names: Iterable[str]) -> dict[str, str]:
    """{method: hex colour}, stable for a given order of names; "Ours" is always red."""
    pal = _palette()
    out: dict[str, str] = {}
    i = 0
    for n in dict.fromkeys(names):
        if n == OURS:
            out[n] = OURS_COLOR
            continue
        out[n] = pal[i % len(pal)]
        i += 1
    return out
