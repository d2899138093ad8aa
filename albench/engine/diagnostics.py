"""Per-round diagnostics: does the selecting model's uncertainty signal find its own mistakes?

In simulated active learning the pool's true labels are known, so every round
can say how good the signals a strategy acts on are, not only the accuracy
that follows. Computed from the model that made the round's selection
(zero-shot CLIP in round 1, last round's adapter afterwards, or the model a
strategy trained itself, ``ctx.selected_with``) on the pool samples that were
unlabelled when it selected, with scikit-learn's metrics:

* ``auroc``: misclassification-detection AUROC (Hendrycks & Gimpel, ICLR 2017,
  "A Baseline for Detecting Misclassified and Out-of-Distribution Examples")
  of each uncertainty score, the positive class being "the model's prediction
  is wrong". Scores, higher = more uncertain: ``max_softmax`` = 1 - max p,
  ``entropy`` of p, ``margin`` = -(p_top1 - p_top2), and for models with dual
  prompts (``albench.api.capabilities.DualPromptCapable``) ``p_clean`` =
  1 - p_clean of the predicted class (the seed paper's Eq. 3). 0.5 = no better
  than chance; None when the pool holds only right or only wrong predictions.
* ``pool_accuracy`` of that model on those samples (the base rate of errors).
  ``pool_scored`` says how many: all of them, except when scoring them would
  push the pool through a prompted image tower a second time (e.g. Random with
  VPT), where ``SAMPLE`` evenly spaced ones keep the cost within a few % of
  the round.
* ``pseudo_labels``: the set a strategy offered (``ctx.offer_pseudo_labels``):
  size, precision against the true labels, per-class counts, and whether the
  run's adapter used it.
* ``selection``: the picks' predicted-class histogram (by the selecting model),
  picks that came from a fallback or random fill (``ctx.note_fallback``, plus
  the protocol's random first round of strategies that need labels), and what
  the selecting model was.
* ``test``: per-class accuracy and balanced accuracy of the adapter trained
  this round (the record's ``accuracy`` is plain top-1 accuracy).
* ``seconds``: what computing all this cost.

The record schema is documented in docs/records.md.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score

from albench.api.capabilities import DualPromptCapable, clean_probability_from_logits
from albench.api.strategy import RoundContext

SIGNALS = ("max_softmax", "entropy", "margin", "p_clean")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def uncertainty_scores(probs: np.ndarray) -> dict[str, np.ndarray]:
    """Max-softmax, entropy and margin uncertainty (higher = less confident), one value per row."""
    p = np.asarray(probs, dtype=np.float64)
    top2 = -np.sort(-p, axis=1)[:, :2] if p.shape[1] > 1 else np.concatenate([p, np.zeros_like(p)], 1)
    logp = np.log(np.where(p > 0, p, 1.0))
    return {"max_softmax": 1.0 - top2[:, 0], "entropy": -(p * logp).sum(1), "margin": -(top2[:, 0] - top2[:, 1])}


def detection_auroc(wrong: np.ndarray, score: np.ndarray) -> float | None:
    """AUROC of ``score`` for detecting ``wrong`` predictions; None when only one outcome occurs."""
    wrong = np.asarray(wrong, dtype=bool)
    if wrong.all() or not wrong.any():
        return None
    return float(roc_auc_score(wrong, np.asarray(score, dtype=np.float64)))


def pseudo_label_stats(
    indices: np.ndarray, labels: np.ndarray, true_labels: np.ndarray, num_classes: int, used: bool
) -> dict:
    """Size, precision (fraction whose pseudo-label equals the true label) and per-class counts."""
    indices, labels = np.asarray(indices, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    correct = labels == np.asarray(true_labels)[indices]
    return {
        "size": int(indices.size),
        "precision": float(correct.mean()) if indices.size else None,
        "correct": int(correct.sum()),
        "class_counts": np.bincount(labels, minlength=num_classes).tolist(),
        "used_by_adapter": bool(used),
    }


def evaluation_stats(test_logits: torch.Tensor | np.ndarray, test_labels: np.ndarray, num_classes: int) -> dict:
    """Per-class accuracy (%; None for a class without test samples) and balanced accuracy (%)."""
    pred = np.asarray(torch.as_tensor(test_logits).argmax(1).cpu().numpy())
    y = np.asarray(test_labels)
    cm = confusion_matrix(y, pred, labels=np.arange(num_classes))
    support = cm.sum(1)
    per_class = [None if support[c] == 0 else round(100.0 * cm[c, c] / support[c], 4) for c in range(num_classes)]
    return {
        "per_class_accuracy": per_class,
        "balanced_accuracy": round(100.0 * float(balanced_accuracy_score(y, pred)), 4),
    }


SAMPLE = 100  # pool samples the AUROCs use when scoring the whole pool would cost an extra image-tower pass


def needs_encoding(model: Any, ctx: RoundContext) -> bool:
    """Whether scoring the pool with ``model`` would push the pool through a prompted image tower again.

    Not when the strategy already scored the pool with it (``ctx.logits`` / ``ctx.features`` computed, or a
    model it trained and selected with), nor for models on cached frozen features (zero-shot, CoOp, ...).
    """
    if ctx.selection_model is not None:
        return False
    if model is ctx.model and ("logits" in ctx.__dict__ or "features" in ctx.__dict__):
        return False
    return getattr(model, "frozen_image_encoder", True) is False


def scored_positions(n: int, needs_encode: bool, sample: int = SAMPLE) -> np.ndarray:
    """Positions of the candidates the AUROCs use: all, or ``sample`` evenly spaced ones (deterministic)."""
    if not needs_encode or n <= sample:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, sample).round().astype(np.int64))


def _pool_predictions(model: Any, ctx: RoundContext, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities, p_clean or None) of the selecting model on ``candidates``."""
    if isinstance(model, DualPromptCapable) and getattr(model, "fitted", False):
        pos, neg = model.dual_logits("pool", candidates)
        p_clean = clean_probability_from_logits(pos.float(), neg.float()).double().numpy()
        return softmax(pos.float().numpy()), p_clean
    if model is ctx.model and "logits" in ctx.__dict__:  # the strategy already computed them: reuse
        return softmax(ctx.logits[candidates]), None
    return softmax(model.predict_logits("pool", candidates).float().cpu().numpy()), None


