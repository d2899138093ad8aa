"""``albench bench --gpu``: the one-shot GPU benchmark (one H200, < 8 minutes, no internet).

Everything is generated locally: random-init open_clip ViT-B/16 and ViT-L/14
(no weights file), synthetic uint8 images, synthetic cached features. It
measures, in bf16 autocast (``Backbone.autocast``):

1. image encoding, images/s, per backbone (batch 256 / 128);
2. training steps/s and images/s of the real VPT, MaPLe and DualPrompt
   adapters (``fit``) at the paper's batch sizes (labelled batch 16,
   DualPrompt's pseudo-labelled batch 64), from the difference of two fits of
   S1 and S2 steps, so fixed costs (building the model, the first step)
   cancel: step time = (t(S2) - t(S1)) / (S2 - S1);
3. achieved TFLOP/s = images/s x analytic FLOPs per image (``vit_flops``), image
   tower only, against ``PEAK_BF16`` (790 TFLOP/s: the H200's dense bf16
   matrix rate measured on these machines, device README);
4. a CoOp AL trajectory on cached features at DTD's real sizes (pool 2,820,
   test 1,692, 47 classes, ViT-B/16 text encoder) through ``protocol.execute``;
5. per-strategy selection time at each Table 1 dataset's real pool size, and
   CoOp / DualPrompt step times at the smallest and largest class count;
6. the projected wall time of the paper's Table 1 (six datasets at their CoOp
   split sizes from ``albench.data.datasets.COOP_SPLITS``, the preset's columns,
   3 seeds, 6 rounds) from those measured costs (``project_table1``, formula
   in its docstring), checked against the measured DTD trajectory.

``--dry-run`` runs the same code on the CPU with tiny sizes (images 32 px,
batch 2, a few steps, datasets scaled down 100x with at most 3 classes) and
writes ``bench_gpu_dryrun.json``: it tests the script, its figures mean nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

PEAK_BF16 = 790e12  # H200 dense bf16 matrix rate, measured on these machines (device README / KINDS.md)
TABLE1_DATASETS = ("caltech101", "dtd", "eurosat", "fgvc_aircraft", "oxford_flowers", "ucf101")
BASELINES = ("random", "entropy", "coreset", "badge", "alfamix", "gcnal", "cec")
SEEDS, ROUNDS = 3, 6


@dataclass
class Sizes:
    image_size: int | None = None  # None = the architecture's own (224)
    encode_batch: dict = field(default_factory=lambda: {"ViT-B-16": 256, "ViT-L-14": 128})
    encode_iters: int = 10
    warmup: int = 2
    train_pool: int = 512
    train_classes: int = 100
    labeled: int = 16  # one labelled batch of the paper (16) ...
    pseudo: int = 64  # ... and one pseudo-labelled batch (64): one step per epoch
    steps: tuple[int, int] = (5, 25)
    coop_steps: tuple[int, int] = (5, 45)
    dataset_scale: float = 1.0
    max_classes: int | None = None
    dtd_rounds: int = ROUNDS
    coop_options: dict = field(default_factory=dict)  # CoOp options of the DTD trajectory and the projection
    archs: tuple[str, ...] = ("ViT-B-16", "ViT-L-14")
    worker_counts: tuple[int, ...] = (1, 2, 4)


GPU_SIZES = Sizes()
DRY_SIZES = Sizes(
    image_size=32,
    encode_batch={"ViT-B-16": 2, "ViT-L-14": 2},
    encode_iters=1,
    warmup=1,
    train_pool=8,
    train_classes=3,
    labeled=2,
    pseudo=2,
    steps=(1, 2),
    coop_steps=(1, 3),
    dataset_scale=0.01,
    max_classes=3,
    dtd_rounds=2,
    worker_counts=(1, 2),
    coop_options={"min_steps": 0, "epochs": 2},
)


# ---- analytic FLOPs ---------------------------------------------------------
def vit_flops(backbone, extra_tokens: int = 0) -> dict:
    """FLOPs per image of the vision tower (multiply-add = 2 FLOPs).

    Per block with width w and t tokens: linear layers (qkv 3w², out w², MLP 8w²
    with ratio 4) 24·t·w²; attention matmuls (QKᵀ and PV) 4·t²·w; patch
    embedding 2·patches·3p²·w. Forward = blocks x (linear + attention) + patch.
    Training through a frozen tower computes input gradients only: backward =
    1x the linear FLOPs (dX = dY Wᵀ, no weight gradients) + 2x the attention
    FLOPs (two matmuls per attention matmul); the patch embedding needs none.
    So train (fwd + bwd) = 2 x linear + 3 x attention + patch.
    """
    v = backbone.model.visual
    w = int(v.conv1.out_channels)
    p = int(v.conv1.kernel_size[0])
    layers = len(v.transformer.resblocks)
    patches = int(v.positional_embedding.shape[0]) - 1
    t = patches + 1 + extra_tokens
    mlp = int(v.transformer.resblocks[0].mlp.c_fc.out_features) / w
    linear = layers * 2 * t * (4 * w * w + 2 * mlp * w * w)
    attn = layers * 4 * t * t * w
    patch = 2 * patches * 3 * p * p * w
    return {
        "forward": linear + attn + patch,
        "train": 2 * linear + 3 * attn + patch,
        "tokens": t,
        "width": w,
        "layers": layers,
    }


# ---- helpers ----------------------------------------------------------------
def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _backbone(arch: str, sizes: Sizes, device):
    """Random-init open_clip model (seed 0), optionally at a forced image size, wrapped as a Backbone."""
    import open_clip

    from albench.clip.backbone import RANDOM, Backbone, BackboneSpec

    kw = {"force_image_size": sizes.image_size} if sizes.image_size else {}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = open_clip.create_model(arch, pretrained=None, **kw)
    ident = f"{arch}:{RANDOM}:seed0" + (f":img{sizes.image_size}" if sizes.image_size else "")
    return Backbone.from_model(model, BackboneSpec(arch, RANDOM), ident, device)


def measure_encode(bb, sizes: Sizes, arch: str) -> dict:
    b = sizes.encode_batch[arch]
    x = torch.randn(b, 3, bb.image_size, bb.image_size, device=bb.device)
    with torch.no_grad(), bb.autocast():
        for _ in range(sizes.warmup):
            bb.encode_images(x)
        _sync(bb.device)
        t0 = time.perf_counter()
        for _ in range(sizes.encode_iters):
            bb.encode_images(x)
        _sync(bb.device)
    dt = time.perf_counter() - t0
    ips = b * sizes.encode_iters / dt
    fl = vit_flops(bb)["forward"]
    return {
        "arch": arch,
        "what": "encode (no grad)",
        "batch": b,
        "images_per_s": round(ips, 1),
        "tflops": round(ips * fl / 1e12, 2),
        "pct_peak": round(100 * ips * fl / PEAK_BF16, 1),
        "gflop_per_image": round(fl / 1e9, 2),
    }


def _env(bb, task, seed: int = 1):
    from albench.api.adapter import AdapterEnv
    from albench.data.features import DataBank

    return AdapterEnv(bb, task, DataBank(bb, task, cache=None), seed=seed, round=1)


def _fit_seconds(cls, env, steps: int, labeled, pseudo, **opts) -> float:
    ad = cls(env, epochs=steps, min_steps=0, **opts)  # the labelled (and pseudo) set is one batch: one step per epoch
    _sync(env.device)
    rep = ad.fit(labeled, pseudo)
    _sync(env.device)
    if rep["steps"] != steps:
        raise RuntimeError(f"{cls.__name__}: expected {steps} steps, ran {rep['steps']}")
    return rep["seconds"]


def step_time(cls, env, steps: tuple[int, int], labeled, pseudo=None, **opts) -> float:
    """Seconds per training step from two fits (fixed costs cancel)."""
    t1 = _fit_seconds(cls, env, steps[0], labeled, pseudo, **opts)
    t2 = _fit_seconds(cls, env, steps[1], labeled, pseudo, **opts)
    return max(t2 - t1, 1e-9) / (steps[1] - steps[0])


def _labeled(task, n: int, offset: int = 0):
    from albench.api.adapter import Labeled

    idx = np.arange(offset, offset + n) % len(task.pool)
    return Labeled(idx, task.pool.labels[idx])


def measure_adapters(bb, sizes: Sizes, arch: str) -> list[dict]:
    from albench.api.plugins import ADAPTERS
    from albench.bench.synthetic import pixel_task

    VPT, MaPLe, DualPrompt = (ADAPTERS.get(n) for n in ("vpt", "maple", "dualprompt"))

    task = pixel_task("gpu_pixels", sizes.train_pool, 4, sizes.train_classes, bb.image_size, seed=0)
    env = _env(bb, task)
    lab = _labeled(task, sizes.labeled)
    pseudo = _labeled(task, sizes.pseudo, offset=sizes.labeled)
    rows = []
    for name, cls, opts, ps, images, extra in (
        ("vpt", VPT, {}, None, 16, VPT.defaults["n_tokens"]),
        ("maple", MaPLe, {}, None, 16, MaPLe.defaults["n_ctx"]),
        ("dualprompt", DualPrompt, {}, pseudo, 16 + 64, DualPrompt.defaults["vpt_tokens"]),
    ):
        if images > 16:  # tiny dry-run sets: a batch is never larger than its set
            images = min(16, len(lab)) + min(64, len(pseudo))
        else:
            images = min(16, len(lab))
        t = step_time(cls, env, sizes.steps, lab, ps, **opts)
        fl = vit_flops(bb, extra_tokens=extra)["train"]
        ips = images / t
        rows.append(
            {
                "arch": arch,
                "what": f"train {name}",
                "batch": images,
                "steps_per_s": round(1 / t, 2),
                "images_per_s": round(ips, 1),
                "tflops": round(ips * fl / 1e12, 2),
                "pct_peak": round(100 * ips * fl / PEAK_BF16, 1),
                "gflop_per_image": round(fl / 1e9, 2),
                "classes": sizes.train_classes,
            }
        )
    return rows


# ---- Table 1 ingredients ------------------------------------------------------
def table1_datasets(sizes: Sizes) -> list[dict]:
    """Pool/test/class counts of Table 1's datasets from the CoOp split catalog (scaled in dry runs)."""
    from albench.data.datasets import COOP_SPLITS

    out = []
    for d in TABLE1_DATASETS:
        s = COOP_SPLITS[d]
        c = s.classes if sizes.max_classes is None else min(s.classes, sizes.max_classes)
        n = max(12 * c, int(round(s.train * sizes.dataset_scale)))
        out.append({"dataset": d, "pool": n, "test": max(c, int(round(s.test * sizes.dataset_scale))), "classes": c})
    return out


