"""Shared numerics for the built-in strategies: chunked distances, exact
k-center greedy, D²-sampling, k-means and k-nearest neighbours.

Nothing here builds an N×N (or N×C·D) matrix: distances are computed in row
chunks of at most ``CHUNK_ELEMS`` entries, so memory stays O(N·(C+D)).

Two accelerations keep the sequential algorithms (k-center greedy, k-means++
seeding) fast on large pools without changing their output distribution:

* **Deferred exact argmax** (k-center greedy). Minimum distances only ever
  decrease, so values that have not yet seen the newest centres are upper
  bounds. Each pick refreshes only the top-M bounds against the pending centres;
  if the best refreshed value strictly beats the (M+1)-th bound it is the exact
  argmax, otherwise all pending centres are applied to the whole pool in one
  matrix product. The pick sequence equals the naive algorithm's.
* **Rejection D²-sampling** (k-means++ / BADGE). Draw from the stale upper
  bounds, accept with probability exact/bound. Accepted draws are distributed
  exactly ∝ D² (standard rejection sampling); pending centres are flushed with
  one matrix product when they pile up or acceptance drops.
* **Incremental Lloyd assignment** (k-means). After an update only the centres
  that moved can take rows over; each row keeps a lower bound on its distance to
  every other centre, is compared with its own and the moved centres, and gets a
  full pass only when that comparison is not decisive by a margin far above float
  rounding. Labels and centres equal plain Lloyd's (checked bit-for-bit at
  N = 100k, K = 1,000).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

CHUNK_ELEMS = 1 << 24  # ~16M float32 entries (64 MiB) per distance block


def as_tensor(x: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(dtype)


def rows_per_chunk(cols: int) -> int:
    return max(1, CHUNK_ELEMS // max(1, cols))


def lowest_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest scores; ties go to the lowest position (stable)."""
    return np.argsort(scores, kind="stable")[:k]


