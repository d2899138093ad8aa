"""Random sampling: the baseline every AL paper reports."""

from __future__ import annotations

import numpy as np

from albench.api.strategy import RoundContext, Strategy


class RandomStrategy(Strategy):
    """Uniformly random unlabeled pool samples, drawn from the round's seeded rng."""

    name = "random"

    def select(self, ctx: RoundContext) -> np.ndarray:
        return ctx.rng.choice(ctx.unlabeled, size=ctx.budget, replace=False)
