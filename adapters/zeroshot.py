"""Zero-shot CLIP with the dataset's template: the tables' Zero-shot column.

Radford et al., "Learning Transferable Visual Models From Natural Language
Supervision", ICML 2021 (reference code github.com/openai/CLIP); prompts as in
CoOp's ``ZeroshotCLIP`` (github.com/KaiyangZhou/CoOp, ``trainers/zsclip.py``):
one template per dataset, e.g. "a photo of a {}, a type of flower.". Class
weights are the L2-normalised text features of the C prompts; logits are
CLIP's temperature times cosine similarity with the cached frozen image
features. Nothing is trained: ``fit`` ignores its labels, so every AL round
gives the same model, and the image tower runs only to fill the feature cache.
"""

from __future__ import annotations

import numpy as np
import torch

from albench.api.adapter import Adapter, AdapterEnv, Labeled, ZeroShotClassifier


class ZeroShot(Adapter):
    """CLIP zero-shot classification (no training)."""

    name = "zeroshot"
    frozen_image_encoder = True
    defaults: dict = {}

    def __init__(self, env: AdapterEnv, **options):
        super().__init__(env, **options)
        self._zs = ZeroShotClassifier(env)

    def fit(self, labeled: Labeled, pseudo: Labeled | None = None) -> dict:
        return {"steps": 0, "final_loss": None, "seconds": 0.0, "trained": False}

    def classifier(self) -> torch.Tensor:
        return self._zs.classifier()

    def image_features(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        return self._zs.image_features(split, indices)

    @torch.no_grad()
    def predict_logits(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        return self._zs.predict_logits(split, indices)