def measure_coop_steps(bb, sizes: Sizes, classes: list[int]) -> dict[int, float]:
    from albench.api.adapter import AdapterEnv
    from albench.api.plugins import ADAPTERS
    from albench.bench.synthetic import feature_task, prefilled_bank

    CoOp = ADAPTERS.get("coop")

    out = {}
    for c in sorted(set(classes)):
        task = feature_task(f"coop_steps_{c}", max(64, 2 * sizes.labeled), 8, c)
        env = AdapterEnv(bb, task, prefilled_bank(bb, task), seed=1, round=1)
        out[c] = step_time(CoOp, env, sizes.coop_steps, _labeled(task, sizes.labeled))
    return out


def measure_dualprompt_steps(bb, sizes: Sizes, classes: list[int]) -> dict[int, float]:
    from albench.api.plugins import ADAPTERS
    from albench.bench.synthetic import pixel_task

    DualPrompt = ADAPTERS.get("dualprompt")

    out = {}
    for c in sorted(set(classes)):
        task = pixel_task(f"dp_steps_{c}", sizes.train_pool, 4, c, bb.image_size, seed=1)
        env = _env(bb, task)
        out[c] = step_time(
            DualPrompt,
            env,
            sizes.steps,
            _labeled(task, sizes.labeled),
            _labeled(task, sizes.pseudo, offset=sizes.labeled),
        )
    return out


