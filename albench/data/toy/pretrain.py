"""Recipe that pretrains the toy CLIP shipped with albench (``albench toy pretrain``).

Contrastive image-text training (Radford et al. 2021, CLIP) with a
supervised-contrastive target (Khosla et al. 2020): every caption in the batch
that is true of an image counts as a positive (see ``corpus.py``). The learning
rate follows a warmup-stable-decay schedule (Hu et al. 2024, MiniCPM, Sec. 4):
it is flat until the last ``DECAY_FRACTION`` of the steps, so a run can be
shortened while it is still in the flat phase without changing what it has
already done.

Resumable: a checkpoint (model, optimiser, random state, step) is written
atomically every ``ckpt_every`` steps into the work directory; running the same
command again continues from it. On one CPU thread the result is deterministic
given the seed.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from albench.data.toy.corpus import CORPUS_VERSION, compatibility, make_caption, render_corpus, sample_corpus
from albench.data.toy.render import COLORS, DIGIT_WORDS, PATTERNS, SHAPES, ShapeSpec, render_digit, render_shape
from albench.data.toy.vocab import name_of

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
DECAY_FRACTION = 0.2


@dataclass(frozen=True)
class Recipe:
    arch: str = "toy-clip"
    steps: int = 4000
    batch: int = 128
    corpus_size: int = 80000
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup: int = 200
    weight_decay: float = 0.1
    seed: int = 0


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - MEAN) / STD


def soft_clip_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, compat: torch.Tensor) -> torch.Tensor:
    logits = scale * img @ txt.T
    t_i2t = compat / compat.sum(1, keepdim=True)
    t_t2i = (compat / compat.sum(0, keepdim=True)).T
    return 0.5 * (
        -(t_i2t * F.log_softmax(logits, 1)).sum(1).mean() - (t_t2i * F.log_softmax(logits.T, 1)).sum(1).mean()
    )


def lr_at(step: int, r: Recipe) -> float:
    """Warmup, flat, then linear decay to ``min_lr`` over the last ``DECAY_FRACTION`` of the steps."""
    if step < r.warmup:
        return r.lr * (step + 1) / r.warmup
    decay_start = int(r.steps * (1 - DECAY_FRACTION))
    if step < decay_start:
        return r.lr
    t = (step - decay_start) / max(1, r.steps - decay_start)
    return r.lr + (r.min_lr - r.lr) * min(1.0, t)


@torch.no_grad()
def probe_accuracy(model, tokenize, n: int = 320, seed: int = 999) -> dict[str, float]:
    """Zero-shot accuracy on fresh renders per attribute and name kind (progress figures, not task results)."""
    rng = np.random.default_rng(seed)
    colors = list(COLORS)
    out = {}
    for attr, values, tmpl in (
        ("shape", SHAPES, "a photo of a {}."),
        ("pattern", PATTERNS, "{} texture."),
        ("color", colors, "something {}."),
        ("digit", DIGIT_WORDS, "the digit {}."),
    ):
        labels = rng.integers(len(values), size=n)
        imgs = []
        for i, y in enumerate(labels):
            if attr == "digit":
                imgs.append(render_digit(int(y), seed * 7919 + i, font_range=(14, 44)))
                continue
            a = {
                "shape": SHAPES[rng.integers(8)],
                "pattern": PATTERNS[rng.integers(8)],
                "color": colors[rng.integers(10)],
            }
            a[attr] = values[y]
            imgs.append(
                render_shape(
                    ShapeSpec(a["shape"], a["pattern"], a["color"], "dark", full_frame=attr == "pattern"),
                    seed * 7919 + i,
                )
            )
        fi = F.normalize(model.encode_image(to_tensor(np.stack(imgs))), dim=-1)
        for kind in ("primary", "rare"):
            names = [name_of(attr, v, kind) for v in values]
            ft = F.normalize(model.encode_text(tokenize([tmpl.format(c) for c in names])), dim=-1)
            out[f"{attr}/{kind}"] = round(float(((fi @ ft.T).argmax(1).numpy() == labels).mean()), 3)
    return out


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def export_weights(model, path: Path) -> None:
    """fp16 safetensors of the model (what albench loads)."""
    from safetensors.torch import save_file

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items() if k != "attn_mask"}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _corpus(r: Recipe, workdir: Path, log) -> tuple[list, np.ndarray]:
    samples = sample_corpus(r.corpus_size, r.seed)
    path = workdir / f"corpus-v{CORPUS_VERSION}-n{r.corpus_size}-s{r.seed}.npy"
    if path.exists():
        return samples, np.load(path)
    t0 = time.time()
    images = render_corpus(samples)
    np.save(path.with_suffix(".tmp.npy"), images)
    os.replace(path.with_suffix(".tmp.npy"), path)
    log(f"rendered {len(samples)} images in {time.time() - t0:.0f}s")
    return samples, images


def pretrain(
    workdir: Path,
    recipe: Recipe = Recipe(),
    out_weights: Path | None = None,
    out_card: Path | None = None,
    ckpt_every: int = 100,
    snapshot_every: int = 500,
    log_every: int = 25,
    probe_n: int = 320,
) -> dict:
    """Train (or resume) the toy CLIP in ``workdir``; export weights and a card when done."""
    import open_clip

    from albench.data.toy.model import register_configs

    register_configs()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    logf = open(workdir / "log.txt", "a")

    def log(msg: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    (workdir / "recipe.json").write_text(json.dumps(asdict(recipe), indent=2))
    torch.manual_seed(recipe.seed)
    model = open_clip.create_model(recipe.arch, pretrained=None)
    ctx = model.context_length

    def tokenize(texts):
        return open_clip.tokenize(texts, context_length=ctx)

    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay, betas=(0.9, 0.98))
    rng = np.random.default_rng(recipe.seed + 1)
    step, elapsed = 0, 0.0
    ckpt = workdir / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        step, elapsed = state["step"], state["elapsed"]
        log(f"resumed at step {step} ({elapsed:.0f}s trained)")
    samples, images = _corpus(recipe, workdir, log)

    def save() -> None:
        _atomic_torch_save(
            {
                "model": model.state_dict(),
                "opt": opt.state_dict(),
                "rng": rng.bit_generator.state,
                "step": step,
                "elapsed": elapsed,
                "recipe": asdict(recipe),
            },
            ckpt,
        )

    t_last = time.time()
    model.train()
    while step < recipe.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, recipe)
        idx = rng.choice(len(samples), size=recipe.batch, replace=False)
        batch_samples = [samples[i] for i in idx]
        caps = [make_caption(s, rng) for s in batch_samples]
        compat = torch.from_numpy(compatibility(batch_samples, [m for _, m in caps]))
        img = F.normalize(model.encode_image(to_tensor(images[idx])), dim=-1)
        txt = F.normalize(model.encode_text(tokenize([c for c, _ in caps])), dim=-1)
        loss = soft_clip_loss(img, txt, model.logit_scale.exp().clamp(max=100), compat)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        step += 1
        now = time.time()
        elapsed += now - t_last
        t_last = now
        if step % log_every == 0 or step == recipe.steps:
            log(f"step {step:5d} loss {loss.item():.3f} lr {lr_at(step - 1, recipe):.2e} {elapsed:.0f}s")
        if step % ckpt_every == 0 or step == recipe.steps:
            save()
        if step % snapshot_every == 0 or step == recipe.steps:
            model.eval()
            export_weights(model, workdir / f"snapshot-{step:05d}.safetensors")
            if probe_n:
                log(f"probe step {step} {json.dumps(probe_accuracy(model, tokenize, probe_n))}")
            model.train()
            t_last = time.time()
    model.eval()
    acc = probe_accuracy(model, tokenize, probe_n) if probe_n else {}
    card = {
        "arch": recipe.arch,
        "config": open_clip.get_model_config(recipe.arch),
        "recipe": asdict(recipe),
        "corpus_version": CORPUS_VERSION,
        "train_seconds": round(elapsed, 1),
        "probe_accuracy": acc,
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
        "command": f"albench toy pretrain --workdir DIR (recipe {asdict(recipe)})",
    }
    if out_weights is not None:
        out_weights.parent.mkdir(parents=True, exist_ok=True)
        export_weights(model, out_weights)
        if out_card is not None:
            out_card.write_text(json.dumps(card, indent=2))
    (workdir / "card.json").write_text(json.dumps(card, indent=2))
    log(f"done: {json.dumps(acc)}")
    return card


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="pretrain the toy CLIP (resumable)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--steps", type=int, default=Recipe.steps)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pretrain(Path(args.workdir), Recipe(steps=args.steps))
