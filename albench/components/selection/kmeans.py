"""Weighted Lloyd k-means with seeded greedy k-means++ initialisation, and the
"sample nearest each centroid" rule (ALFA-Mix, CEC and TypiClust cluster with it).

**Incremental Lloyd assignment.** After an update only the centres that moved
can take rows over; each row keeps a lower bound on its distance to every other
centre, is compared with its own and the moved centres, and gets a full pass
only when that comparison is not decisive by a margin far above float32 rounding
(relative to ||x||² + ||c||², the size of the compared terms).
Labels and centres equal plain Lloyd's (checked bit-for-bit at N = 100k, K = 1,000).
"""

from __future__ import annotations

import numpy as np
import torch

from .distances import as_tensor, nearest_two, rows_per_chunk, sq_dists


def greedy_kmeanspp(
    x: torch.Tensor,
    k: int,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
    n_trials: int | None = None,
    x_sq: torch.Tensor | None = None,
) -> np.ndarray:
    """Greedy k-means++ seeding: ``k`` row indices of ``x``, in pick order.

    Arthur & Vassilvitskii (SODA 2007), greedy variant as in scikit-learn's
    ``kmeans_plusplus``: the first centre is drawn ∝ w; then, for each next centre,
    ``n_trials`` (default 2 + ⌊ln k⌋) candidates are drawn ∝ w·D² (D = distance to the
    nearest chosen centre) and the one that leaves the smallest potential Σ w·D² is kept.
    All draws come from ``rng``. When no row has mass left (every row duplicates a centre),
    the remaining centres are drawn uniformly from the rows not chosen yet.

    Cost O(N·k·n_trials·D) time (one chunked distance pass per step), O(N·n_trials) memory.
    """
    n = x.shape[0]
    k = min(k, n)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        w = np.ones(n)
    trials = (2 + int(np.log(k))) if n_trials is None else int(n_trials)
    x_sq = (x * x).sum(1) if x_sq is None else x_sq

    def dists_to(rows: np.ndarray) -> np.ndarray:
        """(n, len(rows)) squared distances, float64, in row chunks."""
        c = x[torch.as_tensor(rows)]
        c_sq = x_sq[torch.as_tensor(rows)]
        out = np.empty((n, len(rows)))
        step = rows_per_chunk(len(rows))
        for s in range(0, n, step):
            out[s : s + step] = sq_dists(x[s : s + step], c, x_sq[s : s + step], c_sq).double().cpu().numpy()
        return out

    chosen = [int(rng.choice(n, p=w / w.sum()))]
    closest = dists_to(np.array(chosen))[:, 0]
    closest[chosen[0]] = 0.0
    while len(chosen) < k:
        mass = w * closest
        total = mass.sum()
        if total <= 0:
            rest = np.setdiff1d(np.arange(n), chosen)
            chosen.extend(int(i) for i in rng.choice(rest, size=k - len(chosen), replace=False))
            break
        cdf = np.cumsum(mass)
        cand = np.minimum(np.searchsorted(cdf, rng.random(trials) * cdf[-1], side="right"), n - 1)
        new = np.minimum(closest[:, None], dists_to(cand))
        new[cand, np.arange(trials)] = 0.0  # a centre is at distance 0 from itself (the Gram trick may round)
        best = int(np.argmin((w[:, None] * new).sum(0)))
        chosen.append(int(cand[best]))
        closest = new[:, best]
    return np.asarray(chosen, dtype=np.int64)


