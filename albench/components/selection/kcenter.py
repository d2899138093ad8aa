"""Greedy k-center (Sener & Savarese, "Active Learning for Convolutional Neural
Networks: A Core-Set Approach", ICLR 2018), as ``furthest_first`` in
JordanAsh/badge ``query_strategies/core_set.py``, with exact deferred updates.

**Deferred exact argmax.** Minimum distances only ever decrease, so values that
have not yet seen the newest centres are upper bounds. Each pick refreshes only
the top-M bounds against the pending centres; if the best refreshed value
strictly beats the (M+1)-th bound it is the exact argmax, otherwise all pending
centres are applied to the whole pool in one matrix product. The pick sequence
equals the naive algorithm's.
"""

from __future__ import annotations

import numpy as np
import torch

from .distances import as_tensor, min_sq_dist_to, sq_dists


def kcenter_greedy(
    x: np.ndarray,
    initial_centres: np.ndarray,
    budget: int,
    candidates: np.ndarray | None = None,
    top_m: int = 256,
    max_pending: int = 64,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Greedy k-center with exact deferred updates.

    ``x`` (n, d) points; ``initial_centres`` row indices already covered (labelled);
    ``candidates`` rows that may be picked (default: all rows not in the initial
    centres). Returns ``budget`` row indices in pick order. Each pick is
    ``argmax_i min_c ||x_i - x_c||`` over the candidates, ties to the lowest row,
    exactly as the naive loop; minimum distances start from the initial centres
    (or +inf when there are none, so the first pick is the lowest candidate).
    On ``device`` the distance products run there (the bookkeeping of O(N) bounds stays on the host).
    """
    xt = as_tensor(x, torch.float32 if x.dtype != np.float64 else torch.float64).to(device)
    n = xt.shape[0]
    cand = np.setdiff1d(np.arange(n), initial_centres) if candidates is None else np.asarray(candidates)
    if budget > cand.size:
        raise ValueError(f"k-center greedy asked for {budget} picks from {cand.size} candidates")
    xc = xt[torch.as_tensor(cand)]
    xc_sq = (xc * xc).sum(1)
    if len(initial_centres):
        md = (
            min_sq_dist_to(xc, xt[torch.as_tensor(np.asarray(initial_centres))], xc_sq)[0]
            .cpu()
            .numpy()
            .astype(np.float64)
        )
    else:
        md = np.full(cand.size, np.inf)
    picked_pos: list[int] = []
    pending: list[int] = []  # positions (into cand) of centres not yet applied to md
    top_m = min(top_m, cand.size)

    def flush() -> None:
        if pending:
            c = xc[torch.as_tensor(pending)]
            d = min_sq_dist_to(xc, c, xc_sq)[0].cpu().numpy()
            np.minimum(md, d, out=md)
            pending.clear()

    for _ in range(budget):
        best = -1
        if pending and top_m < cand.size:
            top = np.argpartition(-md, top_m)[: top_m + 1]  # top_m+1 largest upper bounds
            order = top[np.lexsort((top, -md[top]))]  # by bound desc, then position asc
            head, bound_rest = order[:top_m], md[order[top_m]]
            hp = torch.as_tensor(head)
            fresh = np.minimum(
                md[head], sq_dists(xc[hp], xc[torch.as_tensor(pending)], xc_sq[hp]).min(1)[0].cpu().numpy()
            )
            md[head] = fresh
            j = int(np.lexsort((head, -fresh))[0])
            if fresh[j] > bound_rest:
                best = int(head[j])
            if len(pending) >= max_pending and best < 0:
                flush()
        elif pending:
            flush()
        if best < 0:
            flush()
            best = int(np.argmax(md))  # first index among ties, like the reference
        picked_pos.append(best)
        md[best] = -np.inf  # never again
        pending.append(best)
        if len(pending) >= max_pending:
            flush()
            md[np.asarray(picked_pos)] = -np.inf
    return cand[np.asarray(picked_pos, dtype=np.int64)]
