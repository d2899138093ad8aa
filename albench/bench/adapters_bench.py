"""``albench bench --section adapters``: the cost of one AL round per adapter.

Two measurements:

1. Toy world (the shipped toy CLIP, ``toy_textures``: 8 classes, 2,000 pool,
   1,000 test), one AL round at the 5 % budget (100 labels, round 5) per
   adapter with its default options: train + evaluate on the test split +
   score the pool (what the next round's strategy reads), with the
   image-encoder passes of the round (``albench.api.accounting``) and the
   one-off feature caching measured apart.
2. ``ViT-B-16`` with random weights (``--backbone ViT-B-16 --pretrained
   random``) on synthetic 224x224 images at DTD's real sizes (47 classes,
   2,820 pool, 1,692 test): time per training step (batch 16), training and
   evaluation images per second, image-encoder passes of a real round at 5 %
   (141 labels) and the projected time of that round on this machine. Quick
   mode uses a reduced synthetic pool/test split (sizes in the notes) and one
   training step per adapter so the section fits in a few minutes on 2 CPU
   cores; projections then extrapolate to the full sizes.
"""

from __future__ import annotations

import math
import tempfile
import time

import numpy as np
import torch

DTD_CLASSES = [
    "banded",
    "blotchy",
    "braided",
    "bubbly",
    "bumpy",
    "chequered",
    "cobwebbed",
    "cracked",
    "crosshatched",
    "crystalline",
    "dotted",
    "fibrous",
    "flecked",
    "freckled",
    "frilly",
    "gauzy",
    "grid",
    "grooved",
    "honeycombed",
    "interlaced",
    "knitted",
    "lacelike",
    "lined",
    "marbled",
    "matted",
    "meshed",
    "paisley",
    "perforated",
    "pitted",
    "pleated",
    "polka-dotted",
    "porous",
    "potholed",
    "scaly",
    "smeared",
    "spiralled",
    "sprinkled",
    "stained",
    "stratified",
    "striped",
    "studded",
    "swirly",
    "veined",
    "waffled",
    "woven",
    "wrinkled",
    "zigzagged",
]
DTD_POOL, DTD_TEST = 2820, 1692
TOY_TASK = "toy_textures"
QUICK_VIT = ("coop", "vpt", "maple")  # ViT-B/16 rows measured in quick mode (CPU steps cost 30-100 s each)
# (label, adapter, options): every adapter with its defaults, plus the selectable variants
VARIANTS = [
    ("zeroshot", "zeroshot", {}),
    ("coop", "coop", {}),
    ("coop aug_views=4", "coop", {"aug_views": 4}),
    ("vpt", "vpt", {}),
    ("vpt deep", "vpt", {"deep": True}),
    ("maple", "maple", {}),
]


def _variants() -> list[tuple[str, str, dict]]:
    from albench.api.plugins import ADAPTERS

    names = ADAPTERS.names()
    out = [v for v in VARIANTS if v[1] in names]
    out += [(n, n, {}) for n in names if n not in {v[1] for v in VARIANTS}]  # e.g. dualprompt
    return out


def _round(env, cls, opts, labeled) -> dict:
    """Construct, train, evaluate, score the pool; seconds and encoder passes of each part."""
    from albench import accounting
    from albench.api.adapter import accuracy

    out: dict = {}
    with accounting.measure() as passes:
        t0 = time.perf_counter()
        a = cls(env, **opts)
        info = a.fit(labeled)
        t1 = time.perf_counter()
        acc = accuracy(a.predict_logits("test"), env.task.test.labels)
        t2 = time.perf_counter()
        a.predict_logits("pool")
        a.image_features("pool")
        t3 = time.perf_counter()
    out.update(
        train_s=t1 - t0,
        eval_s=t2 - t1,
        score_pool_s=t3 - t2,
        round_s=t3 - t0,
        accuracy=acc,
        steps=info.get("steps", 0),
        passes=passes.get("image_encoder_images", 0),
    )
    return out


