"""``albench bench --section peer-protocol``: one AL round the reference-code way vs albench's way.

Both sides do the same round on the same data, in one process, interleaved:
ViT-B/16 with random weights (``BackboneSpec('ViT-B-16', 'random')``),
synthetic 224 px images (``synthetic.pixel_task``), a reduced pool; select L
samples by entropy from zero-shot CLIP, train CoOp on them, evaluate on the
test split.

* **albench, cold** (default protocol, measured in full): ``protocol.execute``
  of one round (``round_budget = L``) on an empty feature cache: pool and test
  are encoded once (inside round 1's selection, which needs zero-shot
  probabilities), CoOp trains on cached features, evaluation reads cached
  features.
* **albench, warm**: the same ``protocol.execute`` again on the cache the cold
  run filled, as every later run of a grid on that backbone and dataset finds
  it; measured in full, and it must make 0 image-encoder passes (checked).
* **reference** (PCB, kaist-dmlab/pcb, the CoOp trainer its AL loop drives):
  selection runs the image encoder over the unlabelled pool; CoOp trains for
  200 epochs of batch 32 with SGD lr 0.002 + cosine, and *every* step
  augments its batch and re-runs the frozen image encoder (no gradient through
  it) before the text encoder's forward/backward over all C prompts;
  evaluation runs the image encoder over the test split. Selection and
  evaluation are measured in full. Training is measured in ``blocks`` blocks
  of ``block_steps`` steps (each after one untimed warm-up step) and projected
  to 200 x ceil(L / 32) steps from the pooled per-step cost of all measured
  steps (at least ``timing.MIN_PROJECTION_STEPS``; every step does identical
  work). The reference is favoured: its batches come from albench's decoded
  pixel cache, not from JPEG files through a data loader, and its text
  encoder uses albench's shared-prefix path.

Timing (``albench.bench.timing``): one torch thread; process CPU time and wall
time; the three arms are repeated ``blocks`` times in alternating order; each
ratio is reference / albench per repetition, reported as median [min-max].
Encoder passes are counted by ``albench.api.accounting``.
"""

from __future__ import annotations

import math
import tempfile

import torch

from albench.bench.timing import Sample, check_projection_steps, interleaved, summary, timed

PCB_EPOCHS, PCB_BATCH, PCB_LR = 200, 32, 0.002
QUICK = {"pool": 48, "test": 16, "classes": 10, "labeled": 32, "blocks": 3, "block_steps": 7}
FULL = {"pool": 256, "test": 128, "classes": 47, "labeled": 64, "blocks": 3, "block_steps": 20}


def _coop_prompt(backbone, task, seed: int):
    """CoOp's prompt learner (16 unified context tokens), built through the adapter registry."""
    from albench.api.adapter import AdapterEnv
    from albench.api.plugins import ADAPTERS
    from albench.data.features import DataBank

    env = AdapterEnv(backbone, task, DataBank(backbone, task, cache=None), seed=seed, round=1)
    return ADAPTERS.get("coop")(env, n_ctx=16).prompt


