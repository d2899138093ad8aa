"""ProbCover: greedy maximum coverage of δ-balls (cold start, no model needed).

Paper: Yehuda, Dekel, Hacohen & Weinshall, "Active Learning Through a Covering
Lens" (NeurIPS 2022). Reference code: avihu111/TypiClust
``deep-al/pycls/al/prob_cover.py``.

As in the reference: a directed graph with an edge x→y whenever
‖f_x − f_y‖ < δ (self-loops included) on L2-normalised image features of the
labelled + unlabelled pool; everything within δ of a labelled sample is
covered; B times, pick the sample with the most edges into uncovered samples
(ties to the lowest index, the reference's ``argmax``) and cover its ball.
δ = ``delta`` (0.6, the reference's ``initial_delta``).

Differences: the reference's batched distance loop ``range(N // 500)`` skips the
last partial batch; ours covers every sample. When everything is covered the
reference's argmax returns sample 0 (possibly labelled); ours fills the rest
uniformly at random from the unpicked unlabelled samples (the only use of
``ctx.rng``, hence ``stochastic = False``). Memory is O(edges); the graph is
built in row chunks (each unordered pair tested once) and refused (with the
edge count) above ``max_edges``. Time is inherently O(N²·D) for the exact ball
search, like the reference (about N²·D multiply-adds after the symmetry halving:
~1 min at N = 100k on one core), so it is superlinear by design; memory is
O(N·D + edges + one block), never N×N.
"""

from __future__ import annotations

import numpy as np
import torch

from albench.api.errors import AlbenchError
from albench.api.options import Opt
from albench.api.strategy import RoundContext, Strategy
from albench.components.selection import as_tensor, rows_per_chunk


def delta_graph(x: np.ndarray, delta: float, max_edges: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, indices) of {(i, j): ||x_i - x_j|| < delta} (self-loops included).

    Each unordered pair is tested once (row block i against columns j >= the block's first row,
    the strictly-lower part of the diagonal block masked), so the graph is exactly symmetric
    and the O(N²·D) distance work is halved; the test ||x_i||² − 2 x_i·x_j + ||x_j||² < δ² is
    one fused ``addmm`` and a comparison per block. Memory: one block (``CHUNK_ELEMS`` entries)
    plus O(edges); raises once more than ``max_edges`` directed edges are found.
    """
    import scipy.sparse

    xt = as_tensor(x)
    n = xt.shape[0]
    x_sq = (xt * xt).sum(1)
    thr = float(delta) * float(delta)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    total = 0
    s = 0
    while s < n:
        e = min(n, s + rows_per_chunk(n - s))
        w = n - s
        g = torch.addmm(x_sq[None, s:], xt[s:e], xt[s:].T, alpha=-2.0)  # ||x_j||² − 2 x_i·x_j, j ≥ s
        mask = (g < (thr - x_sq[s:e])[:, None]).numpy()
        mask[:, : e - s] &= np.triu(np.ones((e - s, e - s), dtype=bool))  # pairs with j >= i only
        flat = np.flatnonzero(mask.ravel())
        r, c = np.divmod(flat, w)
        rows.append((r + s).astype(np.int32))
        cols.append((c + s).astype(np.int32))
        total += 2 * flat.size - int(np.count_nonzero(r + s == c + s))
        if total > max_edges:
            raise AlbenchError(
                f"probcover: delta={delta} gives more than {max_edges:,} edges on {n:,} samples; "
                f"use a smaller delta or raise max_edges."
            )
        s = e
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int32)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int32)
    off = r != c
    rr, cc = np.concatenate([r, c[off]]), np.concatenate([c, r[off]])  # both directions, self-loops once
    g = scipy.sparse.csr_matrix((np.ones(rr.size, dtype=np.int8), (rr, cc)), shape=(n, n))
    return g.indptr.astype(np.int64), g.indices.astype(np.int32)


class ProbCover(Strategy):
    """Greedy max coverage of delta-balls in image-feature space."""

    name = "probcover"
    stochastic = False
    defaults = {"delta": 0.6, "max_edges": 200_000_000}
    schema = {"delta": Opt(float, 0, None, low_open=True), "max_edges": Opt(int, 1, None)}

    def select(self, ctx: RoundContext) -> np.ndarray:
        delta = float(self.options["delta"])
        u, B = ctx.unlabeled, ctx.budget
        lab = np.unique(ctx.labeled)
        rel = np.concatenate([lab, u])
        indptr, nbr = delta_graph(ctx.features[rel], delta, int(self.options["max_edges"]))
        n = len(rel)
        src = np.repeat(np.arange(n), np.diff(indptr))
        covered = np.zeros(n, dtype=bool)

        def cover(nodes: np.ndarray) -> np.ndarray:
            """Mark the balls of ``nodes`` covered; return newly covered nodes."""
            if nodes.size == 0:
                return nodes
            balls = np.concatenate([nbr[indptr[i] : indptr[i + 1]] for i in nodes]).astype(np.int64)
            new = np.unique(balls[~covered[balls]])
            covered[new] = True
            return new

        cover(np.arange(len(lab)))
        # degree = edges into uncovered nodes; the graph is symmetric, so in-edges of y = ball(y)
        degree = np.bincount(src[~covered[nbr]], minlength=n).astype(np.int64)
        picked: list[int] = []
        while len(picked) < B:
            cur = int(np.argmax(degree))
            if degree[cur] <= 0:
                break
            new = cover(np.array([cur]))
            if new.size:
                into = np.concatenate([nbr[indptr[y] : indptr[y + 1]] for y in new]).astype(np.int64)
                np.subtract.at(degree, into, 1)
            picked.append(cur)  # its ball is now covered, so its degree is 0 and it is never picked again
        out = rel[np.asarray(picked, dtype=np.int64)]
        if out.size < B:
            ctx.note_fallback(B - out.size, "random fill: coverage exhausted before the budget")
            rest = np.setdiff1d(u, out)
            out = np.concatenate([out, ctx.rng.choice(rest, size=B - out.size, replace=False)])
        return out
