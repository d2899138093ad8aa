"""``albench bench --section coop-step``: one CoOp training step against its FLOP floor on the CPU.

The step is CoOp's (Zhou et al., IJCV 2022): the C prompts through the text
tower (the shared [SOS][ctx] prefix once, ``albench.clip.text_prefix``), cosine
logits against a batch of 16 cached image features, cross-entropy, backward to
the context, SGD; run through ``albench.components.training.train`` exactly as
the CoOp adapter runs it.

* **FLOPs** of one step are counted by ``torch.utils.flop_counter.FlopCounterMode``
  on the step as executed (forward + backward; the tower is frozen, so no weight
  gradients exist to count).
* **Floor** = FLOPs / the best matrix-multiply rate this process reaches on one
  thread (``gemm_rate``: the step's own largest GEMM shape and a square 1024³
  one, best of both, median of repetitions). Floor ratio = measured CPU
  seconds per step / floor seconds; 1.0 would mean the step does nothing but
  multiply matrices at peak speed.
* **Step time**: ``block_steps`` steps after ``warmup`` untimed ones, process CPU
  and wall time, repeated; eager and ``torch.compile``'d steps interleaved
  (A B B A ...). The compiled arm's warm-up includes compilation (excluded from
  the timing, reported separately).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from albench.bench.timing import REPEATS, interleaved, one_torch_thread, summary, timed

QUICK = {
    "cases": (("toy", None, 80), ("ViT-B-16", "random", 47)),
    "block_steps": 20,
    "warmup": 3,
    "repeats": REPEATS,
    "compiled": True,
}
FULL = {**QUICK, "block_steps": 50}


def _case(arch: str, pretrained: str | None, classes: int, seed: int = 1):
    """CoOp (through the adapter registry) on prefilled synthetic features: the step function and its parameter."""
    from albench.api.adapter import AdapterEnv
    from albench.api.plugins import ADAPTERS
    from albench.bench.synthetic import feature_task, prefilled_bank
    from albench.clip.backbone import Backbone, BackboneSpec

    spec = BackboneSpec() if arch == "toy" else BackboneSpec(arch, pretrained)
    bb = Backbone.load(spec, device="cpu")
    task = feature_task(f"coop_step_{classes}", 4 * classes, 8, classes)
    bank = prefilled_bank(bb, task)
    ad = ADAPTERS.get("coop")(AdapterEnv(bb, task, bank, seed=seed, round=1))
    feats = bank.features("pool")

    def step(lb, pb) -> torch.Tensor:  # CoOp.fit's step (aug_views=0)
        with bb.autocast():
            text = ad.prompt.text_features()
        idx = torch.as_tensor(lb.indices)
        logits = bb.logit_scale * F.normalize(feats[idx].float(), dim=-1) @ F.normalize(text.float(), dim=-1).T
        return F.cross_entropy(logits, torch.as_tensor(lb.labels))

    return bb, task, ad, step


def _train(ad, step, task, steps: int, compile_step: bool) -> dict:
    from albench.api.adapter import Labeled
    from albench.components.training import TrainConfig, train

    labeled = Labeled(np.arange(16), np.asarray(task.pool.labels[:16]))  # one batch of 16: one step per epoch
    cfg = TrainConfig(epochs=steps, batch_size=16, compile=compile_step)
    return train([ad.prompt.ctx], step, labeled, None, cfg, torch.Generator().manual_seed(0))


def step_flops(ad, step, task) -> dict:
    """FLOPs of one forward + backward of the step, counted on the ops actually run."""
    from torch.utils.flop_counter import FlopCounterMode

    from albench.api.adapter import Labeled

    lb = Labeled(np.arange(16), np.asarray(task.pool.labels[:16]))
    with FlopCounterMode(display=False) as fc:
        step(lb, None).backward()
    ad.prompt.ctx.grad = None
    return {"total": int(fc.get_total_flops())}


def gemm_rate(shapes: list[tuple[int, int, int]], repeats: int = REPEATS, min_seconds: float = 0.3) -> float:
    """Best fp32 GEMM FLOP/s over ``shapes`` (m, k, n) on this thread: the median of repetitions, max over shapes."""
    best = 0.0
    g = torch.Generator().manual_seed(0)
    for m, k, n in shapes:
        a, b = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
        a @ b  # warm-up
        rates = []
        for _ in range(repeats):
            reps, c0 = 0, time.process_time()
            while reps < 4 or time.process_time() - c0 < min_seconds:
                a @ b
                reps += 1
            rates.append(2 * m * k * n * reps / max(time.process_time() - c0, 1e-9))
        best = max(best, summary(rates)["median"])
    return best


def measure_case(arch: str, pretrained: str | None, classes: int, cfg: dict) -> dict:
    bb, task, ad, step = _case(arch, pretrained, classes)
    flops = step_flops(ad, step, task)["total"]
    w = bb.text_width
    rows_ = classes * 6  # the suffix positions of C prompts (class name + "." + EOT): the step's biggest GEMMs
    rate = gemm_rate([(rows_, w, 4 * w), (1024, 1024, 1024)], repeats=cfg["repeats"])
    floor_s = flops / rate
    compile_s = {}

    def arm(compile_step: bool):
        def go():
            with timed() as warm:
                _train(ad, step, task, cfg["warmup"], compile_step)  # warm-up (and compilation), untimed below
            compile_s.setdefault(compile_step, warm.sample.wall_s)
            with timed() as sw:
                _train(ad, step, task, cfg["block_steps"], compile_step)
            return sw.sample.scaled(1.0 / cfg["block_steps"])

        return go

    torch._dynamo.reset()
    arms = {"eager": arm(False), "compiled": arm(True)} if cfg["compiled"] else {"eager": arm(False)}
    res = interleaved(arms, repeats=cfg["repeats"])
    eager = [s for s, _ in res["eager"]]
    comp = [s for s, _ in res.get("compiled", res["eager"])]
    e_cpu, c_cpu = summary([s.cpu_s for s in eager]), summary([s.cpu_s for s in comp])
    if not cfg["compiled"]:
        comp, c_cpu = [], {"median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {
        "backbone": f"{arch} ({pretrained})" if pretrained else "albench-toy",
        "classes": classes,
        "text_width": w,
        "text_layers": len(bb.model.transformer.resblocks),
        "step_mflop": round(flops / 1e6, 1),
        "gemm_gflops": round(rate / 1e9, 1),
        "floor_ms": round(1e3 * floor_s, 2),
        "eager_cpu_ms": _ms(e_cpu),
        "eager_wall_ms": _ms(summary([s.wall_s for s in eager])),
        "compiled_cpu_ms": _ms(c_cpu) if comp else None,
        "compiled_wall_ms": _ms(summary([s.wall_s for s in comp])) if comp else None,
        "eager_floor_ratio": round(e_cpu["median"] / floor_s, 2),
        "compiled_floor_ratio": round(c_cpu["median"] / floor_s, 2) if comp else None,
        "compile_warmup_s": round(compile_s.get(True, 0.0), 1),
    }


def _ms(s: dict) -> str:
    return f"{1e3 * s['median']:.3g} [{1e3 * s['min']:.3g}–{1e3 * s['max']:.3g}]"


def run(quick: bool = False, **overrides) -> dict:
    """``overrides`` replace entries of the QUICK / FULL configuration (tests use small ones)."""
    cfg = {**(QUICK if quick else FULL), **overrides}
    with one_torch_thread():
        rows = [measure_case(a, p, c, cfg) for a, p, c in cfg["cases"]]
    ratios = {}
    for r in rows:
        key = "toy" if r["backbone"] == "albench-toy" else r["backbone"].split(" ")[0]
        ratios[f"{key}_eager_floor"] = r["eager_floor_ratio"]
        if r["compiled_floor_ratio"] is not None:
            ratios[f"{key}_compiled_floor"] = r["compiled_floor_ratio"]
    notes = (
        "One CoOp step (16 context tokens, unified, class token at the end; batch 16 of cached features; forward + "
        "backward + SGD through `components.training.train`) on the CPU, 1 torch thread, class names `class i`. "
        "`step_mflop`: FLOPs counted by `torch.utils.flop_counter` on the ops the step runs (shared-prefix text "
        "path). `gemm_gflops`: best fp32 matrix-multiply rate of this process (the step's largest GEMM shape and "
        "1024³, median of repetitions). `floor_ms` = step FLOPs / that rate. `*_ms`: CPU (and wall) milliseconds per "
        f"step, median [min–max] of {cfg['repeats']} interleaved blocks of {cfg['block_steps']} steps after "
        f"{cfg['warmup']} untimed ones; `*_floor_ratio` = CPU time per step / floor (goal ≤ 2). "
        "`compile_warmup_s`: wall seconds of the compiled arm's first warm-up, compilation included."
    )
    return {"title": "CoOp training step against its FLOP floor (CPU)", "rows": rows, "notes": notes, "ratios": ratios}
