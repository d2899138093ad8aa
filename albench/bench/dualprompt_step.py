"""``albench bench --section dualprompt-step``: a DualPrompt training step against its FLOP floor, and
the floor of toy Table 1's "Ours" columns that follows from it.

A DualPrompt step (the paper's method, ``adapters/dualprompt.py``) runs the prompted image tower
forward and backward on 16 labelled + 64 pseudo-labelled images and both prompt sets through the
text tower; unlike CoOp it cannot read cached features. Its FLOPs are counted with
``torch.utils.flop_counter`` on one step of ``DualPrompt.fit`` as executed, and divided by the best
single-thread matrix-multiply rate of the process (``coop_step.gemm_rate``) for the floor; the
measured CPU time per step over that floor is the step's overhead.

**Projection.** In toy Table 1 every "Ours" run trains 7 DualPrompt models of ``min_steps`` (200)
steps (the strategy's round-1 model, then one adapter per round, which the strategy reuses) and every
"Ours_CoOp" run 6 (the strategy's own model each round), over 6 tasks x 3 seeds. Those steps times
each task's floor give the CPU seconds the two columns need at the floor, and half of it is the wall
time on 2 cores: a lower bound for toy Table 1 that no scheduling can beat.
"""

from __future__ import annotations

import numpy as np

from albench.bench.timing import REPEATS, one_torch_thread, summary, timed

TABLE1_TASKS = ("toy_shapes", "toy_textures", "toy_shifted", "toy_patterns", "toy_fine", "digits")
QUICK = {"tasks": TABLE1_TASKS, "block_steps": 10, "warmup": 2, "repeats": REPEATS, "seeds": 3, "cores": 2}
FULL = {**QUICK, "block_steps": 20}
TRAININGS_PER_RUN = {"Ours": 7, "Ours_CoOp": 6}


def _adapter(ws, task_name: str, steps: int):
    from albench.api.adapter import AdapterEnv, Labeled
    from albench.api.plugins import ADAPTERS
    from albench.clip.backbone import BackboneSpec

    bb = ws.backbone(BackboneSpec())
    task = ws.task(task_name, None)
    env = AdapterEnv(bb, task, ws.bank(bb, task), seed=4, round=3)
    ad = ADAPTERS.get("dualprompt")(env, min_steps=steps, epochs=1)
    labels = np.asarray(task.pool.labels)
    lab = Labeled(np.arange(16), labels[:16])  # one labelled batch of 16 and one pseudo batch of 64 per step
    ps = Labeled(np.arange(16, 80), labels[16:80])
    return ad, lab, ps


def measure_task(ws, task_name: str, cfg: dict, rate: float) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    ad, lab, ps = _adapter(ws, task_name, 1)
    with FlopCounterMode(display=False) as fc:
        ad.fit(lab, ps)
    flops = fc.get_total_flops()
    ad, lab, ps = _adapter(ws, task_name, cfg["warmup"])
    ad.fit(lab, ps)
    per_step = []
    for _ in range(cfg["repeats"]):
        ad, lab, ps = _adapter(ws, task_name, cfg["block_steps"])
        with timed() as sw:
            ad.fit(lab, ps)
        per_step.append(sw.sample.cpu_s / cfg["block_steps"])
    s = summary(per_step)
    floor_s = flops / rate
    return {
        "task": task_name,
        "classes": ws.task(task_name, None).num_classes,
        "step_gflop": round(flops / 1e9, 2),
        "floor_ms": round(1e3 * floor_s, 1),
        "cpu_ms": f"{1e3 * s['median']:.4g} [{1e3 * s['min']:.4g}–{1e3 * s['max']:.4g}]",
        "floor_ratio": round(s["median"] / floor_s, 2),
        "_floor_s": floor_s,
        "_cpu_s": s["median"],
    }


def run(quick: bool = False, **overrides) -> dict:
    """``overrides`` replace entries of the QUICK / FULL configuration (tests use small ones)."""
    from albench.bench.coop_step import gemm_rate
    from albench.engine.protocol import Workspace

    cfg = {**(QUICK if quick else FULL), **overrides}
    with one_torch_thread():
        ws = Workspace(device="cpu", progress=False)
        rate = gemm_rate([(80 * 85, 96, 384), (1024, 1024, 1024)], repeats=cfg["repeats"])
        rows = [measure_task(ws, t, cfg, rate) for t in cfg["tasks"]]
    steps_per_task = cfg["seeds"] * sum(TRAININGS_PER_RUN.values()) * 200
    floor_cpu = sum(r.pop("_floor_s") * steps_per_task for r in rows)
    measured_cpu = sum(r.pop("_cpu_s") * steps_per_task for r in rows)
    for r in rows:
        r["gemm_gflops"] = round(rate / 1e9, 1)
    projection = {
        "task": f"toy Table 1 Ours + Ours_CoOp ({len(rows)} tasks)",
        "floor_ms": None,
        "cpu_ms": None,
        "floor_ratio": round(measured_cpu / floor_cpu, 2) if floor_cpu else None,
        "columns_floor_cpu_s": round(floor_cpu),
        "columns_floor_wall_min": round(floor_cpu / cfg["cores"] / 60, 1),
        "columns_measured_cpu_s": round(measured_cpu),
        "columns_measured_wall_min": round(measured_cpu / cfg["cores"] / 60, 1),
    }
    notes = (
        "One DualPrompt training step at the adapter's defaults (20 shallow visual tokens, 16 + 16 context "
        "tokens, 16 labelled + 64 pseudo-labelled images, no augmentation at 32 px) on the toy CLIP, CPU, 1 torch "
        "thread. `step_gflop`: FLOPs of one step counted by `torch.utils.flop_counter` (forward + backward, "
        "image and text towers). `floor_ms` = those FLOPs / `gemm_gflops`, the best single-thread fp32 "
        "matrix-multiply rate of this process. `cpu_ms`: CPU milliseconds per step, median [min–max] of "
        f"{cfg['repeats']} blocks of {cfg['block_steps']} steps after {cfg['warmup']} warm-up steps; "
        "`floor_ratio` = cpu / floor. Last row: the two DualPrompt columns of toy Table 1 "
        f"({cfg['seeds']} seeds; Ours {TRAININGS_PER_RUN['Ours']} and Ours_CoOp {TRAININGS_PER_RUN['Ours_CoOp']} "
        "trainings of 200 steps per run, as every committed record shows) at the floor and at the measured "
        f"step time; wall minutes = CPU seconds / {cfg['cores']} cores. Evaluation, selection and the other "
        "columns come on top."
    )
    ratios = {f"{r['task']}_floor_ratio": r["floor_ratio"] for r in rows}
    return {
        "title": "DualPrompt training step against its FLOP floor (CPU), and the floor of toy Table 1's Ours columns",
        "rows": [*rows, projection],
        "notes": notes,
        "ratios": ratios,
    }
