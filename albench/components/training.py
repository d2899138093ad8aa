"""One training loop for every adapter.

SGD with momentum and a cosine learning-rate decay over all steps (the CoOp /
Dassl recipe, Zhou et al. 2022, without the 1-epoch constant warmup, which is
meaningless for 2-step epochs). An epoch is one pass over the larger of the
labelled stream (batch 16) and the pseudo-labelled stream (batch 64); the
shorter stream cycles. Tiny sets work: a batch is never larger than its set.
A non-finite loss stops training with the round and step named.

No host synchronisation per step: the loss stays on the device, the first
non-finite step (and its value) is recorded on the device with
``torch.where``, and the host reads it every ``TrainConfig.check_every`` steps
and at the end. The error names the same step as a per-step check would; at
most ``check_every - 1`` wasted steps run after it. On a GPU a per-step
``float(loss)`` stalls the launch queue every step (CoOp steps are launch-bound).

``TrainConfig.compile`` wraps the step function in ``torch.compile`` (fixed
shapes: a stream's batches have one size, plus the tail of an epoch), which
fuses the many small kernels of a text-tower step; on CUDA the
``"reduce-overhead"`` mode adds CUDA graphs. Results equal the eager step up
to float rounding (tested).

Fast paths (shared by every adapter):

* adapters on a frozen image tower (zero-shot, CoOp) train on cached features
  (``DataBank.features`` / ``DataBank.augmented_features``): the image encoder
  never runs during training;
* adapters that prompt the image tower (VPT, MaPLe, DualPrompt) read batches
  through ``PixelFeed``: every image is decoded and resized once into a uint8
  cache that lives on the device (``DataBank.device_pixel_cache``), and the
  CoOp augmentation (random resized crop 0.08-1 + flip, ``albench.components.augment``)
  runs batched on the device from a seeded generator; no data loader, no
  host-to-device copy per step;
* step functions run their forward inside ``Backbone.autocast()`` (bf16 on
  CUDA, plain fp32 on CPU); parameters and the optimizer stay fp32, so no
  gradient scaler is needed;
* ``encode_split`` evaluates a prompted image tower over a split in large
  no-grad batches (under autocast), so evaluation costs one pass per image.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from albench.api.adapter import Labeled
from albench.api.errors import TrainingError


@dataclass
class TrainConfig:
    epochs: int = 20
    lr: float = 0.01
    batch_size: int = 16
    pseudo_batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 5e-4
    min_steps: int = 0  # lower bound on total steps (0 = epochs alone decide)
    check_every: int = 50  # steps between host reads of the device-side finiteness flag
    compile: bool = False  # torch.compile the step function (fused kernels; CUDA graphs on GPU)


class _Stream:
    """Endless shuffled batches over a labelled set, reshuffled each pass."""

    def __init__(self, data: Labeled, batch: int, generator: torch.Generator):
        self.data, self.batch, self.g = data, max(1, min(batch, len(data))), generator
        self.order: np.ndarray = np.zeros(0, dtype=np.int64)
        self.pos = 0

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data) / self.batch)

    def next(self) -> Labeled:
        if self.pos >= len(self.order):
            self.order = torch.randperm(len(self.data), generator=self.g).numpy()
            self.pos = 0
        take = self.order[self.pos : self.pos + self.batch]
        self.pos += self.batch
        return Labeled(self.data.indices[take], self.data.labels[take])


class PixelFeed:
    """Normalised (optionally augmented) pixel batches of one split, straight from the device cache."""

    def __init__(
        self,
        bank,
        split: str,
        augment: bool = False,
        generator: torch.Generator | None = None,
        scale: tuple[float, float] = (0.08, 1.0),
    ):
        from albench.components.augment import _check_range

        _check_range("scale", scale, 0.0, 1.0)
        if augment and generator is None:
            raise ValueError("PixelFeed(augment=True) needs a seeded torch.Generator")
        self.bank, self.split, self.augment, self.g, self.scale = bank, split, augment, generator, tuple(scale)
        self.backbone = bank.backbone
        self.cache = bank.device_pixel_cache(split)

    def __call__(self, indices) -> torch.Tensor:
        from albench.components.augment import apply_crops, sample_crops

        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long).to(self.cache.device)
        x = self.backbone.normalize_pixels(self.cache[idx])
        if self.augment:
            x = apply_crops(x, sample_crops(x.shape[0], x.shape[2], x.shape[3], self.g, scale=self.scale))
        return x


@torch.no_grad()
def encode_split(
    encode: Callable[[torch.Tensor], torch.Tensor],
    bank,
    split: str,
    indices: np.ndarray | None = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """``encode(pixels)`` over a split (or some of its indices) in no-grad batches; float (n, D) on the CPU."""
    feed = PixelFeed(bank, split)
    n = len(bank.task.split(split)) if indices is None else len(indices)
    idx = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
    out = []
    for start in range(0, n, batch_size):
        with bank.backbone.autocast():
            out.append(encode(feed(idx[start : start + batch_size])).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, bank.backbone.embed_dim)


def cosine_logits(image_features: torch.Tensor, text_features: torch.Tensor, scale: float) -> torch.Tensor:
    """CLIP logits: ``scale`` x cosine similarity, computed in fp32."""
    img = torch.nn.functional.normalize(image_features.float(), dim=-1)
    txt = torch.nn.functional.normalize(text_features.float(), dim=-1)
    return scale * img @ txt.T


StepFn = Callable[[Labeled | None, Labeled | None], torch.Tensor]


def train(
    params: Iterable[torch.nn.Parameter],
    step_loss: StepFn,
    labeled: Labeled | None,
    pseudo: Labeled | None,
    cfg: TrainConfig,
    generator: torch.Generator,
    where: str = "",
) -> dict:
    """Optimise ``params`` on ``step_loss(labeled_batch, pseudo_batch)``; returns training facts.

    ``params`` is a list of parameters, or of torch param-group dicts (``{"params": [...], "lr": x}``)
    when groups need their own learning rate; the cosine decay scales every group alike.
    """
    params = list(params)
    if params and isinstance(params[0], dict):
        params = [
            g for g in ({**g, "params": [p for p in g["params"] if p.requires_grad]} for g in params) if g["params"]
        ]
    else:
        params = [p for p in params if p.requires_grad]
    streams = {
        k: _Stream(v, b, generator)
        for k, v, b in (("labeled", labeled, cfg.batch_size), ("pseudo", pseudo, cfg.pseudo_batch_size))
        if v is not None and len(v)
    }
    if not streams or not params:
        return {"steps": 0, "final_loss": None, "seconds": 0.0}
    per_epoch = max(s.steps_per_epoch() for s in streams.values())
    total = max(cfg.epochs * per_epoch, cfg.min_steps)
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    if cfg.check_every < 1:
        raise ValueError(f"check_every must be >= 1, got {cfg.check_every}")
    device = (params[0]["params"][0] if isinstance(params[0], dict) else params[0]).device
    fn = compiled_step(step_loss, device) if cfg.compile else step_loss
    t0 = time.perf_counter()
    first_bad = torch.full((), -1, dtype=torch.long, device=device)  # first non-finite step, on device
    bad_val = torch.zeros((), device=device)
    loss = None
    for step in range(total):
        lb = streams["labeled"].next() if "labeled" in streams else None
        pb = streams["pseudo"].next() if "pseudo" in streams else None
        loss = fn(lb, pb)
        flag = (first_bad < 0) & ~torch.isfinite(loss.detach())
        first_bad = torch.where(flag, step, first_bad)
        bad_val = torch.where(flag, loss.detach().float(), bad_val)
        if (step + 1) % cfg.check_every == 0 or step + 1 == total:
            _raise_if_bad(first_bad, bad_val, total, where)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    final = float(loss.detach()) if loss is not None else float("nan")
    return {"steps": total, "final_loss": final, "seconds": round(time.perf_counter() - t0, 4)}


def _raise_if_bad(first_bad: torch.Tensor, bad_val: torch.Tensor, total: int, where: str) -> None:
    """One host read: raise ``TrainingError`` naming the first non-finite step, if any."""
    step = int(first_bad)
    if step >= 0:
        raise TrainingError(f"{where}: training loss became {float(bad_val)} at step {step + 1} of {total}.")


def compiled_step(step_loss: StepFn, device: torch.device) -> StepFn:
    """``torch.compile`` of a step function; CUDA graphs (``reduce-overhead``) on a GPU.

    ``dynamic=False``: a training stream has at most two batch shapes (full
    batches and an epoch's tail), each compiled once.
    """
    mode = "reduce-overhead" if device.type == "cuda" else "default"
    return torch.compile(step_loss, mode=mode, dynamic=False)