def entropy_from_logits(logits: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """Shannon entropy (nats) of softmax(logits), finite even where p underflows to 0.

    Row blocks of ``chunk`` keep the float64 temporaries at O(chunk·C) instead of
    several N×C copies (row-wise, so the values do not depend on ``chunk``).
    """
    logits = np.asarray(logits)
    out = np.empty(logits.shape[0], dtype=np.float64)
    for s in range(0, logits.shape[0], chunk):
        z = logits[s:s + chunk].astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        out[s:s + chunk] = -(np.exp(logp) * logp).sum(axis=1)  # logp is finite: 0 * logp = 0 where p underflows
    return out


def sq_dists(x: torch.Tensor, c: torch.Tensor, x_sq: torch.Tensor | None = None,
             c_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Squared Euclidean distances (n, k) via the Gram trick, clamped at 0."""
    x_sq = (x * x).sum(1) if x_sq is None else x_sq
    c_sq = (c * c).sum(1) if c_sq is None else c_sq
    return (x_sq[:, None] + c_sq[None, :] - 2.0 * (x @ c.T)).clamp_min_(0.0)


def nearest_centre(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centre for each row of x (ties to the lowest centre), chunked.

    argmin_j ||x - c_j||² = argmin_j (||c_j||² - 2 x·c_j): one fused ``addmm`` per chunk
    instead of the full distance expression (the row's ||x||² does not change the argmin).
    """
    n = x.shape[0]
    c_sq = (centres * centres).sum(1)[None, :]
    arg = torch.empty(n, dtype=torch.long)
    step = rows_per_chunk(centres.shape[0])
    ct = centres.T.contiguous()
    for s in range(0, n, step):
        arg[s:s + step] = torch.addmm(c_sq, x[s:s + step], ct, alpha=-2.0).argmin(1)
    return arg


def min_sq_dist_to(x: torch.Tensor, centres: torch.Tensor, x_sq: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of x: (min squared distance to ``centres``, argmin), chunked."""
    n = x.shape[0]
    x_sq = (x * x).sum(1) if x_sq is None else x_sq
    c_sq = (centres * centres).sum(1)
    out = torch.empty(n, dtype=x.dtype)
    arg = torch.empty(n, dtype=torch.long)
    step = rows_per_chunk(centres.shape[0])
    for s in range(0, n, step):
        d = sq_dists(x[s:s + step], centres, x_sq[s:s + step], c_sq)
        out[s:s + step], arg[s:s + step] = d.min(1)
    return out, arg


# --------------------------------------------------------------------------- k-center greedy

def kcenter_greedy(x: np.ndarray, initial_centres: np.ndarray, budget: int, candidates: np.ndarray | None = None,
                   top_m: int = 256, max_pending: int = 64) -> np.ndarray:
    """Greedy k-center (Sener & Savarese 2018) with exact deferred updates.

    ``x`` (n, d) points; ``initial_centres`` row indices already covered (labelled);
    ``candidates`` rows that may be picked (default: all rows not in the initial
    centres). Returns ``budget`` row indices in pick order. Each pick is
    ``argmax_i min_c ||x_i - x_c||`` over the candidates, ties to the lowest row,
    exactly as the naive loop; minimum distances start from the initial centres
    (or +inf when there are none, so the first pick is the lowest candidate).
    """
    xt = as_tensor(x, torch.float32 if x.dtype != np.float64 else torch.float64)
    n = xt.shape[0]
    cand = np.setdiff1d(np.arange(n), initial_centres) if candidates is None else np.asarray(candidates)
    if budget > cand.size:
        raise ValueError(f"k-center greedy asked for {budget} picks from {cand.size} candidates")
    xc = xt[torch.as_tensor(cand)]
    xc_sq = (xc * xc).sum(1)
    if len(initial_centres):
        md = min_sq_dist_to(xc, xt[torch.as_tensor(np.asarray(initial_centres))], xc_sq)[0].numpy().astype(np.float64)
    else:
        md = np.full(cand.size, np.inf)
    picked_pos: list[int] = []
    pending: list[int] = []  # positions (into cand) of centres not yet applied to md
    top_m = min(top_m, cand.size)

    def flush() -> None:
        if pending:
            c = xc[torch.as_tensor(pending)]
            d = min_sq_dist_to(xc, c, xc_sq)[0].numpy()
            np.minimum(md, d, out=md)
            pending.clear()

    for _ in range(budget):
        best = -1
        if pending and top_m < cand.size:
            top = np.argpartition(-md, top_m)[: top_m + 1]  # top_m+1 largest upper bounds
            order = top[np.lexsort((top, -md[top]))]  # by bound desc, then position asc
            head, bound_rest = order[:top_m], md[order[top_m]]
            hp = torch.as_tensor(head)
            fresh = np.minimum(md[head], sq_dists(xc[hp], xc[torch.as_tensor(pending)], xc_sq[hp]).min(1)[0].numpy())
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


# --------------------------------------------------------------------------- D²-sampling

def d2_sample(n: int, budget: int, first: int, sq_dist_to: Callable[[np.ndarray, np.ndarray], np.ndarray],
              rng: np.random.Generator, weights: np.ndarray | None = None, max_pending: int = 32,
              on_fill: Callable[[int], None] | None = None) -> np.ndarray:
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


# --------------------------------------------------------------------------- k-means

def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, weights: np.ndarray | None = None,
           max_iter: int = 10, tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """(Weighted) Lloyd k-means with k-means++ seeding drawn from ``rng``.

    Returns (centres (k, d), labels (n,)). Empty clusters keep their previous centre.
    Stops after ``max_iter`` Lloyd steps or when no centre moves more than ``tol``
    (relative to the mean squared norm of the data). Assignments after the first are
    incremental (``reassign_moved``), with the same result as a full pass.
    """
    xt = as_tensor(x)
    n = xt.shape[0]
    k = min(k, n)
    x_sq = (xt * xt).sum(1)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        w = np.ones(n)
    first = int(rng.choice(n, p=w / w.sum()))

    def sqd(rows: np.ndarray, cs: np.ndarray) -> np.ndarray:
        if rows.size > 1 and rows[-1] - rows[0] == rows.size - 1 and np.all(np.diff(rows) == 1):
            xr, xr_sq = xt[rows[0]:rows[-1] + 1], x_sq[rows[0]:rows[-1] + 1]  # a range: a view, no copy
        else:
            r = torch.as_tensor(rows)
            xr, xr_sq = xt[r], x_sq[r]
        return sq_dists(xr, xt[torch.as_tensor(cs)], xr_sq).double().numpy()

    seeds = d2_sample(n, k, first, sqd, rng, weights=w)
    centres = xt[torch.as_tensor(seeds)].clone()
    wt = torch.as_tensor(w, dtype=torch.float32)
    xw = xt * wt[:, None]
    scale = float(x_sq.mean()) or 1.0
    labels, lower = nearest_two(xt, centres)
    for _ in range(max_iter):
        sums = torch.zeros_like(centres).index_add_(0, labels, xw)
        mass = torch.zeros(centres.shape[0]).index_add_(0, labels, wt)
        new = centres.clone()
        nz = mass > 0
        new[nz] = sums[nz] / mass[nz, None]
        shift = float(((new - centres) ** 2).sum(1).max())
        moved = (new != centres).any(1).numpy()
        centres = new
        labels, lower = reassign_moved(xt, centres, labels, lower, moved)
        if shift <= tol * scale:
            break
    return centres.numpy(), labels.numpy()


def nearest_two(x: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(nearest centre (ties to the lowest), second-smallest value) per row, in the row-shifted
    units ||c||² − 2 x·c (= ||x − c||² − ||x||²), chunked."""
    n, k = x.shape[0], centres.shape[0]
    c_sq = (centres * centres).sum(1)[None, :]
    ct = centres.T.contiguous()
    arg = torch.empty(n, dtype=torch.long)
    second = torch.full((n,), float("inf"))
    step = rows_per_chunk(k)
    for s in range(0, n, step):
        g = torch.addmm(c_sq, x[s:s + step], ct, alpha=-2.0)
        arg[s:s + step] = g.argmin(1)
        if k > 1:
            g.scatter_(1, arg[s:s + step, None], float("inf"))
            second[s:s + step] = g.min(1).values
    return arg, second


def reassign_moved(x: torch.Tensor, centres: torch.Tensor, labels: torch.Tensor, lower: torch.Tensor,
                   moved: np.ndarray, margin: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-centre labels after a Lloyd update, from the previous labels, a per-row lower
    bound ``lower`` on the distance to every *other* centre (units of ``nearest_two``) and
    which centres ``moved``. Unmoved centres kept their positions, so the bound still holds
    for them; each row is compared exactly with its own centre and the moved centres, and keeps
    the best of those when that wins by more than ``margin`` (far above float rounding) against
    both the runner-up and the bound; every other row gets a full ``nearest_two`` pass. Same
    labels as a full pass (decisions inside the margin are the full pass's own) at
    O(N·|moved|·D + |undecided rows|·K·D) instead of O(N·K·D).
    """
    mi = np.flatnonzero(moved)
    if mi.size == 0:
        return labels, lower
    n, k = x.shape[0], centres.shape[0]
    if mi.size * 4 > 3 * k:
        return nearest_two(x, centres)  # almost everything moved: the plain pass is cheaper
    labels, lower = labels.clone(), lower.clone()
    c_sq = (centres * centres).sum(1)
    mi_t = torch.as_tensor(mi)
    cm_t, cm_sq = centres[mi_t].T.contiguous(), c_sq[mi_t][None, :]
    slot = torch.full((k,), -1, dtype=torch.long)
    slot[mi_t] = torch.arange(mi.size)
    undecided: list[torch.Tensor] = []
    step = rows_per_chunk(mi.size + 2)
    for s in range(0, n, step):
        xr, a = x[s:s + step], labels[s:s + step]
        d_own = c_sq[a] - 2.0 * (xr * centres[a]).sum(1)
        g = torch.addmm(cm_sq, xr, cm_t, alpha=-2.0)
        own_slot = slot[a]
        has = torch.nonzero(own_slot >= 0).flatten()
        g[has, own_slot[has]] = float("inf")  # the own centre is d_own
        m1, j1 = g.min(1)
        if mi.size > 1:
            g.scatter_(1, j1[:, None], float("inf"))
            m2 = g.min(1).values
        else:
            m2 = torch.full_like(m1, float("inf"))
        own_best = d_own < m1
        best = torch.where(own_best, d_own, m1)
        second = torch.where(own_best, m1, torch.minimum(d_own, m2))
        ok = (best + margin < second) & (best + margin < lower[s:s + step])
        labels[s:s + step] = torch.where(ok & ~own_best, mi_t[j1], a)
        lower[s:s + step] = torch.where(ok, torch.minimum(lower[s:s + step], second), lower[s:s + step])
        bad = torch.nonzero(~ok).flatten()
        if bad.numel():
            undecided.append(bad + s)
    if undecided:
        rows = torch.cat(undecided)
        labels[rows], lower[rows] = nearest_two(x[rows], centres)
    return labels, lower


def nearest_to_centres(x: np.ndarray, centres: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For each non-empty cluster (in centre order), the row closest to its centre."""
    xt, ct = as_tensor(x), as_tensor(centres)
    d = ((xt - ct[torch.as_tensor(labels)]) ** 2).sum(1).numpy()
    order = np.lexsort((np.arange(len(d)), d, labels))  # by cluster, then distance, then row
    lab_sorted = labels[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = lab_sorted[1:] != lab_sorted[:-1]
    return order[first]


# --------------------------------------------------------------------------- k nearest neighbours

def knn_exact(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(squared distances, indices) of the k nearest other rows, chunked; O(n·k) memory."""
    xt = as_tensor(x)
    n = xt.shape[0]
    k = min(k, n - 1)
    x_sq = (xt * xt).sum(1)
    dist = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=np.int64)
    step = rows_per_chunk(n)
    for s in range(0, n, step):
        e = min(n, s + step)
        d = sq_dists(xt[s:e], xt, x_sq[s:e], x_sq)
        d[torch.arange(e - s), torch.arange(s, e)] = float("inf")  # not its own neighbour
        v, i = torch.topk(d, k, dim=1, largest=False)
        dist[s:e], idx[s:e] = v.numpy(), i.numpy()
    return dist, idx


def knn_rows_exact(x: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN (squared distances, indices) of the given ``rows`` of x against all rows, chunked:
    O(len(rows)·N·D) time, O(len(rows)·k + chunk·N) memory."""
    xt = as_tensor(x)
    n = xt.shape[0]
    k = min(k, n - 1)
    rows = np.asarray(rows, dtype=np.int64)
    x_sq = (xt * xt).sum(1)
    dist = np.empty((rows.size, k), dtype=np.float32)
    idx = np.empty((rows.size, k), dtype=np.int64)
    step = rows_per_chunk(n)
    for s in range(0, rows.size, step):
        r = torch.as_tensor(rows[s:s + step])
        d = sq_dists(xt[r], xt, x_sq[r], x_sq)
        d[torch.arange(r.numel()), r] = float("inf")  # not its own neighbour
        v, i = torch.topk(d, k, dim=1, largest=False)
        dist[s:s + step], idx[s:s + step] = v.numpy(), i.numpy()
    return dist, idx


def knn_ivf(x: np.ndarray, k: int, rng: np.random.Generator, n_cells: int | None = None, n_probe: int = 8
            ) -> tuple[np.ndarray, np.ndarray]:
    """Approximate kNN (inverted file, as faiss IndexIVFFlat): k-means cells (trained on a
    sample of 64 rows per cell), each row searched among the rows of its own ``n_probe``
    nearest cells. Exact when n_probe >= n_cells.

    Work is organised per probed cell: the queries that probe cell j are compared with j's
    rows in one block whose k best go to that probe's slot (one final top-k merges the
    n_probe slots), so the distance work is
    Σ_j |queries probing j|·|rows of j|·D ≈ N·n_probe·(N/n_cells)·D (O(N^1.5·D) with
    n_cells = √N) and memory O(N·(k + n_probe) + one block). Rows whose probed cells hold
    fewer than k other rows get -1 / inf in the missing slots (``knn`` completes them exactly).
    """
    xt = as_tensor(x)
    n = xt.shape[0]
    k = min(k, n - 1)
    n_cells = max(1, min(n, n_cells or int(np.sqrt(n))))
    sample = rng.choice(n, size=min(n, 64 * n_cells), replace=False)
    cent, _ = kmeans(x[np.sort(sample)], n_cells, rng, max_iter=10)
    ct = as_tensor(cent)
    x_sq = (xt * xt).sum(1)
    n_cells = ct.shape[0]
    n_probe = min(n_probe, n_cells)
    # each row's n_probe nearest cells (the first is its own cell)
    probe = np.empty((n, n_probe), dtype=np.int64)
    step = rows_per_chunk(n_cells)
    for s in range(0, n, step):
        d = sq_dists(xt[s:s + step], ct, x_sq[s:s + step])
        probe[s:s + step] = torch.topk(d, n_probe, dim=1, largest=False)[1].numpy()
    cell = probe[:, 0]
    member_order = np.argsort(cell, kind="stable")  # rows grouped by own cell, ascending within a cell
    member_ptr = np.concatenate([[0], np.cumsum(np.bincount(cell, minlength=n_cells))])
    flat_order = np.argsort(probe.ravel(), kind="stable")  # (row, slot) pairs grouped by probed cell
    query_ptr = np.concatenate([[0], np.cumsum(np.bincount(probe.ravel(), minlength=n_cells))])
    # the k best of each probed cell land in their own slot; one final top-k merges the slots
    cand_d = torch.full((n, n_probe * k), float("inf"))
    cand_i = torch.full((n, n_probe * k), -1, dtype=torch.long)
    for c in range(n_cells):
        m = member_order[member_ptr[c]:member_ptr[c + 1]]
        fq = flat_order[query_ptr[c]:query_ptr[c + 1]]
        if m.size == 0 or fq.size == 0:
            continue
        mt = torch.as_tensor(m)
        xm_t = xt[mt].T.contiguous()
        xm_sq = x_sq[mt][None, :]
        kk = min(k, m.size)
        qstep = rows_per_chunk(m.size)
        for s in range(0, fq.size, qstep):
            q, slot = np.divmod(fq[s:s + qstep], n_probe)
            qt = torch.as_tensor(q)
            d = torch.addmm(xm_sq, xt[qt], xm_t, alpha=-2.0)  # ||m||² − 2 q·m: same order as ||q − m||²
            pos = np.minimum(np.searchsorted(m, q), m.size - 1)
            own = np.flatnonzero(m[pos] == q)  # queries that are members of this cell
            if own.size:
                d[torch.as_tensor(own), torch.as_tensor(pos[own])] = float("inf")  # not its own neighbour
            v, i = torch.topk(d, kk, dim=1, largest=False)
            cols = torch.as_tensor(slot * k)[:, None] + torch.arange(kk)[None, :]
            rows = qt[:, None].expand(-1, kk)
            cand_d[rows, cols] = (v + x_sq[qt][:, None]).clamp_min_(0.0)
            cand_i[rows, cols] = mt[i]
    best_d, pos = torch.topk(cand_d, k, dim=1, largest=False)
    best_i = torch.gather(cand_i, 1, pos)
    best_i[torch.isinf(best_d)] = -1
    return best_d.numpy(), best_i.numpy()


def knn(x: np.ndarray, k: int, rng: np.random.Generator, exact_max: int = 20000, n_probe: int = 8
        ) -> tuple[np.ndarray, np.ndarray]:
    """Exact kNN up to ``exact_max`` rows, inverted-file approximation above (time O(n^1.5·d));
    rows the approximation leaves short of k neighbours are completed by an exact search."""
    if x.shape[0] <= exact_max:
        return knn_exact(x, k)
    dist, idx = knn_ivf(x, k, rng, n_probe=n_probe)
    short = np.flatnonzero((idx < 0).any(1))
    if short.size:
        dist[short], idx[short] = knn_rows_exact(x, short, k)
    return dist, idx
