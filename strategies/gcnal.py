"""Sequential GCN active learning: UncertainGCN (default) and CoreGCN.

Paper: Caramalau, Bhattarai & Kim, "Sequential Graph Convolutional Network for
Active Learning" (CVPR 2021). Reference code:
razvancaramalau/Sequential-GCN-for-Active-Learning ``selection_methods.py``
(``aff_to_adj``, ``BCEAdjLoss``, ``query_samples``), ``models/query_models.py``
(``GCN``), ``main.py``, ``config.py``.

As in the reference: nodes are all labelled samples plus a random subset of
``subset`` (10,000) unlabelled samples, with L2-normalised image features; the
adjacency is

    S = F Fᵀ,  A = S − I,  d = column sums of A,  Â = A · diag(1/d) + I;

a 2-layer GCN ``σ(Â (ReLU(Â X W₁ + b₁) ⊙ dropout 0.3) W₃ + b₃)`` (hidden 128,
weights U(±1/√out)); loss ``−mean_L log s − λ·mean_U log(1 − s)`` with λ = 1.2;
200 full-batch Adam steps (lr 1e-3, weight decay 5e-4); a fresh GCN every round.
UncertainGCN picks the B subset nodes whose score s is closest to the margin
0.1; CoreGCN runs k-center greedy over the subset with the labelled nodes as
initial centres (see below for the space). Round 1 is random (``needs_labels``).

Scale: Â is never materialised. Because Â·Y = F(Fᵀ(Y/d)) − Y/d + Y and
d_j = f_j·Σ_i f_i − 1, every product with Â costs O(M·D·h) time and O(M·D)
memory instead of the reference's dense M×M matrix, with the same values
(``gcn_adjacency`` builds the dense one for tests). That makes ``subset=0`` (the
whole unlabelled pool) feasible too. The first layer's Â·X does not change during
training, so it is computed once per round and each step's first layer is the
single product (ÂX)·W₁ = Â·(X·W₁) (same values up to float rounding): a training
step costs about 2·M·D·h multiply-adds (forward and W₁-gradient) instead of 6, and
selection time is roughly constant in N once N·1 % ≪ ``subset``.

Documented choices: ``log σ`` is computed as ``logsigmoid`` (the reference's
``log(sigmoid(x))`` is −inf when the sigmoid saturates); a column whose degree
d_j ≤ 1e-6 (impossible for CLIP features, whose pairwise cosines are positive;
the reference would divide by it) is clamped to 1e-6. CoreGCN's k-center space
(``coregcn_space``) defaults to ``hidden-score``, the reference's: the eval-mode
hidden layer (128-d) concatenated with the GCN's output before the sigmoid
(129 dimensions; ``GCN.forward``'s third output at bbc43db6, which
``query_samples`` hands to ``kCenterGreedy``). ``hidden`` (the hidden layer
alone, as the paper's text describes) and ``input`` (the image features, what an
earlier reference commit 2900cdb used) are available. The subset and the GCN
initialisation come from ``ctx.rng``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from scipy.special import expit

from albench.api.errors import AlbenchError
from albench.api.options import Opt
from albench.api.strategy import RoundContext, Strategy
from albench.components.selection import device_of, kcenter_greedy, lowest_k

METHODS = ("uncertain", "core")
SPACES = ("hidden-score", "hidden", "input")


def gcn_adjacency(feats: np.ndarray) -> np.ndarray:
    """The reference's dense normalised adjacency (tests and tiny graphs only: O(M²))."""
    f = np.asarray(feats, dtype=np.float64)
    a = f @ f.T - np.eye(len(f))
    d = np.clip(a.sum(axis=0), 1e-6, None)
    return a / d[None, :] + np.eye(len(f))


class LowRankAdjacency:
    """Â = (F Fᵀ − I) diag(1/d) + I applied as Â·Y without forming it."""

    def __init__(self, feats: torch.Tensor):
        self.f = feats
        self.d = (feats @ feats.sum(0) - 1.0).clamp_min(1e-6)

    def __matmul__(self, y: torch.Tensor) -> torch.Tensor:
        ys = y / self.d[:, None]
        return self.f @ (self.f.T @ ys) - ys + y


class _GCN(torch.nn.Module):
    def __init__(self, nfeat: int, nhid: int, dropout: float, gen: torch.Generator):
        super().__init__()
        s1, s3 = 1.0 / math.sqrt(nhid), 1.0
        dev = gen.device  # parameters live where the generator draws (the run's device)
        self.w1 = torch.nn.Parameter(torch.empty(nfeat, nhid, device=dev).uniform_(-s1, s1, generator=gen))
        self.b1 = torch.nn.Parameter(torch.empty(nhid, device=dev).uniform_(-s1, s1, generator=gen))
        self.w3 = torch.nn.Parameter(torch.empty(nhid, 1, device=dev).uniform_(-s3, s3, generator=gen))
        self.b3 = torch.nn.Parameter(torch.empty(1, device=dev).uniform_(-s3, s3, generator=gen))
        self.dropout = dropout

    def forward(self, ax, adj, gen: torch.Generator | None = None):
        """``ax`` = Â·X, fixed for the round: Â(XW₁) = (ÂX)W₁, so the first layer is one product."""
        h = torch.relu(ax @ self.w1 + self.b1)
        if self.training and self.dropout > 0:
            keep = torch.rand(h.shape, generator=gen, device=h.device) >= self.dropout
            h = h * keep / (1.0 - self.dropout)
        return adj @ (h @ self.w3) + self.b3, h  # logit of s, hidden features


