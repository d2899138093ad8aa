"""DualPrompt: positive/negative text prompts + visual prompts, with a clean probability.

The adaptation model of Wang, Song & Xia, "Explicit Uncertainty Modeling for
Active CLIP Adaptation with Dual Prompt Tuning" (the seed paper, Sec. 3.2),
whose dual-prompt construction comes from DeFT (Wei et al., "Vision-Language
Models are Strong Noisy Label Detectors", NeurIPS 2024; reference code
github.com/HotanLee/DeFT, ``model/text_encoder.py::PromptLearner`` and
``main_phase1.py::train``). Visual prompts follow VPT (Jia et al., ECCV 2022;
github.com/KMnP/vpt) in the DeFT placement.

Model
    * Two CoOp-style contexts (Zhou et al., IJCV 2022), ``pos`` and ``neg``, each
      M = 16 tokens shared across classes, N(0, 0.02) init, class token at the
      end (Eqs. 1-2): ``[SOS] V1..VM <class name> . [EOT]``. Both prompt sets go
      through the text encoder in one batched pass (2C prompts).
    * Visual prompts: 20 tokens (the paper's M_v), shallow by default
      (``vpt_deep=True`` gives every later block its own 20 tokens, replacing
      the previous block's prompt outputs, as in VPT-deep). Initialisation
      (``vpt_init``): VPT's uniform(+-sqrt(6 / (3 p^2 + d))), p the patch size and
      d the vision width, shifted by default (``patch_mean``) onto the mean image
      token of unlabelled pool images, because near-zero tokens joining the
      sequence move the frozen tower's features before any training (the paper
      leaves the initialisation open; measured in docs/dualprompt.md); ``uniform``
      keeps VPT's draw. Placement: appended to the token sequence *after*
      ``ln_pre`` (DeFT/LIFT placement, ``backbone.encode_image_prompted`` with
      ``prompts_before_ln_pre=False``). Prompts carry no positional embedding and
      attention is permutation-equivariant, so "appended" and VPT's "after CLS"
      give the same CLS output. ``vpt_tokens=0`` disables them; the adapter then
      trains on cached frozen image features (much faster, text-only dual prompt).

Clean probability (Eq. 3): for image features v and class c,
    p_clean(c) = exp(s cos(v, t+_c)) / (exp(s cos(v, t+_c)) + exp(s cos(v, t-_c)))
with s = CLIP's logit scale (1/tau). For an unlabeled sample c is the predicted
class (argmax of the positive logits); for a labelled one, its label.

Losses (Eqs. 4-6), per sample with label y (human or pseudo):
    L1 = CE(s cos(v, T+), y)
    L2 = -log p_clean(y) - log(1 - p_clean(y~)),   y~ ~ Uniform({1..C} \\ {y}),
         drawn afresh per sample and step
    L  = L1 + lam * L2,  lam = 1.
Eq. 5 as printed, ``-log p_clean(y~) + log(1 - p_clean(y~))``, is minimised by
p_clean(y~) -> 1, i.e. it would teach the model that a *random wrong* label is
clean, contradicting the text ("positive more discriminative than negative for
true labels, reversed for noisy labels"). We implement the intended loss, which
is DeFT's ``L_neg = NLL(log p_no, comple_target) + NLL(log p_yes, target)``.
The log-probabilities are computed exactly as log-sigmoids of the scaled
similarity difference (no clamping needed, unlike DeFT's clamp at 1e-5).

Differences from DeFT, by design (DESIGN.md): the image features are *not*
detached inside L2, so L2 reaches the visual prompts (the seed paper: the
negative objective "supervises the visual prompts"); DeFT detaches them
(``detach_image=True`` does too).
``detach_positive=True`` (default, as DeFT) detaches the positive text
features inside L2, so the positive prompt learns from L1 only and L2 updates
the negative prompt and the visual prompts; ``detach_positive=False`` lets L2
move the positive prompt too. DeFT's sample selection inside training
(``p_clean > 0.5`` after warm-up) is not part of the seed paper and is not used.

Training: the shared trainer (``albench.components.training``): SGD momentum 0.9, cosine
decay, labeled batch 16 + pseudo batch 64 per step, each step's loss the mean
over all samples of the concatenated batch. Images come from the device pixel
cache (``PixelFeed``) with the CoOp augmentation (random resized crop, area
``aug_min_scale``-1, + flip) done batched on the device when ``augment`` says so
(default "auto": on for images of 64 px and more, i.e. every real dataset, off for
the toy world's 32 px images, as the VPT and MaPLe adapters; with it, "Ours" on
toy digits fell to 9 % against 27 % zero-shot, docs/dualprompt.md); evaluation encodes a
split once per fit (``encode_split``) and reuses it. Visual prompts are
``albench.components.visual_prompts.VisualPrompts`` (same tokens, init and placement as the
``vpt`` adapter). Defaults: the optimisation schedule is the CoOp adapter's (lr 0.01
from the paper's grid {0.001, 0.01, 0.03}, and at least ``min_steps=200`` SGD steps
per round, a documented departure from the epoch count that ``min_steps=0`` undoes):
with 1 % labels an epoch is one to three steps, and on the toy digits task the
randomly initialised contexts trained 10 epochs at lr 0.03 ended round 1 at 12 %
(zero-shot 27 %) against 33 % with the schedule (tuning seeds 4-6,
docs/dualprompt.md). The other defaults and why: docs/dualprompt.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from albench.api.adapter import Adapter, AdapterEnv, Labeled
from albench.api.capabilities import clean_probability_from_logits
from albench.api.errors import AlbenchError
from albench.api.options import Opt
from albench.api.seeding import seed_everything, torch_generator
from albench.components.prompts import PromptLearner
from albench.components.training import PixelFeed, TrainConfig, encode_split, train
from albench.components.training_options import check_training_options
from albench.components.visual_prompts import VisualPrompts, resolve_augment

__all__ = [
    "DualPrompt",
    "DualPromptModel",
    "clean_probability_from_logits",
    "complementary_labels",
    "dual_logits",
    "dualprompt_loss",
]


class DualPromptModel(torch.nn.Module):
    """Positive and negative CoOp contexts sharing the class-name tokens, plus optional VPT."""

    def __init__(
        self,
        backbone,
        classnames: list[str],
        n_ctx: int = 16,
        vpt_tokens: int = 20,
        vpt_deep: bool = False,
        ctx_init: str = "",
    ):
        super().__init__()
        self.backbone = backbone
        self.pos = PromptLearner(backbone, classnames, n_ctx, ctx_init=ctx_init)
        self.neg = PromptLearner(backbone, classnames, n_ctx, ctx_init=ctx_init)
        self.visual = VisualPrompts(backbone, vpt_tokens, vpt_deep) if vpt_tokens > 0 else None

    def parameters_to_train(self) -> list[torch.nn.Parameter]:
        out = [self.pos.ctx, self.neg.ctx]
        if self.visual is not None:
            out.extend(self.visual.parameters())
        return out

    def text_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """L2-normalised (T+, T-), each (C, D); each side's shared context prefix runs once."""
        return (
            F.normalize(self.pos.text_features().float(), dim=-1),
            F.normalize(self.neg.text_features().float(), dim=-1),
        )


