"""Margin sampling: the B unlabelled samples with the smallest gap p_(1) - p_(2)
between the two most probable classes.

Paper: Scheffer, Decomain & Wrobel, "Active Hidden Markov Models for Information
Extraction" (IDA 2001); deep-AL baseline in Ash et al. (ICLR 2020). Reference
code: ej0cl6/deep-active-learning ``query_strategies/margin_sampling.py``.

Ties go to the lowest pool index (stable sort), so the rng is not used. The
probabilities are ``ctx.probs`` (float64 softmax of the model's logits; zero-shot
CLIP in round 1).
"""

from __future__ import annotations

import numpy as np

from albench.api.strategy import RoundContext, Strategy
from albench.components.selection import lowest_k, margin_scores


class Margin(Strategy):
    """Smallest top-1 minus top-2 probability; ties to the lowest pool index."""

    name = "margin"
    stochastic = False

    def select(self, ctx: RoundContext) -> np.ndarray:
        u = ctx.unlabeled
        return u[lowest_k(margin_scores(ctx.probs[u]), ctx.budget)]