def bce_adj_loss(logit: torch.Tensor, n_unlab: int, lam: float) -> torch.Tensor:
    """−mean_L log s − λ mean_U log(1 − s); unlabelled nodes first, labelled last."""
    lu, ll = logit[:n_unlab], logit[n_unlab:]
    return -torch.nn.functional.logsigmoid(ll).mean() - lam * torch.nn.functional.logsigmoid(-lu).mean()


def uncertain_picks(scores: np.ndarray, margin: float, budget: int) -> np.ndarray:
    """UncertainGCN: positions of the ``budget`` scores closest to ``margin`` (closest first, ties
    to the lowest position) — the reference's ``argsort(−|s − margin|)`` read from its end."""
    return lowest_k(np.abs(np.asarray(scores, dtype=np.float64) - margin), budget)


def coregcn_space(space: str, hidden: np.ndarray, logit: np.ndarray, feats: np.ndarray) -> np.ndarray:
    """The rows k-center greedy runs on for CoreGCN (see the module docstring)."""
    if space == "hidden-score":
        return np.concatenate([hidden, np.asarray(logit).reshape(len(hidden), -1)], axis=1)
    if space == "hidden":
        return hidden
    if space == "input":
        return feats
    raise AlbenchError(f"gcnal: coregcn_space='{space}' is not one of {', '.join(SPACES)}.")


@dataclasses.dataclass
class GCNFit:
    """One round's trained GCN on its nodes: ``sub`` (the unlabelled subset, pool indices) first,
    then the labelled nodes; per node the output logit, the hidden layer and the input features."""

    sub: np.ndarray
    logit: np.ndarray
    hidden: np.ndarray
    feats: np.ndarray


class GCNAL(Strategy):
    """Sequential GCN (UncertainGCN by default; method=core for CoreGCN)."""

    name = "gcnal"
    needs_labels = True
    defaults = {
        "method": "uncertain",
        "subset": 10000,
        "hidden": 128,
        "dropout": 0.3,
        "lambda_loss": 1.2,
        "steps": 200,
        "lr": 1e-3,
        "weight_decay": 5e-4,
        "s_margin": 0.1,
        "coregcn_space": "hidden-score",
    }
    schema = {
        "method": Opt(str, choices=METHODS),
        "subset": Opt(int, 0, None),
        "hidden": Opt(int, 1, 65536),
        "dropout": Opt(float, 0, 1, high_open=True),
        "lambda_loss": Opt(float, 0, None),
        "steps": Opt(int, 1, 100_000),
        "lr": Opt(float, 0, None, low_open=True),
        "weight_decay": Opt(float, 0, None),
        "s_margin": Opt(float, 0, None),
        "coregcn_space": Opt(str, choices=SPACES),
    }

    def fit(self, ctx: RoundContext) -> GCNFit:
        """Draw the subset, build the graph and train a fresh GCN (all randomness from ``ctx.rng``)."""
        o = self.options
        if ctx.labeled.size == 0:
            raise AlbenchError("gcnal needs labelled samples; the harness selects round 1 at random.")
        u, B = ctx.unlabeled, ctx.budget
        m = len(u) if o["subset"] == 0 else min(len(u), max(int(o["subset"]), B))
        sub = ctx.rng.choice(u, size=m, replace=False)
        lab = np.unique(ctx.labeled)
        nodes = np.concatenate([sub, lab])  # unlabelled first, as the reference
        device = device_of(ctx)  # train on the run's device: a GPU worker does not wait on one CPU core
        feats = torch.nn.functional.normalize(
            torch.from_numpy(np.ascontiguousarray(ctx.features[nodes])).float().to(device), dim=1
        )
        adj = LowRankAdjacency(feats)
        gen = torch.Generator(device=device).manual_seed(int(ctx.rng.integers(2**63 - 1)))
        gcn = _GCN(feats.shape[1], int(o["hidden"]), float(o["dropout"]), gen)
        opt = torch.optim.Adam(gcn.parameters(), lr=float(o["lr"]), weight_decay=float(o["weight_decay"]))
        with torch.no_grad():
            ax = adj @ feats  # Â·X once per round (X = F, the adjacency's own factor)
        gcn.train()
        for _ in range(int(o["steps"])):
            opt.zero_grad()
            logit, _ = gcn(ax, adj, gen)
            loss = bce_adj_loss(logit[:, 0], m, float(o["lambda_loss"]))
            loss.backward()
            opt.step()
        gcn.eval()
        with torch.no_grad():
            logit, hidden = gcn(ax, adj)
        return GCNFit(sub, logit[:, 0].double().cpu().numpy(), hidden.cpu().numpy(), feats.cpu().numpy())

    def select(self, ctx: RoundContext) -> np.ndarray:
        o, B = self.options, ctx.budget
        fit = self.fit(ctx)
        m = len(fit.sub)
        if o["method"] == "uncertain":
            s = expit(fit.logit[:m])  # σ(logit), the node's "labelled" confidence
            return fit.sub[uncertain_picks(s, float(o["s_margin"]), B)]
        space = coregcn_space(o["coregcn_space"], fit.hidden, fit.logit, fit.feats)
        pos = kcenter_greedy(space, np.arange(m, len(space)), B, candidates=np.arange(m), device=device_of(ctx))
        return fit.sub[pos]
