"""DualPrompt selection: uncertainty-driven queries and confident pseudo-label mining.

The AL strategy of Wang, Song & Xia, "Explicit Uncertainty Modeling for Active
CLIP Adaptation with Dual Prompt Tuning" (the seed paper, Sec. 3.3), built on
the dual-prompt model of ``albench_adapters.dualprompt`` (DeFT, Wei et al.,
NeurIPS 2024, github.com/HotanLee/DeFT).

Every round:

1. The dual-prompt model. If ``ctx.model`` is a trained dual-prompt model
   (``albench.api.capabilities.DualPromptCapable``; with the ``dualprompt``
   adapter it is last round's adapter, trained on the human labels plus the
   pseudo-labels this strategy mined, exactly the paper's round-r model), it is
   reused. Otherwise (round 1, or any other adapter: the paper's "Ours_CoOp /
   _VPT / _MaPLe" columns) the strategy trains its own fresh model of the
   registered ``dualprompt`` adapter on the human labels so far plus its
   pseudo-labeled set: in round 1 the zero-shot set S_U^(0) (per class the
   ``K`` unlabeled samples *predicted* as that class by zero-shot CLIP with the
   highest probability), later the set it mined in the previous round (kept in
   ``ctx.state``). When the run's adapter is ``dualprompt`` ("Ours"), that model
   takes the adapter's options, so rounds 1 and 2..R select with the same model;
   otherwise the strategy's own model options apply.
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
trains its own model next to another adapter; with the ``dualprompt`` adapter
its model uses the adapter's options (strategy-side model options that differ
are ignored and named in the round's ``diagnostics.selection.model``).
The strategy never imports the adapter: it tests models for the capability and
gets the adapter class from the plugin registry.
The strategy's model is seeded from the run seed (``seed_key="strategy"``), not
from ``ctx.rng``, so the selection is a deterministic function of the run seed
and round (``stochastic = False``).
"""

from __future__ import annotations

import numpy as np
import torch

from albench.api.adapter import Labeled, ZeroShotClassifier
from albench.api.capabilities import DualPromptCapable, clean_probability_from_logits
from albench.api.errors import AlbenchError
from albench.api.options import Opt
from albench.api.plugins import ADAPTERS
from albench.api.strategy import RoundContext, Strategy

STATE_KEY = "dualprompt_pseudo"
MODEL_ADAPTER = "dualprompt"  # the registered adapter whose model the strategy trains when it needs its own


def _model_class():
    return ADAPTERS.get(MODEL_ADAPTER)


def per_class_top(
    scores: np.ndarray, classes: np.ndarray, k: int, num_classes: int, highest: bool = True
) -> np.ndarray:
    """Positions of the ``k`` highest (or lowest) ``scores`` within each class, ties by position."""
    out = []
    for c in range(num_classes):
        pos = np.flatnonzero(classes == c)
        if pos.size == 0 or k <= 0:
            continue
        key = -scores[pos] if highest else scores[pos]
        out.append(pos[np.argsort(key, kind="stable")[:k]])
    return np.sort(np.concatenate(out)) if out else np.zeros(0, dtype=np.int64)