def kmeans(
    x: np.ndarray,
    k: int,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
    max_iter: int = 10,
    tol: float = 1e-4,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """(Weighted) Lloyd k-means with greedy k-means++ seeding (``greedy_kmeanspp``) drawn from ``rng``.

    Returns (centres (k, d), labels (n,)). Empty clusters keep their previous centre.
    Stops after ``max_iter`` Lloyd steps or when no centre moves more than ``tol``
    (relative to the mean squared norm of the data). Assignments after the first are
    incremental (``reassign_moved``), with the same result as a full pass. The distance
    products and Lloyd updates run on ``device``; the random draws stay on the host (``rng``).
    """
    xt = as_tensor(x).to(device)
    n = xt.shape[0]
    k = min(k, n)
    x_sq = (xt * xt).sum(1)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        w = np.ones(n)
    seeds = greedy_kmeanspp(xt, k, rng, weights=w, x_sq=x_sq)
    centres = xt[torch.as_tensor(seeds)].clone()
    wt = torch.as_tensor(w, dtype=torch.float32).to(xt.device)
    xw = xt * wt[:, None]
    scale = float(x_sq.mean()) or 1.0
    labels, lower = nearest_two(xt, centres)
    for _ in range(max_iter):
        sums = torch.zeros_like(centres).index_add_(0, labels, xw)
        mass = torch.zeros(centres.shape[0], device=xt.device).index_add_(0, labels, wt)
        new = centres.clone()
        nz = mass > 0
        new[nz] = sums[nz] / mass[nz, None]
        shift = float(((new - centres) ** 2).sum(1).max())
        moved = (new != centres).any(1).cpu().numpy()
        centres = new
        labels, lower = reassign_moved(xt, centres, labels, lower, moved)
        if shift <= tol * scale:
            break
    return centres.cpu().numpy(), labels.cpu().numpy()


def reassign_moved(
    x: torch.Tensor,
    centres: torch.Tensor,
    labels: torch.Tensor,
    lower: torch.Tensor,
    moved: np.ndarray,
    rel_margin: float = 5e-5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-centre labels after a Lloyd update, from the previous labels, a per-row lower
    bound ``lower`` on the distance to every *other* centre (units of ``nearest_two``) and
    which centres ``moved``. Unmoved centres kept their positions, so the bound still holds
    for them; each row is compared exactly with its own centre and the moved centres, and keeps
    the best of those when that wins by more than a margin against both the runner-up and the
    bound; every other row gets a full ``nearest_two`` pass. Same labels as a full pass
    (decisions inside the margin are the full pass's own) at
    O(N·|moved|·D + |undecided rows|·K·D) instead of O(N·K·D).

    The margin is relative: ``rel_margin · (||x||² + max_j ||c_j||²)`` per row. The compared
    values ||c||² − 2x·c are float32 Gram-trick results, here (one own-centre dot product, a
    product with the moved centres) computed in another order than in the full pass (one
    product with all centres) or in the pass that left the bound, so they differ from the full
    pass's by rounding, which scales with the magnitudes of the terms, at most ||x||² + ||c||²,
    not with the distance; an absolute margin falls below it on uncentred large-norm features.
    Measured (CPU, D = 2…2048, unit, N(0, 1) and N(300, 1) features): two float32 computations of
    one value differ by at most 1.3e-6 of that scale (≈ 11 float32 eps), so a decision, which
    compares two such values, can move by 2.6e-6; 5e-5 leaves a factor of about 20 above that, and
    on unit-norm features (scale 1…2) it is 5e-5…1e-4, the absolute margin used before. A
    larger margin only sends more rows to the full pass.
    """
    mi = np.flatnonzero(moved)
    if mi.size == 0:
        return labels, lower
    n, k = x.shape[0], centres.shape[0]
    if mi.size * 4 > 3 * k:
        return nearest_two(x, centres)  # almost everything moved: the plain pass is cheaper
    labels, lower = labels.clone(), lower.clone()
    c_sq = (centres * centres).sum(1)
    c_sq_max = c_sq.max()
    mi_t = torch.as_tensor(mi, device=x.device)
    cm_t, cm_sq = centres[mi_t].T.contiguous(), c_sq[mi_t][None, :]
    slot = torch.full((k,), -1, dtype=torch.long, device=x.device)
    slot[mi_t] = torch.arange(mi.size, device=x.device)
    undecided: list[torch.Tensor] = []
    step = rows_per_chunk(mi.size + 2)
    for s in range(0, n, step):
        xr, a = x[s : s + step], labels[s : s + step]
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
        margin = rel_margin * ((xr * xr).sum(1) + c_sq_max)  # rounding scales with the terms, not the gap
        ok = (best + margin < second) & (best + margin < lower[s : s + step])
        labels[s : s + step] = torch.where(ok & ~own_best, mi_t[j1], a)
        lower[s : s + step] = torch.where(ok, torch.minimum(lower[s : s + step], second), lower[s : s + step])
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
