"""DualPrompt selection: uncertainty-driven queries and confident pseudo-label mining.

The AL strategy of Wang, Song & Xia, "Explicit Uncertainty Modeling for Active
CLIP Adaptation with Dual Prompt Tuning" (the seed paper, Sec. 3.3), built on
the dual-prompt model of ``albench_adapters.dualprompt`` (DeFT, Wei et al.,
NeurIPS 2024, github.com/HotanLee/DeFT).

Every round:

1. The dual-prompt model. If the run's adapter is ``dualprompt`` and
   ``ctx.model`` is its trained instance, that model is reused (it was trained
   on the human labels plus the pseudo-labels this strategy mined last round,
   exactly the paper's round-r model). Otherwise (round 1, or any other adapter:
   the paper's "Ours_CoOp / _VPT / _MaPLe" columns) the strategy trains its own
   fresh ``DualPrompt`` on the human labels so far plus its pseudo-labeled set:
   in round 1 the zero-shot set S_U^(0) (per class the ``K`` unlabeled samples
   *predicted* as that class by zero-shot CLIP with the highest probability),
   later the set it mined in the previous round (kept in ``ctx.state``).
2. p_clean (Eq. 3) of the predicted class for every unlabeled pool sample.
3. Query selection: per predicted class the floor(b / C) lowest-p_clean samples;
   then the rest of the budget (b mod C, plus the shortfall of classes with
   fewer candidates than floor(b / C)) by lowest p_clean over all remaining
   candidates. Ties break by pool index (stable sort), so selection is
   deterministic given the model.
4. Confident mining: per predicted class the ``k`` highest-p_clean samples among
   the unlabeled ones not just selected, labelled with their predicted class,
   offered to the adapter (``ctx.offer_pseudo_labels``) and remembered for the
   strategy's own model next round.

Defaults (the paper gives no values for K and k): ``K = k = 16`` per class, the
usual "16-shot" size of CLIP prompt learning; with 1 % of the pool per round
this gives a pseudo-labeled set of 16 C samples (about 4 pseudo-labeled batches
of 64 for 16 classes). The training options (``epochs``, ``lr``, ``vpt_tokens``,
...) are the ``dualprompt`` adapter's and are used only when the strategy
trains its own model; a reused adapter keeps the adapter's own options.
The strategy's model is seeded from the run seed (``seed_key="strategy"``), not
from ``ctx.rng``, so the selection is a deterministic function of the run seed
and round (``stochastic = False``).
"""
from __future__ import annotations

import numpy as np
import torch

from albench.api.adapter import Labeled, ZeroShotClassifier
from albench.api.errors import AlbenchError
from albench.api.options import Opt
from albench.api.strategy import RoundContext, Strategy
from albench_adapters.dualprompt import DualPrompt, clean_probability_from_logits

STATE_KEY = "dualprompt_pseudo"


def per_class_top(scores: np.ndarray, classes: np.ndarray, k: int, num_classes: int, highest: bool = True) -> np.ndarray:
    """Positions of the ``k`` highest (or lowest) ``scores`` within each class, ties by position."""
    out = []
    for c in range(num_classes):
        pos = np.flatnonzero(classes == c)
        if pos.size == 0 or k <= 0:
            continue
        key = -scores[pos] if highest else scores[pos]
        out.append(pos[np.argsort(key, kind="stable")[:k]])
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def quota_select(p_clean: np.ndarray, pred: np.ndarray, budget: int, num_classes: int) -> np.ndarray:
    """Positions to query: floor(b/C) lowest p_clean per predicted class, the rest lowest overall."""
    p_clean, pred = np.asarray(p_clean, dtype=np.float64), np.asarray(pred)
    if budget > p_clean.size:
        raise AlbenchError(f"dualprompt: budget {budget} exceeds the {p_clean.size} unlabeled candidates.")
    quota = budget // num_classes
    first = per_class_top(p_clean, pred, quota, num_classes, highest=False)
    rest_mask = np.ones(p_clean.size, dtype=bool)
    rest_mask[first] = False
    rest = np.flatnonzero(rest_mask)
    extra = rest[np.argsort(p_clean[rest], kind="stable")[:budget - first.size]]
    return np.concatenate([first, extra]).astype(np.int64)