def dual_logits(
    img: torch.Tensor, t_pos: torch.Tensor, t_neg: torch.Tensor, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled cosine logits of images against positive and negative prompts, (n, C) each."""
    v = F.normalize(img.float(), dim=-1)
    return scale * v @ t_pos.T, scale * v @ t_neg.T


def complementary_labels(labels: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """One label per sample drawn uniformly from the other C-1 classes."""
    off = torch.randint(1, num_classes, labels.shape, generator=generator, device=generator.device)
    return (labels + off.to(labels.device)) % num_classes


@dataclass
class LossParts:
    total: torch.Tensor
    l1: torch.Tensor
    l2: torch.Tensor


def dualprompt_loss(
    img: torch.Tensor,
    t_pos: torch.Tensor,
    t_neg: torch.Tensor,
    labels: torch.Tensor,
    comp: torch.Tensor | None,
    scale: float,
    lam: float = 1.0,
    detach_positive: bool = True,
    detach_image: bool = False,
) -> LossParts:
    """L = L1 + lam * L2 (module docstring); ``comp`` = complementary labels (None when C = 1).

    ``detach_positive``: L2 sees the positive logits detached (no L2 gradient to the positive prompt);
    ``detach_image``: L2 sees the image features detached (no L2 gradient to the visual prompts).
    DeFT detaches both.
    """
    pos, neg = dual_logits(img, t_pos, t_neg, scale)
    l1 = F.cross_entropy(pos, labels)
    img2 = img.detach() if detach_image else img
    if detach_image or detach_positive:
        pos2, neg = dual_logits(img2, t_pos.detach() if detach_positive else t_pos, t_neg, scale)
    else:
        pos2 = pos
    rows = torch.arange(labels.shape[0], device=labels.device)
    margin_y = pos2[rows, labels] - neg[rows, labels]  # log p_clean(y) = logsigmoid(margin)
    l2 = -F.logsigmoid(margin_y)
    if comp is not None:
        margin_c = pos2[rows, comp] - neg[rows, comp]  # log(1 - p_clean(y~)) = logsigmoid(-margin)
        l2 = l2 - F.logsigmoid(-margin_c)
    l2 = l2.mean()
    return LossParts(l1 + lam * l2, l1, l2)


class DualPrompt(Adapter):
    """The paper's full framework ("Ours"): dual text prompts + VPT, trained on labels and pseudo-labels.

    Implements ``albench.api.capabilities.DualPromptCapable`` (``fitted``, ``dual_logits``).
    """

    name = "dualprompt"
    frozen_image_encoder = False
    accepts_pseudo_labels = True
    defaults = {
        "n_ctx": 16,
        "vpt_tokens": 20,
        "vpt_deep": False,
        "lam": 1.0,
        "detach_positive": True,
        "detach_image": False,
        "ctx_init": "",
        "vpt_init": "patch_mean",
        "epochs": 10,
        "lr": 0.01,
        "visual_lr_scale": 1.0,
        "batch_size": 16,
        "pseudo_batch_size": 64,
        "augment": "auto",
        "aug_min_scale": 0.08,
        "min_steps": 200,
        "eval_batch": 512,
    }
    schema = {
        "n_ctx": Opt(int, 0, 72),
        "vpt_tokens": Opt(int, 0, 512),
        "lam": Opt(float, 0, 1000),
        "pseudo_batch_size": Opt(int, 1, 65536),
        "aug_min_scale": Opt(float, 0, 1, low_open=True),
        "augment": Opt(object, choices=(True, False, "auto")),
        "eval_batch": Opt(int, 1, 1_000_000),
        "epochs": Opt(int, 1, 1000),
        "lr": Opt(float, 0, None, low_open=True),
        "batch_size": Opt(int, 1, 65536),
        "min_steps": Opt(int, 0, 1_000_000),
        "visual_lr_scale": Opt(float, 0, 1000, low_open=True),
        "vpt_init": Opt(str, choices=("patch_mean", "uniform")),
    }

    def __init__(self, env: AdapterEnv, *, seed_key: str = "adapter", **options):
        super().__init__(env, **options)
        o = self.options
        check_training_options("dualprompt", o)
        for key, lo in (("n_ctx", 1), ("vpt_tokens", 0), ("pseudo_batch_size", 1), ("eval_batch", 1)):
            if not isinstance(o[key], int) or o[key] < lo:
                raise AlbenchError(f"dualprompt: {key}={o[key]!r}; valid: an integer >= {lo}.")
        if not (o["lam"] >= 0 and math.isfinite(o["lam"])):
            raise AlbenchError(f"dualprompt: lam={o['lam']!r}; valid: a finite number >= 0 (paper: 1).")
        if not (
            isinstance(o["visual_lr_scale"], (int, float))
            and o["visual_lr_scale"] > 0
            and math.isfinite(o["visual_lr_scale"])
        ):
            raise AlbenchError(
                f"dualprompt: visual_lr_scale={o['visual_lr_scale']!r}; valid: a finite number > 0 "
                f"(the visual prompts' lr = lr x visual_lr_scale)."
            )
        self.augment = resolve_augment("dualprompt", o["augment"], env.backbone.image_size)
        if not 0 < o["aug_min_scale"] <= 1:
            raise AlbenchError(
                f"dualprompt: aug_min_scale={o['aug_min_scale']!r}; valid: a number in (0, 1] (CoOp: 0.08)."
            )
        if o["vpt_deep"] and o["vpt_tokens"] == 0:
            raise AlbenchError(
                "dualprompt: vpt_deep=true needs vpt_tokens > 0 (valid: vpt_tokens >= 1 with "
                "vpt_deep, or vpt_tokens=0 without visual prompts)."
            )
        if env.num_classes < 2:
            raise AlbenchError(f"dualprompt needs at least 2 classes, the task has {env.num_classes}.")
        self.seed_key = seed_key
        seed_everything(env.seed, "dualprompt-init", seed_key, env.round)
        self.model = DualPromptModel(
            env.backbone, env.task.classnames, o["n_ctx"], o["vpt_tokens"], o["vpt_deep"], o["ctx_init"]
        )
        if self.model.visual is not None and o["vpt_init"] == "patch_mean":
            self._centre_visual_prompts()
        self.fitted = False
        self._text: tuple[torch.Tensor, torch.Tensor] | None = None
        self._feats: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def _centre_visual_prompts(self, n_images: int = 256) -> None:
        """Shift the (shallow) visual prompts onto the mean image token of the pool (``vpt_init="patch_mean"``).

        The VPT init draws prompts near zero, but the tokens they join (after ``ln_pre``) have norm ~sqrt(width):
        a near-zero token becomes the LayerNorm bias inside each block, a constant key every query can attend
        to, and the features move before any training (measured in docs/dualprompt.md). Centring each prompt
        on the mean patch token of up to ``n_images`` unlabelled pool images (a seeded sample; no label is
        read) keeps the uniform draw as a small perturbation, so the prompted tower starts next to the frozen
        one and the tokens stay distinct.
        """
        env = self.env
        n = len(env.task.pool)
        g = torch_generator(env.seed, "dualprompt-vpt-init", self.seed_key, env.round)
        idx = torch.randperm(n, generator=g)[: min(n, n_images)].numpy()
        tokens = env.backbone.input_tokens(env.bank.pixels("pool", np.sort(idx)))
        mean_patch = tokens[:, 1:].float().mean((0, 1))
        shallow = self.model.visual.shallow
        shallow.add_(mean_patch.to(shallow.dtype).to(shallow.device))

    # ---- parameters and images ---------------------------------------------
    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.model.parameters_to_train()

    def _param_groups(self) -> list[dict]:
        """Text contexts at ``lr``, visual prompts at ``lr x visual_lr_scale``."""
        o = self.options
        groups = [{"params": [self.model.pos.ctx, self.model.neg.ctx], "lr": o["lr"]}]
        if self.model.visual is not None:
            groups.append({"params": list(self.model.visual.parameters()), "lr": o["lr"] * o["visual_lr_scale"]})
        return groups

    def _encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.visual.features(pixels)

    def _train_features(self, idx: np.ndarray, feed: PixelFeed | None) -> torch.Tensor:
        """Pool image features (n, D) for a training batch: prompted tower on (augmented) pixels, or cached."""
        if self.model.visual is None:
            return self.env.bank.features("pool")[torch.as_tensor(idx, dtype=torch.long)].to(self.env.device)
        return self._encode_pixels(feed(idx))

    @torch.no_grad()
    def _split_features(self, split: str) -> torch.Tensor:
        """Un-normalised image features of a whole split (float32, CPU), computed once per fit."""
        if split not in self._feats:
            if self.model.visual is None:
                self._feats[split] = self.env.bank.features(split).float().cpu()
            else:
                self._feats[split] = encode_split(
                    self._encode_pixels, self.env.bank, split, None, self.options["eval_batch"]
                )
        return self._feats[split]

    @torch.no_grad()
    def text_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (T+, T-) on CPU, computed once per fit."""
        if self._text is None:
            with self.env.backbone.autocast():
                tp, tn = self.model.text_features()
            self._text = (tp.float().cpu(), tn.float().cpu())
        return self._text

    # ---- training -----------------------------------------------------------
    def fit(self, labeled: Labeled, pseudo: Labeled | None = None) -> dict:
        o, env, dev = self.options, self.env, self.env.device
        c = env.num_classes
        if pseudo is not None and len(pseudo):
            keep = ~np.isin(pseudo.indices, labeled.indices)  # a human label overrides a pseudo-label
            pseudo = Labeled(pseudo.indices[keep], pseudo.labels[keep])
        for name, part in (("labeled", labeled), ("pseudo", pseudo)):
            if part is not None and len(part) and (part.labels.min() < 0 or part.labels.max() >= c):
                raise AlbenchError(
                    f"dualprompt: {name} labels must lie in 0..{c - 1}, got "
                    f"{sorted(set(part.labels[(part.labels < 0) | (part.labels >= c)].tolist()))[:5]}."
                )
        cfg = TrainConfig(
            epochs=o["epochs"],
            lr=o["lr"],
            batch_size=o["batch_size"],
            pseudo_batch_size=o["pseudo_batch_size"],
            min_steps=o["min_steps"],
        )
        keys = (env.seed, "dualprompt", self.seed_key, env.round)
        g_batches = torch_generator(*keys, "batches")
        g_comp = torch_generator(*keys, "complementary")
        feed = None
        if self.model.visual is not None:
            feed = PixelFeed(
                env.bank,
                "pool",
                augment=self.augment,
                generator=torch_generator(*keys, "augment"),
                scale=(o["aug_min_scale"], 1.0),
            )
        scale = env.backbone.logit_scale
        parts: dict[str, torch.Tensor] = {}  # the last step's loss terms, read on the host once, after training

        def step(lb: Labeled | None, pb: Labeled | None) -> torch.Tensor:
            batches = [b for b in (lb, pb) if b is not None]
            idx = np.concatenate([b.indices for b in batches])
            labels = torch.as_tensor(np.concatenate([b.labels for b in batches]))
            y = labels.to(dev)
            comp = complementary_labels(labels, c, g_comp).to(dev)  # drawn on the host: no device-to-host copy
            with env.backbone.autocast():
                img = self._train_features(idx, feed)
                t_pos, t_neg = self.model.text_features()
            loss = dualprompt_loss(img, t_pos, t_neg, y, comp, scale, o["lam"], o["detach_positive"], o["detach_image"])
            parts["l1"], parts["l2"] = loss.l1.detach(), loss.l2.detach()  # no host sync per step
            return loss.total

        report = train(
            self._param_groups(),
            step,
            labeled if len(labeled) else None,
            pseudo,
            cfg,
            g_batches,
            where=f"dualprompt round {env.round}",
        )
        self.fitted = True
        self._text, self._feats = None, {}
        report.update(
            {
                "final_l1": float(parts["l1"]) if "l1" in parts else None,
                "final_l2": float(parts["l2"]) if "l2" in parts else None,
                "labeled": len(labeled),
                "pseudo": 0 if pseudo is None else len(pseudo),
            }
        )
        return report

    # ---- prediction -----------------------------------------------------------
    def _rows(self, split: str, indices: np.ndarray | None) -> torch.Tensor:
        if (
            indices is not None
            and split not in self._feats
            and self.model.visual is not None
            and len(indices) < len(self.env.task.split(split)) // 2
        ):  # a small subset: encode only it
            with torch.no_grad():
                return encode_split(
                    self._encode_pixels, self.env.bank, split, np.asarray(indices), self.options["eval_batch"]
                )
        f = self._split_features(split)
        return f if indices is None else f[torch.as_tensor(np.asarray(indices), dtype=torch.long)]

    def image_features(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        return self._rows(split, indices)

    def classifier(self) -> torch.Tensor:
        return self.text_features()[0]

    @torch.no_grad()
    def dual_logits(self, split: str, indices: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(positive, negative) scaled cosine logits, (n, C) each, on CPU."""
        t_pos, t_neg = self.text_features()
        return dual_logits(self._rows(split, indices), t_pos, t_neg, self.env.backbone.logit_scale)

    @torch.no_grad()
    def predict_logits(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        return self.dual_logits(split, indices)[0]

    @torch.no_grad()
    def clean_probability(
        self, split: str, indices: np.ndarray | None = None, labels: np.ndarray | None = None
    ) -> torch.Tensor:
        """p_clean (n,) of the given labels, or of the predicted classes when ``labels`` is None."""
        pos, neg = self.dual_logits(split, indices)
        lab = None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if lab is not None and lab.shape != (pos.shape[0],):
            raise AlbenchError(
                f"clean_probability: {lab.shape[0] if lab.ndim else 'scalar'} labels for {pos.shape[0]} samples."
            )
        return clean_probability_from_logits(pos, neg, lab)
