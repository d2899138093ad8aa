"""Visual prompts for CLIP's vision transformer, and the plumbing of adapters that prompt the image tower.

``VisualPrompts``: the prompt tokens of VPT (Jia et al., "Visual Prompt Tuning",
ECCV 2022; reference code github.com/KMnP/vpt, ``src/models/vit_prompt/vit.py``,
``PromptedTransformer``): ``n_tokens`` learnable vectors enter the first block after
CLIP's ``ln_pre`` (shallow), and with ``deep=True`` every later block gets its own
fresh tokens; original VPT uniform init U(-v, v), v = sqrt(6 / (3 p^2 + d)).

``PromptedImageAdapter``: an ``Adapter`` base for methods whose image features
depend on trained prompts (VPT, MaPLe, DualPrompt): evaluation encodes a split once
per trained model, the text side once, and training reads device-cached pixels with
the CoOp augmentation. Shared by the built-in adapters and usable by third-party ones;
the backbone is an ``albench.clip.backbone.Backbone`` (duck-typed here so the
component layer stays below the CLIP layer).
"""

from __future__ import annotations

import math
from abc import abstractmethod

import numpy as np
import torch
import torch.nn.functional as F

from albench.api.adapter import Adapter, AdapterEnv
from albench.api.errors import AlbenchError
from albench.api.seeding import torch_generator
from albench.components.training import PixelFeed, cosine_logits, encode_split


def vision_layers(backbone) -> int:
    return len(backbone.model.visual.transformer.resblocks)


def patch_size(backbone) -> int:
    k = backbone.model.visual.conv1.kernel_size
    return int(k[0] if isinstance(k, (tuple, list)) else k)


class VisualPrompts(torch.nn.Module):
    """VPT prompt tokens for a CLIP ViT and the prompted forward.

    ``VisualPrompts(backbone, n_tokens=20, deep=False)``:

    * ``shallow``: Parameter (n_tokens, Wv), enters block 1 after ``ln_pre``;
    * ``deep_prompts``: Parameter (L - 1, n_tokens, Wv) when ``deep`` (block
      i >= 1 gets ``deep_prompts[i - 1]``), else None;
    * ``features(pixels)``: un-normalised image features (B, E) of normalised
      pixels (B, 3, S, S), differentiable w.r.t. the prompts only; run it inside
      ``backbone.autocast()``;
    * ``parameters()``: exactly the prompt tensors.
    """

    def __init__(self, backbone, n_tokens: int = 20, deep: bool = False):
        super().__init__()
        if n_tokens < 0:
            raise AlbenchError(f"vpt: n_tokens={n_tokens!r}; valid: an integer >= 0 (paper: 20).")
        self.backbone, self.n_tokens, self.deep = backbone, int(n_tokens), bool(deep)
        width, p = backbone.vision_width, patch_size(backbone)
        self.init_bound = math.sqrt(6.0 / (3 * p * p + width))  # original VPT init (Jia et al. 2022)
        dev = backbone.device
        self.shallow = torch.nn.Parameter(
            torch.empty(n_tokens, width, device=dev).uniform_(-self.init_bound, self.init_bound)
        )
        if deep:
            self.deep_prompts = torch.nn.Parameter(
                torch.empty(vision_layers(backbone) - 1, n_tokens, width, device=dev).uniform_(
                    -self.init_bound, self.init_bound
                )
            )
        else:
            self.deep_prompts = None

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.backbone.encode_image_prompted(pixels, self.shallow, self.deep_prompts, prompts_before_ln_pre=False)


AUGMENT_MIN_IMAGE_SIZE = 64


def resolve_augment(plugin: str, value: object, image_size: int) -> bool:
    """Whether a prompted-tower adapter augments its training images.

    ``value``: true / false, or "auto" = on for images of at least 64 px (the real datasets at 224 px get
    CoOp's random resized crop + flip, as in CoOp, VPT, MaPLe and DeFT), off for the toy world's 32 px
    images, where a 0.08-area crop keeps 9 x 9 pixels and a horizontal flip changes the class of a digit
    (measured in docs/dualprompt.md and in the VPT adapter's docstring).
    """
    if value not in (True, False, "auto"):
        raise AlbenchError(f"{plugin}: augment={value!r}; valid: true, false, auto.")
    return bool(value) if value != "auto" else image_size >= AUGMENT_MIN_IMAGE_SIZE


class PromptedImageAdapter(Adapter):
    """Shared plumbing for adapters that prompt the image tower (VPT, MaPLe, DualPrompt).

    Subclasses implement ``encode_pixels(pixels)`` (prompted image features)
    and ``text_weights()`` ((C, E) text features on the device, any norm).
    Evaluation encodes each split once per trained model (cached until the
    next ``fit``) and computes the text side once.
    """

    frozen_image_encoder = False
    eval_batch_size = 256

    def __init__(self, env: AdapterEnv, **options):
        super().__init__(env, **options)
        self._feats: dict[str, torch.Tensor] = {}
        self._text: torch.Tensor | None = None

    @abstractmethod
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Prompted image features (B, E) of normalised pixels (B, 3, S, S)."""

    @abstractmethod
    def text_weights(self) -> torch.Tensor:
        """(C, E) text features on the device, any norm."""

    def invalidate(self) -> None:
        self._feats, self._text = {}, None

    def image_features(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        n = len(self.env.dataset.split(split))
        if split not in self._feats:
            if indices is not None and len(indices) < n // 2:  # a small subset: do not encode the whole split
                return encode_split(self.encode_pixels, self.env.bank, split, np.asarray(indices), self.eval_batch_size)
            self._feats[split] = encode_split(self.encode_pixels, self.env.bank, split, None, self.eval_batch_size)
        feats = self._feats[split]
        return feats if indices is None else feats[torch.as_tensor(np.asarray(indices), dtype=torch.long)]

    @torch.no_grad()
    def classifier(self) -> torch.Tensor:
        if self._text is None:
            with self.env.backbone.autocast():
                self._text = F.normalize(self.text_weights().float(), dim=-1).cpu()
        return self._text

    @torch.no_grad()
    def predict_logits(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        return cosine_logits(self.image_features(split, indices), self.classifier(), self.env.backbone.logit_scale)

    def augmenting(self) -> bool:
        return resolve_augment(self.name, self.options["augment"], self.env.backbone.image_size)

    def train_feed(self, prefix: str) -> PixelFeed:
        g = torch_generator(self.env.seed, f"{prefix}-augment", self.env.round)
        return PixelFeed(
            self.env.bank, "pool", augment=self.augmenting(), generator=g, scale=(self.options["aug_min_scale"], 1.0)
        )
