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


@dataclass
class TrainJob:
    """One run's share of a training loop: its parameters, data, batch generator and name for errors."""

    params: list
    labeled: Labeled | None
    pseudo: Labeled | None
    generator: torch.Generator
    where: str = ""


BatchesFn = Callable[
    [dict], list
]  # {job index: (labeled batch, pseudo batch)} of the jobs still training -> their losses


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
    job = TrainJob(list(params), labeled, pseudo, generator, where)

    def step_losses(batches: dict) -> list[torch.Tensor]:
        return [step_loss(*batches[0])]

    (out,) = train_together([job], step_losses, cfg)
    if isinstance(out, TrainingError):
        raise out
    return out


def train_together(jobs: list[TrainJob], step_losses: BatchesFn, cfg: TrainConfig) -> list[dict | TrainingError]:
    """Train several runs' disjoint parameters in one loop: one forward (``step_losses``) and one backward per step.

    Batched runs (DESIGN.md, "Batched runs"): R runs on the same data and options train together when their
    adapter can compute all R losses in one call (CoOp: R context sets through one text-tower call).
    Every job keeps its own batch streams and generator, and its parameters get gradients only from its own
    loss (the summed loss's gradient is 1 for every term), so each job's result equals training it alone
    when the batched forward computes each job's rows as a lone call would (``albench.clip.text_prefix``:
    bit for bit on CPU; tested). The jobs must agree on the number of steps (one cosine schedule). A job
    whose loss turns non-finite gets its ``TrainingError`` (naming its first bad step, as alone) in place
    of a report; its NaNs stay in its own rows and parameters, so the other jobs are unaffected.
    """
    if cfg.check_every < 1:
        raise ValueError(f"check_every must be >= 1, got {cfg.check_every}")
    groups, streams, totals = [], [], []
    for job in jobs:
        params = list(job.params)
        if params and isinstance(params[0], dict):
            params = [
                g for g in ({**g, "params": [p for p in g["params"] if p.requires_grad]} for g in params) if g["params"]
            ]
        else:
            params = [{"params": [p for p in params if p.requires_grad]}] if params else []
            params = [g for g in params if g["params"]]
        s = {
            k: _Stream(v, b, job.generator)
            for k, v, b in (("labeled", job.labeled, cfg.batch_size), ("pseudo", job.pseudo, cfg.pseudo_batch_size))
            if v is not None and len(v)
        }
        groups.append(params)
        streams.append(s)
        per_epoch = max((st.steps_per_epoch() for st in s.values()), default=0)
        totals.append(max(cfg.epochs * per_epoch, cfg.min_steps) if s and params else 0)
    live = [i for i, t in enumerate(totals) if t]
    reports: list[dict | TrainingError] = [{"steps": 0, "final_loss": None, "seconds": 0.0} for _ in jobs]
    if not live:
        return reports
    total = totals[live[0]]
    if any(totals[i] != total for i in live):
        raise ValueError(f"jobs trained together must have one step count, got {sorted(set(totals))}")
    opt = torch.optim.SGD(
        [g for i in live for g in groups[i]], lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    device = groups[live[0]][0]["params"][0].device
    fn: BatchesFn = compiled_step(step_losses, device) if cfg.compile else step_losses
    t0 = time.perf_counter()
    n = len(live)
    first_bad = torch.full((n,), -1, dtype=torch.long, device=device)  # first non-finite step per job, on device
    bad_val = torch.zeros(n, device=device)
    losses: list[torch.Tensor] = []
    bad: list[tuple[int, TrainingError]] = []
    for step in range(total):
        batches = {
            i: (s["labeled"].next() if "labeled" in s else None, s["pseudo"].next() if "pseudo" in s else None)
            for i, s in ((i, streams[i]) for i in live)
        }
        losses = fn(batches)
        now = torch.stack([lo.detach().float() for lo in losses]) if n > 1 else losses[0].detach().float().view(1)
        flag = (first_bad < 0) & ~torch.isfinite(now)
        first_bad = torch.where(flag, step, first_bad)
        bad_val = torch.where(flag, now, bad_val)
        if (step + 1) % cfg.check_every == 0 or step + 1 == total:
            bad = _bad_jobs(first_bad, bad_val, total, [jobs[i].where for i in live])
            if bad and n == 1:
                reports[live[0]] = bad[0][1]
                return reports  # alone: stop at the check, as a per-step check would (within check_every)
        opt.zero_grad(set_to_none=True)
        (losses[0] if n == 1 else sum(losses[1:], losses[0])).backward()
        opt.step()
        sched.step()
    seconds = round((time.perf_counter() - t0) / n, 4)  # each job's share of the loop
    errors = dict(bad)  # the last check ran after the last step
    for k, i in enumerate(live):
        reports[i] = errors.get(k) or {"steps": total, "final_loss": float(losses[k].detach()), "seconds": seconds}
    return reports


def _bad_jobs(
    first_bad: torch.Tensor, bad_val: torch.Tensor, total: int, wheres: list[str]
) -> list[tuple[int, TrainingError]]:
    """One host read: (job, ``TrainingError`` naming its first non-finite step) for every job that has one."""
    steps, vals = first_bad.tolist(), bad_val.tolist()
    return [
        (k, TrainingError(f"{w}: training loss became {v} at step {st + 1} of {total}."))
        for k, (st, v, w) in enumerate(zip(steps, vals, wheres))
        if st >= 0
    ]


def compiled_step(step_loss: BatchesFn, device: torch.device) -> BatchesFn:
    """``torch.compile`` of a step function; CUDA graphs (``reduce-overhead``) on a GPU.

    ``dynamic=False``: a training stream has at most two batch shapes (full
    batches and an epoch's tail), each compiled once.
    """
    mode = "reduce-overhead" if device.type == "cuda" else "default"
    return torch.compile(step_loss, mode=mode, dynamic=False)