def _selection_ctx(bb, ds: dict, seed: int, on_device: bool):
    from albench.api.adapter import AdapterEnv, ZeroShotClassifier
    from albench.api.strategy import RoundContext
    from albench.bench.synthetic import feature_task, prefilled_bank

    task = feature_task(f"sel_{ds['dataset']}", ds["pool"], ds["test"], ds["classes"])
    env = AdapterEnv(bb, task, prefilled_bank(bb, task), seed=seed, round=3)
    model = ZeroShotClassifier(env)
    model.predict_logits("pool")  # text classifier built once, outside the timings
    b = max(1, int(round(0.01 * ds["pool"])))
    labeled = np.random.default_rng(seed).choice(ds["pool"], size=2 * b, replace=False)

    def ctx():
        return RoundContext(
            round=3,
            budget=b,
            pool_size=ds["pool"],
            num_classes=ds["classes"],
            labeled=labeled,
            labels=task.pool.labels[labeled],
            rng=np.random.default_rng(seed),
            model=model,
            env=env if on_device else None,
            state={},
        )

    return ctx


def measure_selection(bb, ds: dict, strategies=BASELINES, seed: int = 1) -> dict[str, float]:
    """Seconds of one selection (round 3: 2 % labelled, zero-shot model on cached features) per strategy.

    Each strategy selects once untimed first (kernels, allocator, lazily built state), then once timed.
    """
    from albench.api.plugins import STRATEGIES

    make = _selection_ctx(bb, ds, seed, on_device=True)
    out = {}
    for s in strategies:
        STRATEGIES.get(s)().select(make())  # warm-up
        _sync(bb.device)
        strat, ctx = STRATEGIES.get(s)(), make()
        _ = ctx.features, ctx.probs  # materialised outside the timing, as the harness does
        t0 = time.perf_counter()
        strat.select(ctx)
        _sync(bb.device)
        out[s] = time.perf_counter() - t0
    return out