def toy_rows(quick: bool = False) -> tuple[list[dict], str]:
    from albench.api.adapter import AdapterEnv, Labeled
    from albench.clip.backbone import Backbone, BackboneSpec
    from albench.data.features import DataBank, FeatureCache
    from albench.api.plugins import ADAPTERS
    from albench.api.seeding import numpy_rng
    from albench.data.tasks import load_task
    from albench.data.toy.model import WEIGHTS_FILE

    spec = BackboneSpec() if WEIGHTS_FILE.exists() else BackboneSpec(pretrained="random")
    bb = Backbone.load(spec, device="cpu")
    task = load_task(TOY_TASK)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        from albench import accounting

        bank = DataBank(bb, task, cache=FeatureCache(tmp))
        with accounting.measure() as caching:
            t0 = time.perf_counter()
            bank.features("pool"), bank.features("test")
            t_cache = time.perf_counter() - t0
        if not quick:
            with accounting.measure() as view_caching:
                t0 = time.perf_counter()
                bank.augmented_features("pool", 4)
                t_views = time.perf_counter() - t0
        rows.append(
            {
                "world": "toy",
                "adapter": "(feature cache, once per backbone)",
                "round_s": round(t_cache, 3),
                "encoder_passes": caching.get("image_encoder_images", 0),
            }
        )
        if not quick:
            rows.append(
                {
                    "world": "toy",
                    "adapter": "(4 augmented views of the pool, once)",
                    "round_s": round(t_views, 3),
                    "encoder_passes": view_caching.get("image_encoder_images", 0),
                }
            )
        n = len(task.pool)
        idx = numpy_rng(1, "bench-labels").choice(n, size=int(round(0.05 * n)), replace=False)
        labeled = Labeled(idx, task.pool.labels[idx])
        for label, name, opts in _variants():
            if quick and opts:  # quick: each adapter with its defaults only
                continue
            env = AdapterEnv(bb, task, bank, seed=1, round=5)
            try:
                r = _round(env, ADAPTERS.get(name), opts, labeled)
            except Exception as exc:  # a broken adapter is reported, not fatal for the section
                rows.append({"world": "toy", "adapter": label, "error": f"{type(exc).__name__}: {exc}"})
                continue
            rows.append(
                {
                    "world": "toy",
                    "adapter": label,
                    "round_s": round(r["round_s"], 3),
                    "train_s": round(r["train_s"], 3),
                    "eval_s": round(r["eval_s"], 3),
                    "score_pool_s": round(r["score_pool_s"], 3),
                    "steps": r["steps"],
                    "encoder_passes": r["passes"],
                    "accuracy": round(r["accuracy"], 2),
                }
            )
    note = (
        f"Toy world: {TOY_TASK} ({n} pool, {len(task.test)} test, {task.num_classes} classes), "
        f"backbone {bb.describe()['pretrained']}, one round at 5 % ({len(idx)} labels, round 5, seed 1), "
        f"CPU, {torch.get_num_threads()} torch threads. round_s = construct + train + evaluate the test split + "
        f"score the pool; encoder_passes = images through the image tower in that round."
        + (
            " Quick mode: defaults only (variants coop aug_views=4 and vpt deep, and the view caching, in --full)."
            if quick
            else ""
        )
    )
    return rows, note


def synthetic_dtd(pool: int, test: int, seed: int = 0):
    from albench.data.tasks import ArraySource, Split, Task

    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        y = np.arange(n) % len(DTD_CLASSES)
        rng.shuffle(y)
        return Split(ArraySource(rng.integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)), y)

    return Task("dtd-synthetic", list(DTD_CLASSES), "{} texture.", split(pool), split(test))


