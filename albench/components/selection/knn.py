"""k nearest neighbours: exact in row chunks, or an inverted-file approximation
(as faiss ``IndexIVFFlat``) for large pools, completed exactly where it falls short.
"""

from __future__ import annotations

import numpy as np
import torch

from .distances import as_tensor, rows_per_chunk, sq_dists
from .kmeans import kmeans


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
        r = torch.as_tensor(rows[s : s + step])
        d = sq_dists(xt[r], xt, x_sq[r], x_sq)
        d[torch.arange(r.numel()), r] = float("inf")  # not its own neighbour
        v, i = torch.topk(d, k, dim=1, largest=False)
        dist[s : s + step], idx[s : s + step] = v.numpy(), i.numpy()
    return dist, idx


def knn_ivf(
    x: np.ndarray, k: int, rng: np.random.Generator, n_cells: int | None = None, n_probe: int = 8
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
        d = sq_dists(xt[s : s + step], ct, x_sq[s : s + step])
        probe[s : s + step] = torch.topk(d, n_probe, dim=1, largest=False)[1].numpy()
    cell = probe[:, 0]
    member_order = np.argsort(cell, kind="stable")  # rows grouped by own cell, ascending within a cell
    member_ptr = np.concatenate([[0], np.cumsum(np.bincount(cell, minlength=n_cells))])
    flat_order = np.argsort(probe.ravel(), kind="stable")  # (row, slot) pairs grouped by probed cell
    query_ptr = np.concatenate([[0], np.cumsum(np.bincount(probe.ravel(), minlength=n_cells))])
    # the k best of each probed cell land in their own slot; one final top-k merges the slots
    cand_d = torch.full((n, n_probe * k), float("inf"))
    cand_i = torch.full((n, n_probe * k), -1, dtype=torch.long)
    for c in range(n_cells):
        m = member_order[member_ptr[c] : member_ptr[c + 1]]
        fq = flat_order[query_ptr[c] : query_ptr[c + 1]]
        if m.size == 0 or fq.size == 0:
            continue
        mt = torch.as_tensor(m)
        xm_t = xt[mt].T.contiguous()
        xm_sq = x_sq[mt][None, :]
        kk = min(k, m.size)
        qstep = rows_per_chunk(m.size)
        for s in range(0, fq.size, qstep):
            q, slot = np.divmod(fq[s : s + qstep], n_probe)
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


def knn(
    x: np.ndarray, k: int, rng: np.random.Generator, exact_max: int = 20000, n_probe: int = 8
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