def check_selection_devices(
    bb, ds: dict, strategies=("coreset", "badge", "typiclust", "cec", "gcnal"), seed: int = 1
) -> list[dict]:
    """Selections on the run's device vs on the CPU from the same context and seed: the share of equal picks.

    Distances on a GPU differ from the CPU's in float rounding, so a near-tie may resolve differently;
    k-center and k-means picks are expected to agree almost everywhere, GCNAL's less (its dropout draws
    come from the device's generator).
    """
    from albench.api.plugins import STRATEGIES

    dev_ctx, cpu_ctx = _selection_ctx(bb, ds, seed, True), _selection_ctx(bb, ds, seed, False)
    rows = []
    for s in strategies:
        a = STRATEGIES.get(s)().select(dev_ctx())
        b = STRATEGIES.get(s)().select(cpu_ctx())
        rows.append(
            {
                "strategy": s,
                "dataset": ds["dataset"],
                "budget": len(a),
                "same_set_pct": round(100 * len(np.intersect1d(a, b)) / max(1, len(a)), 1),
                "same_order": bool(np.array_equal(a, b)),
            }
        )
    return rows


def measure_trajectory(bb, sizes: Sizes, ds: dict, strategy: str = "entropy", warmup: bool = True) -> dict:
    """A real CoOp AL trajectory (protocol.execute) on synthetic cached features at a dataset's sizes.

    With ``warmup`` a one-round run of the same spec goes first, untimed (CUDA context, kernels, allocator).
    """
    from albench.engine.protocol import RunSpec, Workspace, execute
    from albench.bench.synthetic import feature_task, inject, prefilled_bank

    task = feature_task(f"{ds['dataset']}_features", ds["pool"], ds["test"], ds["classes"])
    tmp = tempfile.mkdtemp(prefix="albench-gpu-")
    bank = prefilled_bank(bb, task)

    def go(rounds: int) -> tuple[dict, float]:
        spec = RunSpec(
            strategy=strategy,
            adapter="coop",
            dataset=task.name,
            rounds=rounds,
            backbone=bb.spec,
            adapter_options=dict(sizes.coop_options),
        )
        ws = Workspace(cache_dir=f"{tmp}/cache", device=str(bb.device), progress=False)
        inject(ws, spec, bb, task, bank)
        _sync(bb.device)
        t0 = time.perf_counter()
        rec = execute(spec, f"{tmp}/results", ws, overwrite=True).record
        _sync(bb.device)
        return rec, time.perf_counter() - t0

    if warmup:
        go(1)
    rec, total = go(sizes.dtd_rounds)
    rounds = [
        {"round": r["round"], "labeled": r["labeled"], "steps": r["train"]["steps"], **r["seconds"]}
        for r in rec["rounds"]
    ]
    return {
        "dataset": ds["dataset"],
        "strategy": strategy,
        "rounds": rounds,
        "total_s": total,
        "mean_round_s": sum(r["select"] + r["train"] + r["evaluate"] for r in rounds) / len(rounds),
        "mean_evaluate_s": sum(r["evaluate"] for r in rounds) / len(rounds),
    }


def measure_dtd_trajectory(bb, sizes: Sizes, ds: dict, strategy: str = "entropy") -> dict:
    return measure_trajectory(bb, sizes, ds, strategy)


