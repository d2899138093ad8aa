"""Does a suite sit in the regime the paper's tables live in? (``albench toy regime``)

Real CLIP on the paper's datasets has a recognisable shape: moderate zero-shot
accuracy, image features that already carry the classes (a linear probe on
frozen features beats zero-shot by a wide margin; Radford et al. 2021, Fig. 10),
and a few labels fix the text side (CoOp at a few shots beats zero-shot on
most datasets; Zhou et al., IJCV 2022, Fig. 3). Per task this measures:

(a) zero-shot accuracy on the test split; it should lie in [25 %, 85 %];
(b) a linear probe on frozen, L2-normalised image features trained on every
    pool label: scikit-learn's logistic regression with C picked on a
    stratified 20 % hold-out of the pool (the CLIP paper's protocol), refit on
    the whole pool; it should beat zero-shot by >= 15 points;
(c) Random x CoOp at 5 % labels, mean over the seeds; it should reach
    zero-shot on at least all but one task. The 5 % are drawn in one round
    (``round_fraction=0.05, rounds=1``), which has the distribution of the
    protocol's five 1 % random rounds; records go to a results directory, so an
    interrupted measurement resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from albench.api.adapter import AdapterEnv, ZeroShotClassifier, accuracy
from albench.clip.backbone import BackboneSpec
from albench.engine.protocol import RunSpec, Workspace, execute

ZS_RANGE = (25.0, 85.0)
PROBE_MARGIN = 15.0
PROBE_CS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


@dataclass
class TaskRegime:
    task: str
    classes: int
    zero_shot: float
    linear_probe: float
    probe_c: float
    coop: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def coop_mean(self) -> float:
        return float(np.mean(self.coop)) if self.coop else float("nan")

    @property
    def a(self) -> bool:
        return ZS_RANGE[0] <= self.zero_shot <= ZS_RANGE[1]

    @property
    def b(self) -> bool:
        return self.linear_probe >= self.zero_shot + PROBE_MARGIN

    @property
    def c(self) -> bool:
        return bool(self.coop) and self.coop_mean >= self.zero_shot


def linear_probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, seed: int = 0
) -> tuple[float, float]:
    """Test accuracy (%) of a logistic-regression probe and the C it picked on a hold-out."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    def norm(x):
        return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)

    train_x, test_x = norm(train_x), norm(test_x)
    counts = np.bincount(train_y)
    strat = train_y if counts[counts > 0].min() >= 2 else None
    fx, vx, fy, vy = train_test_split(train_x, train_y, test_size=0.2, random_state=seed, stratify=strat)
    best_c, best = PROBE_CS[0], -1.0
    for c in PROBE_CS:
        acc = LogisticRegression(C=c, max_iter=2000).fit(fx, fy).score(vx, vy)
        if acc > best:
            best_c, best = c, acc
    clf = LogisticRegression(C=best_c, max_iter=2000).fit(train_x, train_y)
    return float(clf.score(test_x, test_y) * 100.0), best_c


def measure_task(
    name: str, ws: Workspace, backbone: BackboneSpec, results_dir: Path | None, seeds=(1, 2, 3), budget: float = 0.05
) -> TaskRegime:
    t0 = time.perf_counter()
    bb = ws.backbone(backbone)
    task = ws.task(name, None)
    bank = ws.bank(bb, task)
    zs = accuracy(ZeroShotClassifier(AdapterEnv(bb, task, bank)).predict_logits("test"), task.test.labels)
    lp, c = linear_probe(
        bank.features("pool").float().cpu().numpy(),
        np.asarray(task.pool.labels),
        bank.features("test").float().cpu().numpy(),
        np.asarray(task.test.labels),
    )
    out = TaskRegime(name, task.num_classes, zs, lp, c)
    if results_dir is not None:
        for seed in seeds:
            spec = RunSpec("random", "coop", name, seed, backbone=backbone, rounds=1, round_fraction=budget)
            rec = execute(spec, results_dir, ws).record
            if rec is not None:
                out.coop.append(float(rec["rounds"][-1]["accuracy"]))
    out.seconds = time.perf_counter() - t0
    return out


def measure(
    tasks,
    backbone: BackboneSpec | None = None,
    results_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    seeds=(1, 2, 3),
    budget: float = 0.05,
    on_task=None,
) -> list[TaskRegime]:
    ws = Workspace(cache_dir, progress=False)
    out = []
    for name in tasks:
        r = measure_task(
            name, ws, backbone or BackboneSpec(), Path(results_dir) if results_dir else None, seeds, budget
        )
        out.append(r)
        if on_task is not None:
            on_task(r)
    return out


def to_markdown(rows: list[TaskRegime], budget: float = 0.05) -> str:
    pct = f"{budget * 100:g} %"
    lines = [
        f"| task | classes | zero-shot % | linear probe % (C) | Random x CoOp {pct} (mean of seeds) | "
        f"(a) zs in [{ZS_RANGE[0]:g}, {ZS_RANGE[1]:g}] | (b) probe >= zs + {PROBE_MARGIN:g} | (c) CoOp >= zs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        coop = f"{r.coop_mean:.1f} ({', '.join(f'{a:.1f}' for a in r.coop)})" if r.coop else "not run"
        lines.append(
            f"| {r.task} | {r.classes} | {r.zero_shot:.1f} | {r.linear_probe:.1f} ({r.probe_c:g}) | {coop} | "
            f"{'yes' if r.a else 'NO'} | {'yes' if r.b else 'NO'} | "
            f"{('yes' if r.c else 'NO') if r.coop else '-'} |"
        )
    n_c = sum(r.c for r in rows)
    ran = sum(bool(r.coop) for r in rows)
    lines.append("")
    lines.append(
        f"(a) holds on {sum(r.a for r in rows)}/{len(rows)} tasks; (b) on {sum(r.b for r in rows)}/{len(rows)}; "
        f"(c) on {n_c}/{ran} (needed: all but one)."
        if ran
        else f"(a) holds on {sum(r.a for r in rows)}/{len(rows)} tasks; (b) on {sum(r.b for r in rows)}/{len(rows)}; "
        f"(c) not measured."
    )
    return "\n".join(lines)


def holds(rows: list[TaskRegime]) -> bool:
    ran = [r for r in rows if r.coop]
    return all(r.a and r.b for r in rows) and (not ran or sum(r.c for r in ran) >= len(ran) - 1)