def quota_select(p_clean: np.ndarray, pred: np.ndarray, budget: int, num_classes: int) -> tuple[np.ndarray, int]:
    """Positions to query: floor(b/C) lowest p_clean per predicted class, the rest lowest overall.

    Also returns how many picks filled the shortfall of classes with fewer than
    floor(b/C) candidates (the fallback; the b mod C remainder is by design).
    """
    p_clean, pred = np.asarray(p_clean, dtype=np.float64), np.asarray(pred)
    if budget > p_clean.size:
        raise AlbenchError(f"dualprompt: budget {budget} exceeds the {p_clean.size} unlabeled candidates.")
    quota = budget // num_classes
    first = per_class_top(p_clean, pred, quota, num_classes, highest=False)
    rest_mask = np.ones(p_clean.size, dtype=bool)
    rest_mask[first] = False
    rest = np.flatnonzero(rest_mask)
    extra = rest[np.argsort(p_clean[rest], kind="stable")[: budget - first.size]]
    return np.concatenate([first, extra]).astype(np.int64), quota * num_classes - first.size


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
    defaults = {"K": 16, "k": 16, **_model_class().defaults}
    schema = {"K": Opt(int, 1, 100_000), "k": Opt(int, 0, 100_000), **getattr(_model_class(), "schema", {})}

    def __init__(self, **options):
        super().__init__(**options)
        for key in ("K", "k"):
            v = self.options[key]
            if not isinstance(v, int) or v < 0:
                raise AlbenchError(f"dualprompt: option {key}={v!r} must be an integer >= 0 (per-class count).")
        model_keys = set(_model_class().defaults)
        self.model_options = {k: v for k, v in self.options.items() if k in model_keys}
        self.given_model_options = {k: v for k, v in options.items() if k in model_keys}

    def _zero_shot_probs(self, ctx: RoundContext) -> np.ndarray:
        if isinstance(ctx.model, ZeroShotClassifier):
            return ctx.probs
        logits = ZeroShotClassifier(ctx.env).predict_logits("pool").double()
        return torch.softmax(logits, 1).numpy()

    def own_model_options(self, ctx: RoundContext) -> tuple[dict, str]:
        """Options of the strategy's own model: the run adapter's when it is ``dualprompt``, else the strategy's."""
        extra = getattr(ctx.env, "extra", None) or {}
        if extra.get("adapter") != MODEL_ADAPTER:
            return dict(self.model_options), "the strategy's options"
        adapter_options = dict(extra.get("adapter_options") or {})
        ignored = sorted(f"{k}={v!r}" for k, v in self.given_model_options.items() if adapter_options.get(k) != v)
        whose = "the adapter's options" + (f"; ignored strategy options {', '.join(ignored)}" if ignored else "")
        return adapter_options, whose

    def _model(self, ctx: RoundContext) -> tuple[DualPromptCapable, str]:
        m = ctx.model
        if isinstance(m, DualPromptCapable) and m.fitted:
            return m, "reused the run's dual-prompt adapter"
        if ctx.env is None:
            raise AlbenchError("dualprompt strategy needs ctx.env (backbone, task, data bank) to train its model.")
        pseudo = ctx.state.get(STATE_KEY)
        if pseudo is None:
            pseudo = zero_shot_pseudo(self._zero_shot_probs(ctx), ctx.unlabeled, self.options["K"])
            source = f"zero-shot top-{self.options['K']} per class"
        else:
            source = "pseudo-labels mined last round"
        options, whose = self.own_model_options(ctx)
        model = _model_class()(ctx.env, seed_key="strategy", **options)
        model.fit(Labeled(ctx.labeled, ctx.labels), Labeled(*pseudo))
        return model, f"trained its own model ({whose}) on {ctx.labeled.size} labels + {source}"

    def select(self, ctx: RoundContext) -> np.ndarray:
        model, how = self._model(ctx)
        ctx.selected_with(model, how)
        unl = ctx.unlabeled
        pos, neg = model.dual_logits("pool", unl)
        pred_t = pos.argmax(1)
        p_clean = clean_probability_from_logits(pos, neg, pred_t).double().numpy()
        pred = pred_t.numpy()
        picked_pos, shortfall = quota_select(p_clean, pred, ctx.budget, ctx.num_classes)
        ctx.note_fallback(shortfall, "classes with fewer candidates than floor(b/C): lowest p_clean overall")
        rest = np.ones(unl.size, dtype=bool)
        rest[picked_pos] = False
        rest_pos = np.flatnonzero(rest)
        mined_pos = rest_pos[per_class_top(p_clean[rest_pos], pred[rest_pos], self.options["k"], ctx.num_classes)]
        mined = (unl[mined_pos], pred[mined_pos].astype(np.int64))
        ctx.state[STATE_KEY] = mined
        ctx.state["dualprompt_last"] = {
            "model": how,
            "pseudo_labeled": int(mined[0].size),
            "mean_p_clean": float(p_clean.mean()) if p_clean.size else None,
        }
        ctx.offer_pseudo_labels(*mined)
        return unl[picked_pos]