# ---- several workers on one device ---------------------------------------------
def _worker_main(args: dict) -> None:
    """One worker process: build ViT-B/16, warm up, wait for the start signal, time one CoOp trajectory."""
    sizes = Sizes(
        **{
            k: tuple(v) if k in ("steps", "coop_steps", "archs", "worker_counts") else v
            for k, v in args["sizes"].items()
        }
    )
    dev = torch.device(args["device"])
    if dev.type == "cpu":
        torch.set_num_threads(1)
    bb = _backbone("ViT-B-16", sizes, dev)
    ds = args["ds"]
    measure_trajectory(bb, dataclasses.replace(sizes, dtd_rounds=1), ds, warmup=False)  # warm-up
    Path(args["ready"]).write_text("ready")
    while not Path(args["go"]).exists():
        time.sleep(0.01)
    t0 = time.perf_counter()
    measure_trajectory(bb, sizes, ds, warmup=False)
    Path(args["out"]).write_text(json.dumps({"seconds": time.perf_counter() - t0}))


def measure_workers(sizes: Sizes, dev, ds: dict, counts: tuple[int, ...] = (1, 2, 4)) -> list[dict]:
    """Throughput of W concurrent worker processes on one device, each running the same CoOp trajectory.

    Workers start, load the backbone and warm up, then are released together; the wall time from the
    release until the last one finishes gives trajectories/s. ``speedup`` = throughput(W) / throughput(1):
    how much a launch-bound workload gains from sharing the device (``albench run --workers W``).
    """
    import subprocess
    import sys

    rows = []
    base = None
    for w in counts:
        tmp = Path(tempfile.mkdtemp(prefix="albench-workers-"))
        procs = []
        for i in range(w):
            args = {
                "sizes": asdict(sizes),
                "device": str(dev),
                "ds": ds,
                "ready": str(tmp / f"ready{i}"),
                "go": str(tmp / "go"),
                "out": str(tmp / f"out{i}.json"),
            }
            code = f"import json; from albench.bench.gpu import _worker_main; _worker_main(json.loads({json.dumps(json.dumps(args))}))"
            procs.append(subprocess.Popen([sys.executable, "-c", code]))
        while not all((tmp / f"ready{i}").exists() for i in range(w)):
            if any(p.poll() not in (None, 0) for p in procs):
                raise RuntimeError(f"a benchmark worker failed (exit {[p.poll() for p in procs]})")
            time.sleep(0.05)
        t0 = time.perf_counter()
        (tmp / "go").write_text("go")
        codes = [p.wait() for p in procs]
        wall = time.perf_counter() - t0
        if any(codes):
            raise RuntimeError(f"a benchmark worker failed (exit codes {codes})")
        each = [json.loads((tmp / f"out{i}.json").read_text())["seconds"] for i in range(w)]
        thr = w / wall
        base = base or thr
        rows.append(
            {
                "workers": w,
                "wall_s": round(wall, 2),
                "per_worker_s": round(float(np.median(each)), 2),
                "trajectories_per_min": round(60 * thr, 2),
                "speedup": round(thr / base, 2),
            }
        )
    return rows


def _interp(table: dict[int, float], c: int) -> float:
    """Linear in the class count between the measured class counts (text-side cost grows with C)."""
    ks = sorted(table)
    if len(ks) == 1 or c in table:
        return table.get(c, table[ks[0]])
    lo, hi = ks[0], ks[-1]
    return table[lo] + (table[hi] - table[lo]) * (c - lo) / (hi - lo)


def coop_steps(labeled: int, options: dict | None = None) -> int:
    """Steps of one CoOp fit (``albench.components.training.train``: max(epochs·ceil(L/batch), min_steps))."""
    from albench.api.plugins import ADAPTERS

    o = {**ADAPTERS.get("coop").defaults, **(options or {})}
    return max(o["epochs"] * math.ceil(labeled / o["batch_size"]), o["min_steps"])


def dp_steps(labeled: int, pseudo: int) -> int:
    """Steps of one DualPrompt fit with its defaults (the longer of the labelled and pseudo-labelled streams)."""
    from albench.api.plugins import ADAPTERS

    o = ADAPTERS.get("dualprompt").defaults
    per = max(
        math.ceil(labeled / o["batch_size"]) if labeled else 0,
        math.ceil(pseudo / o["pseudo_batch_size"]) if pseudo else 0,
    )
    return max(o["epochs"] * per, o["min_steps"])