def round_diagnostics(
    ctx: RoundContext,
    candidates: np.ndarray,
    picked: np.ndarray,
    pool_labels: np.ndarray,
    test_logits: torch.Tensor,
    test_labels: np.ndarray,
    *,
    pseudo_used: bool,
    protocol_random: bool,
) -> dict:
    """The ``diagnostics`` entry of one round record (module docstring)."""
    t0 = time.perf_counter()
    c = ctx.num_classes
    model = ctx.selection_model if ctx.selection_model is not None else ctx.model
    if ctx.selection_model_note:
        source = ctx.selection_model_note
    else:
        source = "zero-shot CLIP" if ctx.round == 1 else "the adapter trained last round"
    out: dict = {}
    candidates = np.asarray(candidates)
    scored = scored_positions(candidates.size, needs_encoding(model, ctx))
    pick_pos = np.searchsorted(candidates, picked)
    evaluate = np.union1d(scored, pick_pos)  # the picks' predicted classes are always recorded
    probs_e, p_clean_e = _pool_predictions(model, ctx, candidates[evaluate])
    pick_pred = probs_e[np.searchsorted(evaluate, pick_pos)].argmax(1)
    at = np.searchsorted(evaluate, scored)
    probs, p_clean = probs_e[at], (None if p_clean_e is None else p_clean_e[at])
    pred = probs.argmax(1)
    wrong = pred != np.asarray(pool_labels)[candidates[scored]]
    out["pool_scored"] = int(scored.size)
    scores = uncertainty_scores(probs)
    if p_clean is not None:
        scores["p_clean"] = 1.0 - p_clean
    out["pool_accuracy"] = round(100.0 * float(1.0 - wrong.mean()), 4)
    out["pool_errors"] = int(wrong.sum())
    out["auroc"] = {k: detection_auroc(wrong, scores[k]) if k in scores else None for k in SIGNALS}
    if p_clean is not None:
        out["mean_p_clean"] = {
            "correct": float(p_clean[~wrong].mean()) if (~wrong).any() else None,
            "wrong": float(p_clean[wrong].mean()) if wrong.any() else None,
        }
    if ctx.pseudo_labels is not None:
        out["pseudo_labels"] = pseudo_label_stats(*ctx.pseudo_labels, pool_labels, c, pseudo_used)
    else:
        out["pseudo_labels"] = None
    fallbacks = dict(ctx.fallbacks)
    if protocol_random:
        fallbacks["random first round (strategy needs labels)"] = int(picked.size)
    out["selection"] = {
        "predicted_class_hist": np.bincount(pick_pred, minlength=c).tolist(),
        "fallback_picks": int(sum(fallbacks.values())),
        "fallbacks": fallbacks,
        "model": source,
        "model_has_dual_prompts": p_clean is not None,
    }
    out["test"] = evaluation_stats(test_logits, test_labels, c)
    out["seconds"] = round(time.perf_counter() - t0, 4)
    return out
