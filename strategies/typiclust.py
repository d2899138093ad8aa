"""TypiClust: typical samples from uncovered clusters (cold start, no model needed).

Paper: Hacohen, Dekel & Weinshall, "Active Learning on a Budget: Opposite
Strategies Suit High and Low Budgets" (ICML 2022). Reference code:
avihu111/TypiClust ``deep-al/pycls/al/typiclust.py``.

As in the reference: cluster labelled + unlabelled features into
K = min(|L| + B, 500) clusters; drop clusters of
≤ 5 samples; order clusters by (labelled count ascending, size descending) and
visit them round-robin; from the visited cluster take the unlabelled, not yet
picked sample of highest typicality 1 / (mean squared-L2 distance to its k
nearest neighbours within the cluster's remaining unlabelled samples + 1e-5),
k = min(20, cluster size // 2) (squared distances, as faiss ``IndexFlatL2``).

Features: the current model's L2-normalised CLIP image features (the reference
uses self-supervised SimCLR/DINO features; frozen CLIP plays that role here).
Differences: clustering is our seeded k-means (greedy k-means++ init from
``ctx.rng``, ``kmeans_iters`` = 10 Lloyd steps) instead of the reference's
unseeded sklearn ``KMeans`` (K ≤ 50) / ``MiniBatchKMeans`` (batch 5000), which was
too slow on 2 CPU cores at N = 100k; a cluster with no unlabelled sample left is skipped (the reference
would crash), k is at least 1, and if every cluster is exhausted or dropped the
rest is filled uniformly at random.

Cost: k-means O(iters·N·K·D) with K ≤ 500; each pick's typicality is an exact
kNN inside one cluster, O(|cluster|²·D) time in row chunks (memory O(chunk·|cluster|)).
"""

from __future__ import annotations

import numpy as np
import torch

from albench.api.options import Opt
from albench.api.strategy import RoundContext, Strategy
from albench.components.selection import as_tensor, device_of, kmeans, rows_per_chunk, sq_dists


def typicality(x: np.ndarray, k: int) -> np.ndarray:
    """1 / (mean squared distance to the k nearest other rows + 1e-5), in row chunks
    (memory O(chunk·n), never n×n for a large cluster)."""
    n = len(x)
    if n == 1:
        return np.ones(1)
    k = max(1, min(k, n - 1))
    xt = as_tensor(x)
    x_sq = (xt * xt).sum(1)
    mean = np.empty(n)
    step = rows_per_chunk(n)
    for s in range(0, n, step):
        e = min(n, s + step)
        d = sq_dists(xt[s:e], xt, x_sq[s:e], x_sq)
        d[torch.arange(e - s), torch.arange(s, e)] = float("inf")  # not its own neighbour
        mean[s:e] = torch.topk(d, k, dim=1, largest=False)[0].double().mean(1).numpy()
    return 1.0 / (mean + 1e-5)


class TypiClust(Strategy):
    """Most typical unlabelled sample of each least-covered cluster, round-robin."""

    name = "typiclust"
    defaults = {"max_clusters": 500, "min_cluster_size": 5, "k_nn": 20, "kmeans_iters": 10}
    schema = {
        "max_clusters": Opt(int, 1, 1_000_000),
        "min_cluster_size": Opt(int, 1, None),
        "k_nn": Opt(int, 1, 10000),
        "kmeans_iters": Opt(int, 1, 10000),
    }

    def select(self, ctx: RoundContext) -> np.ndarray:
        o = self.options
        u, B = ctx.unlabeled, ctx.budget
        lab = np.unique(ctx.labeled)
        rel = np.concatenate([lab, u])
        feats = ctx.features[rel].astype(np.float32)
        k = max(1, min(len(lab) + B, int(o["max_clusters"]), len(rel)))
        _, labels = kmeans(feats, k, ctx.rng, max_iter=int(o["kmeans_iters"]), device=device_of(ctx))
        labels = labels.astype(np.int64)
        sizes = np.bincount(labels, minlength=k)
        lab_counts = np.bincount(labels[: len(lab)], minlength=k)
        keep = np.flatnonzero(sizes > int(o["min_cluster_size"]))
        order = keep[np.lexsort((keep, -sizes[keep], lab_counts[keep]))]
        avail = labels.copy()
        avail[: len(lab)] = -1
        picked: list[int] = []
        active = list(order)
        i = 0
        while len(picked) < B and active:
            c = active[i % len(active)]
            members = np.flatnonzero(avail == c)
            if members.size == 0:
                active.remove(c)
                continue
            t = typicality(feats[members], min(int(o["k_nn"]), members.size // 2))
            j = int(members[int(np.argmax(t))])
            picked.append(j)
            avail[j] = -1
            i += 1
        out = rel[np.asarray(picked, dtype=np.int64)]
        if out.size < B:
            ctx.note_fallback(B - out.size, "random fill: fewer usable clusters than the budget")
            rest = np.setdiff1d(u, out)
            out = np.concatenate([out, ctx.rng.choice(rest, size=B - out.size, replace=False)])
        return out