def zero_shot_pseudo(probs: np.ndarray, candidates: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """S_U^(0): per zero-shot-predicted class the K most probable candidates (pool indices, labels)."""
    p = probs[candidates]
    pred = p.argmax(1)
    conf = p[np.arange(len(candidates)), pred]
    pos = per_class_top(conf, pred, K, probs.shape[1], highest=True)
    return candidates[pos], pred[pos]


class DualPromptStrategy(Strategy):
    """The seed paper's strategy: lowest-p_clean queries per class, highest-p_clean pseudo-labels."""

    name = "dualprompt"
    needs_labels = False
    stochastic = False
    defaults = {"K": 16, "k": 16, **DualPrompt.defaults}
    schema = {"K": Opt(int, 1, 100_000), "k": Opt(int, 0, 100_000), **DualPrompt.schema}

    def __init__(self, **options):
        super().__init__(**options)
        for key in ("K", "k"):
            v = self.options[key]
            if not isinstance(v, int) or v < 0:
                raise AlbenchError(f"dualprompt: option {key}={v!r} must be an integer >= 0 (per-class count).")
        self.model_options = {k: v for k, v in self.options.items() if k in DualPrompt.defaults}

    def _zero_shot_probs(self, ctx: RoundContext) -> np.ndarray:
        if isinstance(ctx.model, ZeroShotClassifier):
            return ctx.probs
        logits = ZeroShotClassifier(ctx.env).predict_logits("pool").double()
        return torch.softmax(logits, 1).numpy()

    def _model(self, ctx: RoundContext) -> tuple[DualPrompt, str]:
        m = ctx.model
        if isinstance(m, DualPrompt) and m.fitted:
            return m, "reused the run's dualprompt adapter"
        if ctx.env is None:
            raise AlbenchError("dualprompt strategy needs ctx.env (backbone, task, data bank) to train its model.")
        pseudo = ctx.state.get(STATE_KEY)
        if pseudo is None:
            pseudo = zero_shot_pseudo(self._zero_shot_probs(ctx), ctx.unlabeled, self.options["K"])
            source = f"zero-shot top-{self.options['K']} per class"
        else:
            source = "pseudo-labels mined last round"
        model = DualPrompt(ctx.env, seed_key="strategy", **self.model_options)
        model.fit(Labeled(ctx.labeled, ctx.labels), Labeled(*pseudo))
        return model, f"trained its own model on {ctx.labeled.size} labels + {source}"

    def select(self, ctx: RoundContext) -> np.ndarray:
        model, how = self._model(ctx)
        unl = ctx.unlabeled
        pos, neg = model.dual_logits("pool", unl)
        pred_t = pos.argmax(1)
        p_clean = clean_probability_from_logits(pos, neg, pred_t).double().numpy()
        pred = pred_t.numpy()
        picked_pos = quota_select(p_clean, pred, ctx.budget, ctx.num_classes)
        rest = np.ones(unl.size, dtype=bool)
        rest[picked_pos] = False
        rest_pos = np.flatnonzero(rest)
        mined_pos = rest_pos[per_class_top(p_clean[rest_pos], pred[rest_pos], self.options["k"], ctx.num_classes)]
        mined = (unl[mined_pos], pred[mined_pos].astype(np.int64))
        ctx.state[STATE_KEY] = mined
        ctx.state["dualprompt_last"] = {"model": how, "pseudo_labeled": int(mined[0].size),
                                        "mean_p_clean": float(p_clean.mean()) if p_clean.size else None}
        ctx.offer_pseudo_labels(*mined)
        return unl[picked_pos]
