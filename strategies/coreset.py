"""CoreSet: greedy k-center on L2-normalised image features.

Paper: Sener & Savarese, "Active Learning for Convolutional Neural Networks: A
Core-Set Approach" (ICLR 2018). Reference code: JordanAsh/badge and
AminParvaneh/alpha_mix_active_learning ``query_strategies/core_set.py``
(``furthest_first``); ej0cl6/deep-active-learning ``kcenter_greedy.py``;
google/active-learning ``sampling_methods/kcenter_greedy.py``.

Algorithm (as ``furthest_first``): every unlabelled sample keeps its Euclidean
distance to the nearest labelled sample; B times, pick the sample with the
largest such distance (ties to the lowest pool index, as numpy ``argmax``) and
make it a centre. The labelled set is the initial set of centres; round 1 (no
labels) is random (``needs_labels``), as the paper's protocol prints "—".

Scale: no N×N or N×L matrix is held (chunked distances), and the greedy loop
uses exact deferred updates (see ``albench.components.selection.kcenter``): the pick sequence
is identical to the naive loop, which tests/test_strategies.py checks. The
robust (MIP) variant of the paper is not implemented (the references dropped it
too: it needs a commercial solver).
"""

from __future__ import annotations

import numpy as np

from albench.api.strategy import RoundContext, Strategy
from albench.components.selection import device_of, kcenter_greedy


class CoreSet(Strategy):
    """k-center greedy on L2-normalised image features, labelled set as initial centres."""

    name = "coreset"
    needs_labels = True
    stochastic = False

    def select(self, ctx: RoundContext) -> np.ndarray:
        feats = ctx.features
        return kcenter_greedy(
            feats, np.unique(ctx.labeled), ctx.budget, candidates=ctx.unlabeled, device=device_of(ctx)
        )
