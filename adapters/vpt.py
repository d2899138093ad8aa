"""VPT: visual prompt tuning on CLIP's vision transformer.

Jia et al., "Visual Prompt Tuning", ECCV 2022; reference code
github.com/KMnP/vpt (``src/models/vit_prompt/vit.py``, ``PromptedTransformer``).
The paper this suite reproduces uses VPT with M_v = 20 tokens on the visual
side of CLIP (its Section 4.1); the text side is fixed: the template's
zero-shot text features (as ``FixedEmbeddings`` in the MaPLe repo's CLIP VPT,
github.com/muzairkhattak/multimodal-prompt-learning ``trainers/vpt.py``).

Where the tokens go, and why. ``n_tokens`` learnable vectors of the vision
width are inserted into the token sequence *after* the patch embedding,
positional embedding and CLIP's ``ln_pre``, at the input of the first
transformer block (shallow, default). The original VPT inserts them after the
[CLS] token, after the embeddings, directly in front of the first block; its
ViT has no pre-LayerNorm, so "after ``ln_pre``" is the faithful equivalent in
CLIP's ViT: the prompts enter block 1 un-normalised and at their own scale,
as in the paper (and in DeFT/LIFT's CLIP VPT). Whether they sit right after
[CLS] or after the last patch makes no difference: prompts carry no positional
embedding, self-attention is permutation-equivariant and CLIP pools the [CLS]
output, so both orders give identical features; we append. The MaPLe repo's
CLIP VPT instead appends before ``ln_pre`` (that is MaPLe's placement, used in
``albench_adapters.maple``). With ``deep=True`` every block i >= 1 gets its own
``n_tokens`` fresh prompts that replace the previous block's prompt outputs
(VPT-deep). With zero tokens the forward is exactly ``encode_image``.

Initialisation: the original VPT uniform init, U(-v, v) with
v = sqrt(6 / (3 * p * p + d)), p the patch size and d the vision width
(v = 0.0625 for ViT-B/16), for shallow and deep prompts alike.

Training: SGD + cosine (``albench.components.training``), batch 16, on device-cached
pixels, with the CoOp augmentation (random resized crop 0.08-1 + flip) done
batched on the device when enabled. The image tower runs every step (only its prompts have
gradients), so this adapter sets ``frozen_image_encoder = False`` and returns
its prompted features from ``image_features``.

Defaults (paper grid lr in {0.001, 0.01, 0.03}, 10 or 20 epochs, batch 16):
lr 0.03, 20 epochs. Gradients reach the prompts only through attention in a
frozen tower, and with 1-5 % labels an epoch is 1-10 steps: on the toy world
(digits, 5 % labels) 0.001 and 0.01 leave shallow VPT at or below zero-shot
within a round, 0.03 with 20 epochs learns (DeFT also trains its CLIP VPT with
lr 0.03). Augmentation ``augment="auto"``: the CoOp crop + flip for images of
64 px and more (all real datasets, 224 px), off for the toy world's 32 px
images, where it destroyed the signal (digits: 7 % with it vs 25 % without).
Shallow VPT is weak on the 3-block toy ViT (+3 points over zero-shot on
digits); ``deep=True`` with lr 0.01 reaches +11.

The prompt tokens and their forward (``VisualPrompts``) and the shared plumbing
(``PromptedImageAdapter``) live in ``albench.components.visual_prompts``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from albench.api.adapter import AdapterEnv, Labeled
from albench.api.errors import AlbenchError
from albench.api.options import Opt
from albench.api.seeding import seed_everything, torch_generator
from albench.components.training import TrainConfig, cosine_logits, train
from albench.components.training_options import check_training_options
from albench.components.visual_prompts import PromptedImageAdapter, VisualPrompts, vision_layers

__all__ = ["VPT", "PromptedImageAdapter", "VisualPrompts", "vision_layers"]  # components re-exported for one release


class VPT(PromptedImageAdapter):
    """Visual prompt tuning (shallow by default, ``deep=True`` for VPT-deep) with fixed template text features."""

    name = "vpt"
    defaults = {
        "n_tokens": 20,
        "deep": False,
        "epochs": 20,
        "lr": 0.03,
        "batch_size": 16,
        "min_steps": 0,
        "augment": "auto",
        "aug_min_scale": 0.08,
    }
    schema = {
        "n_tokens": Opt(int, 0, 512),
        "augment": Opt(object, choices=(True, False, "auto")),
        "aug_min_scale": Opt(float, 0, 1, low_open=True),
        "epochs": Opt(int, 1, 1000),
        "lr": Opt(float, 0, None, low_open=True),
        "batch_size": Opt(int, 1, 65536),
        "min_steps": Opt(int, 0, 1_000_000),
    }

    def __init__(self, env: AdapterEnv, **options):
        super().__init__(env, **options)
        o = self.options
        check_training_options("vpt", o)
        self.augmenting()
        if not 0 < o["aug_min_scale"] <= 1:
            raise AlbenchError(f"vpt: aug_min_scale={o['aug_min_scale']!r}; valid: a number in (0, 1] (CoOp: 0.08).")
        seed_everything(env.seed, "vpt-init", env.round)
        self.prompts = VisualPrompts(env.backbone, o["n_tokens"], o["deep"])
        with torch.no_grad():
            self._fixed_text = env.backbone.text_classifier(env.dataset.prompts())  # normalised, on the device

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.prompts.parameters())

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.prompts.features(pixels)

    def text_weights(self) -> torch.Tensor:
        return self._fixed_text

    def fit(self, labeled: Labeled, pseudo: Labeled | None = None) -> dict:
        device, bb = self.env.device, self.env.backbone
        feed = self.train_feed("vpt")
        cfg = TrainConfig(
            epochs=self.options["epochs"],
            lr=self.options["lr"],
            batch_size=self.options["batch_size"],
            min_steps=self.options["min_steps"],
        )

        def step(lb: Labeled | None, pb: Labeled | None) -> torch.Tensor:
            with bb.autocast():
                img = self.prompts.features(feed(lb.indices))
            logits = cosine_logits(img, self._fixed_text, bb.logit_scale)
            return F.cross_entropy(logits, torch.as_tensor(lb.labels, device=device))

        g = torch_generator(self.env.seed, "vpt-batches", self.env.round)
        report = train(self.trainable_parameters(), step, labeled, None, cfg, g, where=f"vpt round {self.env.round}")
        self.invalidate()
        return report