def _reference_round(backbone, task, labeled_n: int, steps: int, seed: int = 1) -> dict:
    """PCB's round: encode pool -> entropy -> ``steps`` CoOp steps with per-step image encoding -> encode test.

    Returns the samples of selection, the measured steps and evaluation, and the pass counts.
    """
    import torch.nn.functional as F

    from albench.api import accounting
    from albench.api.adapter import accuracy
    from albench.api.seeding import torch_generator
    from albench.components.training import PixelFeed
    from albench.data.features import DataBank

    bank = DataBank(backbone, task, cache=None)  # no feature cache: the reference re-encodes everything
    out: dict = {}
    with accounting.measure() as sel_passes, timed() as sw:
        with torch.no_grad():
            feats = bank._encode_split("pool")  # the reference's forward over the unlabelled pool
            zs = backbone.text_classifier(task.prompts()).cpu()
            probs = torch.softmax(backbone.logit_scale * F.normalize(feats, dim=-1) @ zs.T, 1)
            ent = -(probs * probs.clamp_min(1e-12).log()).sum(1)
        picked = torch.argsort(ent, descending=True)[:labeled_n].numpy()
    out["select"], out["select_passes"] = sw.sample, sel_passes.get("image_encoder_images", 0)
    labels = torch.as_tensor(task.pool.labels[picked])
    torch.manual_seed(seed)
    prompt = _coop_prompt(backbone, task, seed)
    opt = torch.optim.SGD([prompt.ctx], lr=PCB_LR, momentum=0.9, weight_decay=5e-4)
    batch = min(PCB_BATCH, labeled_n)
    total = PCB_EPOCHS * math.ceil(labeled_n / batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    feed = PixelFeed(bank, "pool", augment=True, generator=torch_generator(seed, "peer-augment", 0))
    g = torch.Generator().manual_seed(seed)

    def step() -> None:
        sel = torch.randperm(labeled_n, generator=g)[:batch]
        with torch.no_grad(), backbone.autocast():
            img = backbone.encode_images(feed(picked[sel.numpy()])).float()  # frozen tower, re-run every step
        with backbone.autocast():
            text = prompt.text_features()
        logits = backbone.logit_scale * F.normalize(img, dim=-1) @ F.normalize(text.float(), dim=-1).T
        loss = F.cross_entropy(logits, labels[sel].to(logits.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()

    step()  # warm-up (allocator, kernels), not timed
    with accounting.measure() as train_passes, timed() as sw:
        for _ in range(steps):
            step()
    out.update(
        {
            "steps": sw.sample,
            "steps_measured": steps,
            "steps_total": total,
            "batch": batch,
            "train_passes_measured": train_passes.get("image_encoder_images", 0),
        }
    )
    with accounting.measure() as eval_passes, timed() as sw:
        with torch.no_grad():
            tf = bank._encode_split("test")
            with backbone.autocast():
                text = prompt.text_features().float()
            out["accuracy"] = accuracy(F.normalize(tf, dim=-1) @ F.normalize(text, dim=-1).T, task.test.labels)
    out["evaluate"], out["evaluate_passes"] = sw.sample, eval_passes.get("image_encoder_images", 0)
    return out


def _albench_round(backbone, task, labeled_n: int, cache_dir: str, results_dir: str) -> dict:
    """One ``protocol.execute`` round; the feature cache in ``cache_dir`` decides cold or warm."""
    from albench.api import accounting
    from albench.bench.synthetic import inject
    from albench.engine.protocol import RunSpec, Workspace, execute

    spec = RunSpec(
        strategy="entropy",
        adapter="coop",
        dataset=task.name,
        seed=1,
        rounds=1,
        round_budget=labeled_n,
        backbone=backbone.spec,
    )
    ws = Workspace(cache_dir=cache_dir, device=str(backbone.device), progress=False)
    inject(ws, spec, backbone, task)
    with accounting.measure() as passes, timed() as sw:
        rec = execute(spec, results_dir, ws, overwrite=True).record
    r = rec["rounds"][0]
    return {
        "round": sw.sample,
        "train_steps": r["train"]["steps"],
        "passes": passes.get("image_encoder_images", 0),
        "accuracy": r["accuracy"],
        "seconds": r["seconds"],
    }


def _cell(values: list[float], digits: int = 3) -> str:
    s = summary(values)
    return f"{s['median']:.{digits}g} [{s['min']:.{digits}g}–{s['max']:.{digits}g}]"


def run(quick: bool = False, sizes: dict | None = None, backbone_spec=None) -> dict:
    """``backbone_spec`` other than ViT-B/16 random is for tests only."""
    from albench.bench.synthetic import pixel_task
    from albench.clip.backbone import Backbone, BackboneSpec

    cfg = dict(sizes or (QUICK if quick else FULL))
    check_projection_steps(cfg["blocks"] * cfg["block_steps"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(cfg, quick, backbone_spec or BackboneSpec("ViT-B-16", "random"), Backbone, pixel_task)
    finally:
        torch.set_num_threads(threads)


def _run(cfg: dict, quick: bool, spec, Backbone, pixel_task) -> dict:
    torch.manual_seed(0)
    backbone = Backbone.load(spec, device="cpu")
    task = pixel_task("peer_synthetic", cfg["pool"], cfg["test"], cfg["classes"], backbone.image_size, seed=0)
    tmp = tempfile.mkdtemp(prefix="albench-peer-")
    warm_cache = f"{tmp}/warm-cache"
    _albench_round(backbone, task, cfg["labeled"], warm_cache, f"{tmp}/results")  # fills the cache the warm arm reads
    reps = {"n": 0}

    def cold() -> dict:
        reps["n"] += 1
        return _albench_round(backbone, task, cfg["labeled"], f"{tmp}/cold-cache-{reps['n']}", f"{tmp}/results")

    arms = interleaved(
        {
            "albench_cold": cold,
            "albench_warm": lambda: _albench_round(backbone, task, cfg["labeled"], warm_cache, f"{tmp}/results"),
            "reference": lambda: _reference_round(backbone, task, cfg["labeled"], cfg["block_steps"]),
        },
        repeats=cfg["blocks"],
    )
    ref = [r for r, _ in arms["reference"]]
    a_cold = [r for r, _ in arms["albench_cold"]]
    a_warm = [r for r, _ in arms["albench_warm"]]
    for w in a_warm:
        if w["passes"]:
            raise RuntimeError(f"the warm albench round encoded {w['passes']} images; a warm row must encode none")
    measured = sum(r["steps_measured"] for r in ref)
    check_projection_steps(measured)
    per_step = sum((r["steps"] for r in ref), Sample(0.0, 0.0)).scaled(1.0 / measured)  # pooled over all blocks
    total = ref[0]["steps_total"]
    ref_round = [r["select"] + per_step.scaled(total) + r["evaluate"] for r in ref]
    passes_ref = ref[0]["select_passes"] + ref[0]["batch"] * total + ref[0]["evaluate_passes"]
    cold_passes = a_cold[0]["passes"]

    def ratios(side: list[dict], clock: str) -> list[float]:
        return [getattr(rr, clock) / getattr(a["round"], clock) for rr, a in zip(ref_round, side)]

    r_cold_cpu, r_warm_cpu = ratios(a_cold, "cpu_s"), ratios(a_warm, "cpu_s")
    r_cold_wall, r_warm_wall = ratios(a_cold, "wall_s"), ratios(a_warm, "wall_s")
    block_step_cpu = [r["steps"].cpu_s / r["steps_measured"] for r in ref]
    rows = [
        {
            "protocol": "reference (PCB: re-encode every step, 200 epochs)",
            "select_cpu_s": _cell([r["select"].cpu_s for r in ref]),
            "train_cpu_s": round(per_step.cpu_s * total, 1),
            "train_steps": total,
            "evaluate_cpu_s": _cell([r["evaluate"].cpu_s for r in ref]),
            "round_cpu_s": _cell([s.cpu_s for s in ref_round]),
            "round_wall_s": _cell([s.wall_s for s in ref_round]),
            "image_encoder_passes": passes_ref,
            "ratio_cpu": "1",
            "ratio_wall": "1",
            "pass_ratio": 1.0,
            "train_figures": f"projected from {measured} measured steps in {len(ref)} blocks "
            f"({_cell(block_step_cpu)} CPU s/step per block, "
            f"{sum(r['train_passes_measured'] for r in ref)} passes)",
        },
    ]
    for label, side, rc, rw, passes in (
        ("albench, cold cache (encodes pool + test once)", a_cold, r_cold_cpu, r_cold_wall, cold_passes),
        ("albench, warm cache (later rounds / runs on the same data)", a_warm, r_warm_cpu, r_warm_wall, 0),
    ):
        rows.append(
            {
                "protocol": label,
                "select_cpu_s": None,
                "train_cpu_s": None,
                "train_steps": side[0]["train_steps"],
                "evaluate_cpu_s": None,
                "round_cpu_s": _cell([a["round"].cpu_s for a in side]),
                "round_wall_s": _cell([a["round"].wall_s for a in side]),
                "image_encoder_passes": passes,
                "ratio_cpu": _cell(rc),
                "ratio_wall": _cell(rw),
                "pass_ratio": round(passes_ref / passes, 1) if passes else None,
                "train_figures": "measured",
            }
        )
    notes = (
        f"{spec.arch} ({spec.pretrained or 'default'} weights), synthetic {backbone.image_size} px images, "
        f"pool {cfg['pool']}, test {cfg['test']}, C = {cfg['classes']}, one round selecting L = {cfg['labeled']} by "
        f"entropy then training CoOp; CPU, 1 torch thread. Each arm repeated {cfg['blocks']} times, interleaved "
        f"(order alternates per repetition); cells are median [min–max] over repetitions; `ratio_cpu` / "
        f"`ratio_wall`: reference / albench round, per repetition, by process CPU time / wall time (target ≥ 50× "
        f"by CPU). The reference's training is projected to {total} steps (200 epochs × ceil(L/32)) from the pooled "
        f"cost of {measured} measured steps; its selection and evaluation are measured. Its encoder passes = pool "
        f"({ref[0]['select_passes']}) + batch {ref[0]['batch']} × {total} steps + test ({ref[0]['evaluate_passes']}). "
        f"albench's rows are whole `protocol.execute` calls (building the adapter, zero-shot, selection, training, "
        f"evaluation, writing the record); the cold one encodes pool + test once ({cold_passes} passes), the warm "
        f"one reads the cache a previous run filled and encodes nothing (checked). "
        + ("Quick mode: reduced pool. " if quick else "Full mode. ")
        + "Accuracy is meaningless here (random weights, random labels); only cost is compared."
    )
    med = lambda v: round(summary(v)["median"], 1)  # noqa: E731
    return {
        "title": "Peer protocol: one AL round as the reference code does it vs albench's default",
        "rows": rows,
        "notes": notes,
        "config": cfg,
        "ratios": {
            "time_cold_cpu": med(r_cold_cpu),
            "time_warm_cpu": med(r_warm_cpu),
            "time_cold_wall": med(r_cold_wall),
            "time_warm_wall": med(r_warm_wall),
            "passes": round(passes_ref / max(1, cold_passes), 1),
        },
    }
