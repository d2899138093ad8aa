"""Least-confidence sampling: the B unlabelled samples whose most probable class
has the lowest probability, max_c p_c.

Paper: Lewis & Gale, "A Sequential Algorithm for Training Text Classifiers"
(SIGIR 1994); Settles (2009). Reference code: ej0cl6/deep-active-learning
``query_strategies/least_confidence.py``.

Ties go to the lowest pool index (stable sort), so the rng is not used.
"""

from __future__ import annotations

import numpy as np

from albench.api.strategy import RoundContext, Strategy
from albench.components.selection import least_confidence_scores, lowest_k


class LeastConfidence(Strategy):
    """Smallest max-probability; ties to the lowest pool index."""

    name = "least-confidence"
    stochastic = False

    def select(self, ctx: RoundContext) -> np.ndarray:
        u = ctx.unlabeled
        return u[lowest_k(least_confidence_scores(ctx.probs[u]), ctx.budget)]
