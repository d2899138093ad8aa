"""Uncertainty scores of a classifier's predictions and the stable top-B rule.

Scores follow the deep-AL baselines (ej0cl6/deep-active-learning
``entropy_sampling.py``, ``margin_sampling.py``, ``least_confidence.py``);
Settles, "Active Learning Literature Survey" (2009). Every score here is
"lower = more informative" or documented otherwise, and ``lowest_k`` is the one
ranking rule: ties go to the lowest position, so selections never depend on an
unstable sort.
"""

from __future__ import annotations

import numpy as np


def lowest_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest scores, smallest first; ties go to the lowest position (stable)."""
    return np.argsort(scores, kind="stable")[:k]


def entropy_from_logits(logits: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """Shannon entropy (nats) of softmax(logits), finite even where p underflows to 0.

    Row blocks of ``chunk`` keep the float64 temporaries at O(chunk·C) instead of
    several N×C copies (row-wise, so the values do not depend on ``chunk``).
    """
    logits = np.asarray(logits)
    out = np.empty(logits.shape[0], dtype=np.float64)
    for s in range(0, logits.shape[0], chunk):
        z = logits[s : s + chunk].astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        out[s : s + chunk] = -(np.exp(logp) * logp).sum(axis=1)  # logp is finite: 0 * logp = 0 where p underflows
    return out


def margin_scores(probs: np.ndarray) -> np.ndarray:
    """p_(1) − p_(2), the gap between the two most probable classes (0 with a single class)."""
    p = np.asarray(probs)
    if p.shape[1] < 2:
        return np.zeros(p.shape[0])
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return top2[:, 0] - top2[:, 1]


def least_confidence_scores(probs: np.ndarray) -> np.ndarray:
    """max_c p_c, the probability of the predicted class."""
    return np.asarray(probs).max(axis=1)
