"""Recipe that pretrains the toy CLIP shipped with albench (``albench toy pretrain``).

Contrastive image-text training (Radford et al. 2021) with a supervised-
contrastive target: every caption in the batch that is true of an image counts
as a positive (see ``corpus.py``). Deterministic given the seed on one CPU
thread count; the shipped card records the seed, steps and the accuracies.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from albench.data.toy.corpus import compatibility, make_caption, render_corpus, sample_corpus
from albench.data.toy.model import CARD_FILE, TOY_CLIP_CONFIG, WEIGHTS_FILE, build_toy_clip
from albench.data.toy.render import COLORS, PATTERNS, SHAPES, ShapeSpec, render_shape

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - MEAN) / STD


def soft_clip_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, compat: torch.Tensor) -> torch.Tensor:
    logits = scale * img @ txt.T
    t_i2t = compat / compat.sum(1, keepdim=True)
    t_t2i = (compat / compat.sum(0, keepdim=True)).T
    return 0.5 * (-(t_i2t * F.log_softmax(logits, 1)).sum(1).mean() - (t_t2i * F.log_softmax(logits.T, 1)).sum(1).mean())


@torch.no_grad()
def probe_accuracy(model, tokenize, n: int = 400, seed: int = 999) -> dict[str, float]:
    """Zero-shot accuracy on fresh renders for each attribute (sanity figures)."""
    rng = np.random.default_rng(seed)
    out = {}
    colors = list(COLORS)
    for attr, names, tmpl in (("shape", SHAPES, "a photo of a {}."), ("pattern", PATTERNS, "{} texture."),
                              ("color", colors, "something {}.")):
        labels = rng.integers(len(names), size=n)
        imgs = []
        for i, y in enumerate(labels):
            a = {"shape": SHAPES[rng.integers(8)], "pattern": PATTERNS[rng.integers(8)], "color": colors[rng.integers(10)]}
            a[attr] = names[y]
            imgs.append(render_shape(ShapeSpec(a["shape"], a["pattern"], a["color"], "dark"), seed * 7919 + i))
        fi = F.normalize(model.encode_image(to_tensor(np.stack(imgs))), dim=-1)
        ft = F.normalize(model.encode_text(tokenize([tmpl.format(c) for c in names])), dim=-1)
        out[attr] = float(((fi @ ft.T).argmax(1).numpy() == labels).mean())
    return out


RECIPE = ({"stage": 1, "steps": 2000, "lr": 1e-3, "seed": 0}, {"stage": 2, "steps": 1500, "lr": 5e-4, "seed": 1})


def pretrain_recipe(out_weights: Path = WEIGHTS_FILE, out_card: Path = CARD_FILE, recipe=RECIPE) -> dict:
    """The shipped checkpoint: stage 1 from scratch, then stage 2 continued from it."""
    cards = []
    init = None
    for i, st in enumerate(recipe):
        last = i == len(recipe) - 1
        w = out_weights if last else out_weights.with_name(out_weights.stem + f".stage{st['stage']}.safetensors")
        c = out_card if last else w.with_suffix(".json")
        card = pretrain(steps=st["steps"], lr=st["lr"], seed=st["seed"], stage=st["stage"], init_from=init,
                        out_weights=w, out_card=c)
        cards.append(card)
        init = w
    final = dict(cards[-1], stages=cards)
    out_card.write_text(json.dumps(final, indent=2))
    return final


def pretrain(steps: int = 1500, batch: int = 256, corpus_size: int = 40000, lr: float = 1e-3, seed: int = 0,
             out_weights: Path = WEIGHTS_FILE, out_card: Path = CARD_FILE, log_every: int = 50, stage: int = 1,
             init_from: Path | None = None) -> dict:
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    ctx = TOY_CLIP_CONFIG["text_cfg"]["context_length"]

    def tokenize(texts):
        return open_clip.tokenize(texts, context_length=ctx)

    t0 = time.time()
    samples = sample_corpus(corpus_size, seed, stage=stage)
    images = render_corpus(samples, workers=2)
    print(f"rendered {len(samples)} images in {time.time() - t0:.0f}s", flush=True)
    model = build_toy_clip()
    if init_from is not None:
        from albench.clip.backbone import load_strict, read_state_dict

        load_strict(model, read_state_dict(Path(init_from)), "toy-clip", Path(init_from))
        model.float()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.98))
    warm = max(1, steps // 15)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    rng = np.random.default_rng(seed + 1)
    t0 = time.time()
    for step in range(steps):
        idx = rng.choice(len(samples), size=batch, replace=False)
        batch_samples = [samples[i] for i in idx]
        caps = [make_caption(s, rng) for s in batch_samples]
        compat = torch.from_numpy(compatibility(batch_samples, [m for _, m in caps]))
        img = F.normalize(model.encode_image(to_tensor(images[idx])), dim=-1)
        txt = F.normalize(model.encode_text(tokenize([c for c, _ in caps])), dim=-1)
        loss = soft_clip_loss(img, txt, model.logit_scale.exp().clamp(max=100), compat)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == steps - 1:
            print(f"step {step:5d} loss {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)
    model.eval()
    acc = probe_accuracy(model, tokenize)
    print("probe accuracy", acc, flush=True)
    out_weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items() if k != "attn_mask"}
    save_file(state, str(out_weights))
    card = {"arch": "toy-clip", "config": TOY_CLIP_CONFIG, "stage": stage, "init_from": str(init_from) if init_from else None,
            "steps": steps, "batch": batch, "corpus_size": corpus_size,
            "lr": lr, "seed": seed, "train_seconds": round(time.time() - t0, 1), "probe_accuracy": acc,
            "torch": torch.__version__, "open_clip": open_clip.__version__}
    out_card.write_text(json.dumps(card, indent=2))
    return card


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "stage2":
        s2 = RECIPE[1]
        stage1 = WEIGHTS_FILE.with_name(WEIGHTS_FILE.stem + ".stage1.safetensors")
        pretrain(steps=s2["steps"], lr=s2["lr"], seed=s2["seed"], stage=2, init_from=stage1)
    else:
        pretrain_recipe()
