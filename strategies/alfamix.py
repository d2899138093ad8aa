"""ALFA-Mix: feature mixing finds samples whose prediction flips.

Paper: Parvaneh, Abbasnejad, Teney, Haffari, van den Hengel & Shi, "Active
Learning by Feature Mixing" (CVPR 2022). Reference code:
AminParvaneh/alpha_mix_active_learning ``query_strategies/alpha_mix_sampling.py``
(``query``, ``find_candidate_set``, ``calculate_optimum_alpha``, ``sample``).

What is implemented (the configuration the authors ran, README and issue #5:
``--alpha_closed_form_approx --alpha_cap 0.2``, not the argparse default 0.03125):

* anchors z*_c = mean image feature of the labelled samples of class c (true
  labels); a class with no labelled sample uses the mean of all labelled ones;
* closed-form α with ε = cap/√D: the mix moves z by ε‖z*_c − z‖ along the
  normalised gradient ĝ of CE(head(z), ŷ), i.e. z_mix = z + ε‖z*_c − z‖ ĝ;
* x is a candidate if head(z_mix) ≠ ŷ for some class anchor c; the cap grows in
  steps of 0.2 (0.2, 0.4, …, 1.0), OR-ing candidates, until there are more than B;
* k-means with min(B, |candidates|) clusters on the L2-normalised candidate
  features, and the candidate nearest each non-empty centroid;
* the shortfall is filled uniformly at random from the other unlabelled samples,
  *without* replacement (the reference's ``np.random.choice`` can duplicate).
  Round 1 is random (``needs_labels``), as the paper's "—".

Our head is the CLIP classifier on the L2-normalised image features,
head(z) = s·z·Ŵᵀ with Ŵ = ``ctx.classifier``; ŷ = argmax head(z) (equal to the
adapter's prediction for cosine classifiers) and the gradient uses the model's
probabilities ``ctx.probs``: ∇_z CE = s·(p − e_ŷ)Ŵ (s cancels after normalising).

Deviations, all for speed or robustness, none changing the candidate set beyond
float rounding: the reference's α has a ``+1e-8`` in the denominator of
``g ⊘ (z* − z)``, which we drop (the paper's Eq. has none); because head(z_mix) is
linear in t = ε‖z*_c − z‖, the per-class check is evaluated exactly through each
sample's flip threshold t* = min_{k: b_k>0} a_k / b_k, a_k = L_ŷ − L_k,
b_k = G_k − G_ŷ (L = zŴᵀ, G = ĝŴᵀ), so the whole candidate search is O(N·C)
instead of O(C·N·C·D). A sample with a zero gradient (p exactly one-hot) never
moves and is not a candidate (the reference divides by zero there). k-means is
our seeded Lloyd (greedy k-means++ init from ``ctx.rng``, the seeding of
scikit-learn's KMeans; ``kmeans_iters`` steps) instead of sklearn's unseeded KMeans.
"""

from __future__ import annotations

import numpy as np

from albench.api.errors import AlbenchError
from albench.api.options import Opt
from albench.api.strategy import RoundContext, Strategy
from albench.components.selection import device_of, kmeans, nearest_to_centres