def project_table1(ds_list: list[dict], m: dict, rounds: int = ROUNDS, seeds: int = SEEDS) -> dict:
    """Projected Table 1 seconds from measured unit costs ``m``.

    Per dataset (N pool, T test, C classes, b = max(1, round(N/100)), L_r = r·b):
    * encode once (frozen features for every CoOp column): (N + T) / encode_rate;
    * a baseline column (strategy s + CoOp): Σ_r [sel_s + coop_steps(L_r)·t_coop(C) + eval];
      coop_steps(L) = max(epochs·ceil(L/16), min_steps) with CoOp's defaults; sel_s measured at round 3 (2 % labelled) is
      used for every round; eval = the measured CoOp evaluation time;
    * Ours_CoOp: the DualPrompt strategy trains its own model every round on
      L_{r-1} labels + 16·C pseudo-labels (dp_steps = max(epochs·max(ceil(L/16),
      ceil(16C/64)), min_steps) with DualPrompt's defaults, at t_dp(C)), scores the pool with the prompted tower
      (N / prompted_rate), then CoOp trains as above;
    * Ours: round 1 as Ours_CoOp's strategy model; every round the DualPrompt
      adapter trains on L_r labels + 16·C pseudo-labels, scores the test split
      and (rounds >= 2, reusing that model) the pool with the prompted tower;
    * t_coop(C), t_dp(C): linear in C between the measured class counts;
    * eval = ``coop_eval_per_image`` x T when calibrated (else the constant ``coop_eval_s``);
    * every round of every run adds ``round_overhead_s`` (calibration: what a measured trajectory
      spent beyond the formula's terms — building the adapter, zero-shot, records; 0 if uncalibrated).
    Total = Σ_datasets [encode once + seeds x Σ_columns run time]. ``coop_columns_s`` is the part
    spent in the baseline columns (CoOp on cached features, launch-bound on a GPU).
    """
    per = []
    total = coop_total = 0.0
    over = m.get("round_overhead_s", 0.0)
    for d in ds_list:
        n, t, c = d["pool"], d["test"], d["classes"]
        b = max(1, int(round(0.01 * n)))
        tc, tdp = _interp(m["coop_step_s"], c), _interp(m["dp_step_s"], c)
        enc = (n + t) / m["encode_rate"]
        prompted = m["prompted_rate"]
        coop_train = [coop_steps(r * b, m.get("coop_options")) * tc for r in range(1, rounds + 1)]
        ev = m["coop_eval_per_image"] * t if "coop_eval_per_image" in m else m["coop_eval_s"]
        cols = {}
        for s in BASELINES:
            cols[s] = sum(m["select_s"][d["dataset"]][s] + ct + ev + over for ct in coop_train)
        pseudo = 16 * c
        dp_model = [dp_steps((r - 1) * b, pseudo) * tdp + (n - (r - 1) * b) / prompted for r in range(1, rounds + 1)]
        cols["Ours_CoOp"] = sum(dm + ct + ev + over for dm, ct in zip(dp_model, coop_train))
        cols["Ours"] = (
            dp_model[0]
            + sum(dp_steps(r * b, pseudo) * tdp + t / prompted for r in range(1, rounds + 1))
            + sum((n - r * b) / prompted for r in range(1, rounds))
            + rounds * over
        )
        run_sum = sum(cols.values())
        ds_total = enc + seeds * run_sum
        total += ds_total
        coop_total += seeds * sum(cols[s] for s in BASELINES)
        per.append(
            {
                "dataset": d["dataset"],
                "pool": n,
                "test": t,
                "classes": c,
                "budget": b,
                "encode_once_s": round(enc, 2),
                **{f"{k}_run_s": round(v, 2) for k, v in cols.items()},
                "dataset_total_s": round(ds_total, 1),
            }
        )
    return {
        "datasets": per,
        "total_s": total,
        "total_min": total / 60,
        "coop_columns_s": coop_total,
        "runs": len(ds_list) * seeds * (len(BASELINES) + 2),
    }


def single_run_seconds(ds: dict, m: dict, strategy: str, rounds: int) -> float:
    """The formula's seconds for one baseline run (``strategy`` x CoOp) on ``ds``, features already cached."""
    one = {**m, "select_s": {ds["dataset"]: {s: m["select_s"][ds["dataset"]][strategy] for s in BASELINES}}}
    return project_table1([ds], one, rounds=rounds, seeds=1)["datasets"][0][f"{strategy}_run_s"]


