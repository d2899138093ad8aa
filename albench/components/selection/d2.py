"""D²-sampling: k-means++ seeding (Arthur & Vassilvitskii, "k-means++: The
Advantages of Careful Seeding", SODA 2007), as BADGE's ``init_centers``
(JordanAsh/badge ``query_strategies/badge_sampling.py``) uses it.

**Rejection D²-sampling.** Draw from stale upper bounds of D², accept with
probability exact/bound. Accepted draws are distributed exactly ∝ D² (standard
rejection sampling); pending centres are flushed with one matrix product when
they pile up or acceptance drops, so large pools never pay a full pass per pick.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .distances import rows_per_chunk


def d2_sample(
    n: int,
    budget: int,
    first: int,
    sq_dist_to: Callable[[np.ndarray, np.ndarray], np.ndarray],
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
    max_pending: int = 32,
    on_fill: Callable[[int], None] | None = None,
) -> np.ndarray:
    """k-means++ seeding: ``first``, then each next row drawn ∝ w·D² (D = distance to the
    nearest chosen row), never a chosen row again. ``sq_dist_to(rows, centres)`` returns the
    (len(rows), len(centres)) squared distances. Returns ``budget`` rows in pick order.

    When every remaining row has zero mass (all duplicates of chosen rows), the rest is
    drawn uniformly from the unchosen rows (their number is passed to ``on_fill``).
    """
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    chosen = [int(first)]
    is_chosen = np.zeros(n, dtype=bool)
    is_chosen[first] = True
    ub = np.empty(n)  # upper bounds of D² (exact for rows that saw every chosen centre)
    step = max(1, (1 << 22))
    for s in range(0, n, step):
        rows = np.arange(s, min(n, s + step))
        ub[rows] = sq_dist_to(rows, np.array([first]))[:, 0]
    ub = np.clip(ub, 0, None)
    ub[is_chosen] = 0.0
    pending: list[int] = []
    rejections = 0

    def flush() -> None:
        if pending:
            p = np.asarray(pending)
            step = rows_per_chunk(len(p) * 4)
            for s in range(0, n, step):
                e = min(n, s + step)
                d = np.clip(sq_dist_to(np.arange(s, e), p).min(1), 0, None)
                np.minimum(ub[s:e], d, out=ub[s:e])
            pending.clear()
            ub[is_chosen] = 0.0

    while len(chosen) < budget:
        mass = w * ub
        total = mass.sum()
        if total <= 0:
            if pending:
                flush()
                continue
            rest = np.flatnonzero(~is_chosen)
            extra = rng.choice(rest, size=budget - len(chosen), replace=False)
            if on_fill is not None:
                on_fill(len(extra))
            chosen.extend(int(i) for i in extra)
            break
        cdf = np.cumsum(mass)
        i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
        i = min(i, n - 1)
        if pending:
            exact = min(ub[i], max(0.0, float(sq_dist_to(np.array([i]), np.asarray(pending)).min())))
        else:
            exact = ub[i]
        accept = ub[i] > 0 and (exact >= ub[i] or rng.random() * ub[i] < exact)
        ub[i] = exact
        if not accept:
            rejections += 1
            if rejections >= 4:
                flush()
                rejections = 0
            continue
        rejections = 0
        chosen.append(i)
        is_chosen[i] = True
        ub[i] = 0.0
        pending.append(i)
        if len(pending) >= max_pending:
            flush()
    return np.asarray(chosen[:budget], dtype=np.int64)