def vitb16_rows(quick: bool) -> tuple[list[dict], str]:
    from albench import accounting
    from albench.api.adapter import AdapterEnv, Labeled
    from albench.clip.backbone import Backbone, BackboneSpec
    from albench.data.features import DataBank
    from albench.api.plugins import ADAPTERS

    bb = Backbone.load(BackboneSpec("ViT-B-16", pretrained="random"))
    pool, test = (16, 16) if quick else (DTD_POOL, DTD_TEST)
    task = synthetic_dtd(pool, test)
    bank = DataBank(bb, task, cache=None)
    n_lab_full = int(round(0.05 * DTD_POOL))  # 141 labels at round 5
    rows = []
    variants = [v for v in _variants() if not quick or v[0] in QUICK_VIT]
    n_lab = 16 if quick else n_lab_full
    idx = np.arange(n_lab)
    labeled = Labeled(idx, task.pool.labels[idx])
    with accounting.measure() as caching:
        t0 = time.perf_counter()
        bank.features("pool"), bank.features("test")
        t_cache = time.perf_counter() - t0
    cache_ips = (pool + test) / t_cache
    rows.append(
        {
            "world": "ViT-B/16",
            "adapter": "(feature cache, once per backbone)",
            "encoder_passes": caching.get("image_encoder_images", 0),
            "eval_img_per_s": round(cache_ips, 2),
            "round_s": round(t_cache, 2),
        }
    )
    for label, name, opts in variants:
        cls = ADAPTERS.get(name)
        env = AdapterEnv(bb, task, bank, seed=1, round=5)
        o = dict(opts)
        if quick:  # one step of 16
            o["epochs"] = 1
            if "min_steps" in cls.defaults:
                o["min_steps"] = 0
        try:
            a = cls(env, **o)
            with accounting.measure() as fit_passes:
                info = a.fit(labeled)
            t0 = time.perf_counter()
            with accounting.measure() as ev_passes:
                a.predict_logits("test")
            t_eval = time.perf_counter() - t0
        except Exception as exc:
            rows.append({"world": "ViT-B/16", "adapter": label, "error": f"{type(exc).__name__}: {exc}"})
            continue
        steps = max(1, info.get("steps", 0))
        step_s = info.get("seconds", 0.0) / steps
        prompted = not cls.frozen_image_encoder
        epochs = cls.defaults.get("epochs", 0)
        full_steps = max(epochs * math.ceil(n_lab_full / 16), cls.defaults.get("min_steps", 0)) if epochs else 0
        # passes of a full DTD round: every labelled image once per epoch + test + pool for prompted towers
        full_passes = epochs * n_lab_full + DTD_TEST + DTD_POOL if prompted else 0
        eval_ips = len(task.test) / t_eval if prompted and t_eval > 0 else None
        proj = full_steps * step_s + ((DTD_TEST + DTD_POOL) / eval_ips if eval_ips else 0.0)
        rows.append(
            {
                "world": "ViT-B/16",
                "adapter": label,
                "step_s": round(step_s, 3),
                "train_img_per_s": round(16 / step_s, 2) if step_s > 0 and prompted else None,
                "eval_img_per_s": round(eval_ips, 2) if eval_ips else None,
                "encoder_passes": fit_passes.get("image_encoder_images", 0) + ev_passes.get("image_encoder_images", 0),
                "dtd_round_steps": full_steps,
                "dtd_round_passes": full_passes,
                "dtd_round_projected_s": round(proj, 1),
            }
        )
    dev = str(bb.device)
    note = (
        f"ViT-B/16 (open_clip, random init) on synthetic 224x224 images, 47 classes, device {dev}"
        f"{' (bf16 autocast)' if bb.device.type == 'cuda' else ' (fp32)'}. "
        + (
            f"QUICK MODE: reduced synthetic split ({pool} pool, {test} test instead of {DTD_POOL}/{DTD_TEST}), "
            f"one training step of 16 per adapter, only {', '.join(QUICK_VIT)} measured; "
            f"encoder_passes are for that reduced round. "
            if quick
            else f"Full DTD sizes, round 5 ({n_lab_full} labels). "
        )
        + f"dtd_round_* project a full DTD round at 5 % ({n_lab_full} labels, default epochs): steps, image-encoder "
        f"passes (epochs x labels + test + pool for prompted towers; 0 for CoOp/zero-shot after the one-off "
        f"caching of {DTD_POOL + DTD_TEST} images) and seconds = steps x step_s + (test + pool) / eval_img_per_s."
    )
    return rows, note


def run(quick: bool = False) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the toy CLIP is too small to gain from threads; on a busy machine they cost 10-50x
    try:
        toy, toy_note = toy_rows(quick)
    finally:
        torch.set_num_threads(threads)
    vit, vit_note = vitb16_rows(quick)
    coop = next((r for r in toy if r.get("adapter") == "coop"), {})
    slow = [
        r["adapter"]
        for r in toy
        if r.get("round_s") is not None and not r["adapter"].startswith("(") and r["round_s"] >= 60
    ]
    targets = (
        f"Targets: CoOp round on the toy world {coop.get('round_s')} s (target < 5 s) with "
        f"{coop.get('encoder_passes')} image-encoder passes after caching (target 0); adapters over 60 s on "
        f"the toy world: {', '.join(slow) if slow else 'none'}."
    )
    return {
        "title": "cost of one AL round per adapter",
        "rows": toy + vit,
        "notes": "\n\n".join(
            [
                targets,
                toy_note,
                vit_note,
                "Shared 2-core machine: compare rows of one run, not absolute seconds across runs.",
            ]
        ),
    }