def calibrate(m: dict, measured: dict, ds: dict, rounds: int) -> dict:
    """Unit costs plus the per-round overhead that makes the formula reproduce one measured trajectory.

    Evaluation becomes per test image (from the measured trajectory), and ``round_overhead_s`` =
    (measured - formula) / rounds, at least 0.
    """
    cal = {**m, "coop_eval_per_image": measured["mean_evaluate_s"] / ds["test"], "round_overhead_s": 0.0}
    gap = measured["total_s"] - single_run_seconds(ds, cal, measured["strategy"], rounds)
    cal["round_overhead_s"] = max(0.0, gap / rounds)
    return cal


def self_check(cal: dict, measured: dict, ds: dict, rounds: int, tolerance: float = 0.10) -> dict:
    """The calibrated formula against a trajectory it was NOT calibrated on (other dataset sizes, strategy)."""
    predicted = single_run_seconds(ds, cal, measured["strategy"], rounds)
    err = (predicted - measured["total_s"]) / measured["total_s"]
    return {
        "dataset": ds["dataset"],
        "strategy": measured["strategy"],
        "measured_s": round(measured["total_s"], 3),
        "predicted_s": round(predicted, 3),
        "error_pct": round(100 * err, 1),
        "within_10_pct": abs(err) <= tolerance,
    }


