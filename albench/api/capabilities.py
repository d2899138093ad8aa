"""Optional model capabilities that strategies and diagnostics test for, instead of concrete classes.

A strategy must not import an adapter (plugins import only ``albench.api`` and
``albench.components``), yet the seed paper's strategy (Wang, Song & Xia,
"Explicit Uncertainty Modeling for Active CLIP Adaptation with Dual Prompt
Tuning", Sec. 3.3) needs a model with *dual* prompts: it reads the clean
probability of Eq. 3 from the positive and negative logits. Any model that
offers that is a ``DualPromptCapable``; the check is structural
(``isinstance(model, DualPromptCapable)``), so a third-party dual-prompt adapter
works with the built-in strategy and with the per-round diagnostics.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class DualPromptCapable(Protocol):
    """A trained model with positive and negative class prompts (DeFT, Wei et al., NeurIPS 2024).

    ``fitted`` is True once the model has been trained; ``dual_logits`` returns
    the (positive, negative) scaled cosine logits, (n, C) each, on CPU; the
    positive logits are the model's class predictions.
    """

    fitted: bool

    def dual_logits(self, split: str, indices: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]: ...


def clean_probability_from_logits(
    pos: torch.Tensor, neg: torch.Tensor, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 3 of the seed paper: p_clean(c) = sigmoid(pos_c - neg_c) for ``labels`` (default: argmax of ``pos``).

    The two-way softmax between the image's scaled similarity to the positive
    and to the negative prompt of class c equals the sigmoid of their difference.
    """
    if labels is None:
        labels = pos.argmax(1)
    rows = torch.arange(pos.shape[0], device=pos.device)
    return torch.sigmoid(pos[rows, labels] - neg[rows, labels])
