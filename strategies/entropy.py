"""Entropy sampling: the B unlabelled samples with the highest predictive entropy.

Paper: C. E. Shannon's entropy used as an acquisition score, as in Settles,
"Active Learning Literature Survey" (2009) and the deep-AL baselines of
Ash et al., "Deep Batch Active Learning by Diverse, Uncertain Gradient Lower
Bounds" (ICLR 2020). Reference code: ej0cl6/deep-active-learning
``query_strategies/entropy_sampling.py`` (identical in JordanAsh/badge and
AminParvaneh/alpha_mix_active_learning); kaist-dmlab/pcb ``entropy.py``.

Differences from the references, on purpose:

* the entropy is computed from the logits with ``log_softmax`` so a class whose
  probability underflows to 0 contributes exactly 0; the references compute
  ``p * log(p)``, which gives NaN there and sorts the sample last, so it can never
  be chosen (PCB adds 1e-6 inside the log instead);
* ties are broken by the lowest pool index (stable sort), so the selection does
  not depend on the rng; the references use an unstable sort.

Round 1 scores the zero-shot CLIP predictions (the harness passes zero-shot CLIP
as the model before any adapter is trained).
"""

from __future__ import annotations

import numpy as np

from albench.api.strategy import RoundContext, Strategy
from albench.components.selection import entropy_from_logits, lowest_k


class Entropy(Strategy):
    """Max predictive entropy H(p) = -sum_c p_c log p_c; ties to the lowest pool index."""

    name = "entropy"
    stochastic = False

    def scores(self, ctx: RoundContext) -> np.ndarray:
        """Entropy of every unlabelled sample (aligned with ``ctx.unlabeled``)."""
        return entropy_from_logits(ctx.logits[ctx.unlabeled])

    def select(self, ctx: RoundContext) -> np.ndarray:
        u = ctx.unlabeled
        return u[lowest_k(-self.scores(ctx), ctx.budget)]