def class_anchors(feats_lab: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean labelled feature per class; classes without labels get the overall labelled mean."""
    anchors = np.repeat(feats_lab.mean(axis=0, keepdims=True), num_classes, axis=0)
    for c in np.unique(labels):
        anchors[c] = feats_lab[labels == c].mean(axis=0)
    return anchors


def flip_thresholds(z: np.ndarray, probs: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t*, ŷ): the smallest step t along ĝ at which argmax (z + t ĝ)Wᵀ leaves ŷ (inf if never)."""
    z = np.asarray(z, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    logits = z @ w.T
    yhat = logits.argmax(axis=1)
    rows = np.arange(len(z))
    resid = np.asarray(probs, dtype=np.float64).copy()
    resid[rows, yhat] -= 1.0
    g = resid @ w  # ∝ gradient of CE(head(z), ŷ) w.r.t. z
    gn = np.linalg.norm(g, axis=1)
    moving = gn > 0
    ghat = np.zeros_like(g)
    ghat[moving] = g[moving] / gn[moving, None]
    gl = ghat @ w.T
    a = logits[rows, yhat][:, None] - logits  # >= 0
    b = gl - gl[rows, yhat][:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(b > 0, a / np.where(b > 0, b, 1.0), np.inf)
    t[rows, yhat] = np.inf
    tstar = t.min(axis=1)
    tstar[~moving] = np.inf
    return tstar, yhat


def anchor_reach(z: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """max_c ‖z*_c − z‖ per sample: the largest step the mix can take (at α-cap 1/ε)."""
    z = np.asarray(z, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)
    r2 = (z * z).sum(1)[:, None] + (anchors * anchors).sum(1)[None, :] - 2.0 * z @ anchors.T
    return np.sqrt(np.clip(r2, 0, None).max(axis=1))


def flips_at(tstar: np.ndarray, reach: np.ndarray, cap: float, dim: int) -> np.ndarray:
    """Samples whose prediction flips for some anchor at α-cap ``cap``: ε‖z*_c − z‖ > t*, ε = cap/√D."""
    eps = cap / np.sqrt(dim)
    return eps * reach > tstar


def candidate_mask(z: np.ndarray, probs: np.ndarray, w: np.ndarray, anchors: np.ndarray, cap: float) -> np.ndarray:
    """Samples whose prediction flips for some anchor at α-cap ``cap`` (closed-form α)."""
    tstar, _ = flip_thresholds(z, probs, w)
    return flips_at(tstar, anchor_reach(z, anchors), cap, np.asarray(z).shape[1])


class AlfaMix(Strategy):
    """ALFA-Mix, closed-form α with cap 0.2, k-means over the candidates."""

    name = "alfamix"
    needs_labels = True
    defaults = {"alpha_cap": 0.2, "kmeans_iters": 10}
    schema = {"alpha_cap": Opt(float, 0, 1, low_open=True), "kmeans_iters": Opt(int, 1, 10000)}

    def candidates(self, ctx: RoundContext) -> np.ndarray:
        """Positions (into ``ctx.unlabeled``) of the candidate set: the cap grows in steps of
        ``alpha_cap`` (OR-ing the flipped samples) until there are more than B or the cap reaches 1."""
        cap_step = float(self.options["alpha_cap"])
        if ctx.labeled.size == 0:
            raise AlbenchError("alfamix needs labelled samples (anchors); the harness selects round 1 at random.")
        u = ctx.unlabeled
        z = ctx.features[u]
        anchors = class_anchors(ctx.features[ctx.labeled].astype(np.float64), ctx.labels, ctx.num_classes)
        tstar, _ = flip_thresholds(z, ctx.probs[u], ctx.classifier)
        reach = anchor_reach(z, anchors)
        cand = np.zeros(len(u), dtype=bool)
        cap = 0.0
        while cap < 1.0:
            cap += cap_step
            cand |= flips_at(tstar, reach, cap, z.shape[1])
            if cand.sum() > ctx.budget:
                break
        return np.flatnonzero(cand)

    def select(self, ctx: RoundContext) -> np.ndarray:
        pos = self.candidates(ctx)
        u, B = ctx.unlabeled, ctx.budget
        picked = np.zeros(0, dtype=np.int64)
        if pos.size:
            cz = ctx.features[u[pos]]
            cz = cz / np.clip(np.linalg.norm(cz, axis=1, keepdims=True), 1e-12, None)
            centres, labels = kmeans(
                cz, min(B, pos.size), ctx.rng, max_iter=int(self.options["kmeans_iters"]), device=device_of(ctx)
            )
            picked = u[pos[nearest_to_centres(cz, centres, labels)]]
        if picked.size < B:
            ctx.note_fallback(B - picked.size, "random fill: fewer ALFA-Mix candidates than the budget")
            rest = np.setdiff1d(u, picked)
            picked = np.concatenate([picked, ctx.rng.choice(rest, size=B - picked.size, replace=False)])
        return picked[:B]