# ---- driver -------------------------------------------------------------------
def run_gpu(
    dry_run: bool = False, out_dir: str | Path = "reports", sizes: Sizes | None = None, device: str | None = None
) -> dict:

    sizes = sizes or (DRY_SIZES if dry_run else GPU_SIZES)
    dev = torch.device(device or ("cpu" if dry_run else "cuda"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        from albench.api.errors import AlbenchError

        raise AlbenchError("albench bench --gpu needs a CUDA GPU; use --dry-run to test the script on the CPU.")
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(1)  # tiny ops: extra intra-op threads only add contention on a shared CPU
    try:
        return _run_gpu(dry_run, out_dir, sizes, dev)
    finally:
        torch.set_num_threads(threads)


def _run_gpu(dry_run: bool, out_dir, sizes: Sizes, dev) -> dict:
    from albench.bench import machine

    t_start = time.perf_counter()
    rows = []
    ds_list = table1_datasets(sizes)
    m: dict = {}
    for arch in sizes.archs:
        bb = _backbone(arch, sizes, dev)
        rows.append(measure_encode(bb, sizes, arch))
        rows += measure_adapters(bb, sizes, arch)
        if arch == "ViT-B-16":  # Table 1's backbone
            enc = rows[-4]
            m["encode_rate"] = enc["images_per_s"]
            m["prompted_rate"] = enc["images_per_s"] * vit_flops(bb)["forward"] / vit_flops(bb, 20)["forward"]
            cs = sorted({d["classes"] for d in ds_list})
            cs = [cs[0], cs[-1]]
            m["coop_step_s"] = measure_coop_steps(bb, sizes, cs)
            m["dp_step_s"] = measure_dualprompt_steps(bb, sizes, cs)
            m["select_s"] = {d["dataset"]: measure_selection(bb, d) for d in ds_list}
            dtd = next(d for d in ds_list if d["dataset"] == "dtd")
            m["dtd_trajectory"] = measure_trajectory(bb, sizes, dtd)
            m["coop_eval_s"] = m["dtd_trajectory"]["mean_evaluate_s"]
            m["coop_options"] = dict(sizes.coop_options)
            other = next(d for d in ds_list if d["dataset"] == "eurosat")  # other N, T, C than DTD
            m["check_trajectory"] = measure_trajectory(bb, sizes, other, strategy="random")
            m["device_selection"] = check_selection_devices(bb, other) if dev.type == "cuda" else []
        del bb
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    dtd = next(d for d in ds_list if d["dataset"] == "dtd")
    other = next(d for d in ds_list if d["dataset"] == "eurosat")
    units = {k: v for k, v in m.items() if k not in ("dtd_trajectory", "check_trajectory", "device_selection")}
    cal = calibrate(units, m["dtd_trajectory"], dtd, sizes.dtd_rounds)
    check = self_check(cal, m["check_trajectory"], other, sizes.dtd_rounds)
    dtd_proj = single_run_seconds(dtd, cal, "entropy", sizes.dtd_rounds)
    workers = measure_workers(sizes, dev, dtd, counts=sizes.worker_counts)
    best = max(workers, key=lambda r: r["speedup"])
    proj = project_table1(ds_list, cal)
    serial = proj["total_s"]
    wall = {
        "serial_min": round(serial / 60, 2),
        "workers": best["workers"],
        "speedup": best["speedup"],
        "optimistic_min": round(serial / best["speedup"] / 60, 2),
        "conservative_min": round(
            ((serial - proj["coop_columns_s"]) + proj["coop_columns_s"] / best["speedup"]) / 60, 2
        ),
    }
    vpt = [r for r in rows if r["what"] == "train vpt"]
    result = {
        "dry_run": dry_run,
        "device": str(dev),
        "sizes": asdict(sizes),
        "machine": machine(),
        "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "peak_bf16_tflops": PEAK_BF16 / 1e12,
        "throughput": rows,
        "unit_costs": cal,
        "dtd_coop_trajectory": {**m["dtd_trajectory"], "projected_entropy_run_s": dtd_proj},
        "self_check": {**check, "trajectory": m["check_trajectory"]},
        "workers": workers,
        "device_selection": m["device_selection"],
        "table1_projection": {**proj, "wall": wall},
        "targets": {
            "table1_projected_min": wall["conservative_min"],
            "table1_under_30_min": wall["conservative_min"] < 30,
            "self_check_within_10_pct": check["within_10_pct"],
            "vpt_pct_peak": {r["arch"]: r["pct_peak"] for r in vpt},
            "vpt_at_least_40_pct": all(r["pct_peak"] >= 40 for r in vpt),
        },
        "wall_s": round(time.perf_counter() - t_start, 1),
        "notes": (
            "DRY RUN on the CPU with tiny sizes: tests the script; the figures mean nothing."
            if dry_run
            else "Measured on the GPU; the Table 1 time is a projection from measured unit costs (formula in "
            "albench.bench.gpu.project_table1)."
        ),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = "bench_gpu_dryrun" if dry_run else "bench_gpu"
    from albench.api.atomic import atomic_write
    from albench.engine.records import atomic_write_json
    from albench.bench import rows_to_markdown

    atomic_write_json(out / f"{stem}.json", result)
    md = [
        f"# albench bench --gpu{' --dry-run' if dry_run else ''}\n",
        result["notes"] + "\n",
        f"Device: {result['gpu'] or dev}; wall {result['wall_s']} s; peak used for %: {PEAK_BF16 / 1e12:.0f} TFLOP/s.\n",
        "## Throughput (bf16 autocast on CUDA)\n",
        rows_to_markdown(rows) + "\n",
        "## CoOp AL trajectory on cached features, DTD sizes\n",
        rows_to_markdown(m["dtd_trajectory"]["rounds"]) + "\n",
        f"Measured total {m['dtd_trajectory']['total_s']:.2f} s (after an untimed one-round warm-up); the "
        f"calibrated formula gives {dtd_proj:.2f} s for the same run (calibration: "
        f"{cal['round_overhead_s']:.3f} s overhead per round, evaluation {1e6 * cal['coop_eval_per_image']:.1f} µs "
        f"per test image).\n",
        "## Self-check: calibrated formula vs a trajectory it was not calibrated on\n",
        rows_to_markdown([check]) + "\n",
        "## Several workers on one device (CoOp trajectories, released together after warm-up)\n",
        rows_to_markdown(workers) + "\n",
        *(
            [
                "## Selection on the device vs the CPU (same context and seed)\n",
                rows_to_markdown(m["device_selection"]) + "\n",
            ]
            if m["device_selection"]
            else []
        ),
        f"## Table 1 projection (PROJECTED: {proj['runs']} runs, {SEEDS} seeds, {ROUNDS} rounds)\n",
        rows_to_markdown(proj["datasets"]) + "\n",
        f"Serial work {wall['serial_min']:.2f} min. With {wall['workers']} workers (measured speedup "
        f"{wall['speedup']}x on CoOp trajectories): {wall['conservative_min']:.2f} min if only the baseline "
        f"columns gain from sharing the device (conservative; the target figure), {wall['optimistic_min']:.2f} min "
        f"if everything does. Assumptions: docs/performance.md.\n",
    ]
    atomic_write(out / f"{stem}.md", "\n".join(md))
    return result
