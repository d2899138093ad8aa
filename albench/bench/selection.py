"""``albench bench --section selection``: selection time and peak memory per strategy.

Every registered strategy that works from features and predictions selects
B = 1 % of N from a synthetic pool (N samples, D = 512, C = 100) that looks like
CLIP output: L2-normalised features = normalise(shared direction + class centre +
noise), logits = 100 · cosine to normalised class weights near the class centres.
The context is round 2 with 1 % already labelled (so strategies that need labels
run their real path). No CLIP model is involved: ``SyntheticPredictor`` is the
lightweight stand-in any ``RoundContext`` accepts.

Each (strategy, N) is measured in a fresh subprocess so peak memory (the resident
set sampled during ``select()``, above its level when ``select()`` started) is
attributable;
``torch`` and BLAS use one thread (``ALBENCH_BENCH_THREADS`` to change; compare
ratios, not absolute seconds: the machine is shared). Quick mode: N = 10k; full mode: 10k,
100k and 1M for the strategies whose inputs fit in memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

D, C = 512, 100
QUICK_SIZES = (10_000,)  # one size keeps `albench bench --quick` within 15 minutes on 2 cores
FULL_SIZES = (10_000, 100_000, 1_000_000)
# strategies measured at 1M (the others are either quadratic by design or too slow there)
AT_1M = ("random", "entropy", "margin", "least-confidence", "coreset", "badge")
SKIP = ("dualprompt",)  # trains its own CLIP prompt model: not a feature-space selection
TIMEOUT_S = 600
# one BLAS thread per measurement: on a shared 2-core machine, multi-threaded BLAS spin-waits
# against other processes and makes timings several times slower and far noisier
THREADS = int(os.environ.get("ALBENCH_BENCH_THREADS", "1"))


class SyntheticPredictor:
    """A Predictor (``predict_logits`` / ``image_features`` / ``classifier``) over fixed arrays."""

    def __init__(self, logits: np.ndarray, features: np.ndarray, classifier: np.ndarray):
        self._logits = torch.as_tensor(np.asarray(logits, dtype=np.float32))
        self._features = torch.as_tensor(np.asarray(features, dtype=np.float32))
        self._classifier = torch.as_tensor(np.asarray(classifier, dtype=np.float32))

    def _take(self, t: torch.Tensor, split: str, indices) -> torch.Tensor:
        if split != "pool":
            raise ValueError(f"SyntheticPredictor only has the 'pool' split, not '{split}'")
        return t if indices is None else t[torch.as_tensor(np.asarray(indices), dtype=torch.long)]

    def predict_logits(self, split: str, indices=None) -> torch.Tensor:
        return self._take(self._logits, split, indices)

    def image_features(self, split: str, indices=None) -> torch.Tensor:
        return self._take(self._features, split, indices)

    def classifier(self) -> torch.Tensor:
        return self._classifier


def synthetic_pool(
    n: int, d: int = D, c: int = C, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features (n, d) float32 normalised, logits (n, c) float32, classifier (c, d), true labels (n,))."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=d)
    shared /= np.linalg.norm(shared)
    centres = rng.normal(size=(c, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = rng.integers(0, c, size=n)
    feats = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        e = min(n, s + step)
        f = 1.0 * shared + 0.8 * centres[y[s:e]] + rng.normal(scale=0.9 / np.sqrt(d), size=(e - s, d)) * 1.5
        feats[s:e] = f / np.linalg.norm(f, axis=1, keepdims=True)
    w = 1.0 * shared + 0.8 * centres + rng.normal(scale=0.3 / np.sqrt(d), size=(c, d))
    w = (w / np.linalg.norm(w, axis=1, keepdims=True)).astype(np.float32)
    logits = np.empty((n, c), dtype=np.float32)
    for s in range(0, n, step):
        logits[s : s + step] = 100.0 * feats[s : s + step] @ w.T
    return feats, logits, w, y


def synthetic_context(
    n: int, seed: int = 0, labeled_fraction: float = 0.01, budget_fraction: float = 0.01, d: int = D, c: int = C
):
    """A round-2 RoundContext over a synthetic pool (1 % labelled at random)."""
    from albench.api.strategy import RoundContext

    feats, logits, w, y = synthetic_pool(n, d, c, seed)
    rng = np.random.default_rng(seed + 1)
    labeled = rng.choice(n, size=max(1, int(round(labeled_fraction * n))), replace=False)
    return RoundContext(
        round=2,
        budget=max(1, int(round(budget_fraction * n))),
        pool_size=n,
        num_classes=c,
        labeled=labeled,
        labels=y[labeled],
        rng=np.random.default_rng(seed + 2),
        model=SyntheticPredictor(logits, feats, w),
    )


def _max_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def measure_one(name: str, n: int) -> dict:
    """Build the pool, then time ``select`` (context arrays materialised first)."""
    from albench.api.plugins import STRATEGIES

    ctx = synthetic_context(n)
    _ = ctx.logits, ctx.probs, ctx.features, ctx.classifier, ctx.unlabeled  # inputs, not selection cost
    strategy = STRATEGIES.get(name)()
    from albench.bench.synthetic import RssPeak

    # sampled resident set during select(): ru_maxrss alone would hide a selection whose peak stays
    # below the one reached while the inputs were built
    with RssPeak() as mem:
        t0 = time.perf_counter()
        picked = strategy.select(ctx)
        seconds = time.perf_counter() - t0
    from albench.api.strategy import check_selection

    check_selection(name, picked, ctx)
    return {
        "seconds": round(seconds, 3),
        "peak_extra_mib": round(mem.peak_above_start / 2**20, 1),
        "peak_rss_mib": round(max(_max_rss_mib(), mem.peak / 2**20), 1),
    }


def _measure_subprocess(name: str, n: int, timeout: int) -> dict:
    code = (
        "import json, sys; from albench.bench.selection import measure_one; "
        f"print('RESULT ' + json.dumps(measure_one({name!r}, {n})))"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)},
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout > {timeout} s"}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": f"exit {out.returncode}: {tail[0][:200]}"}


def run(quick: bool = True, strategies: list[str] | None = None, sizes: tuple[int, ...] | None = None) -> dict:
    from albench.api.plugins import STRATEGIES

    names = strategies or [s for s in STRATEGIES.names() if s not in SKIP]
    sizes = sizes or (QUICK_SIZES if quick else FULL_SIZES)
    rows = []
    for n in sizes:
        for name in names:
            if n >= 1_000_000 and name not in AT_1M:
                continue
            r = _measure_subprocess(name, n, timeout=300 if quick else TIMEOUT_S)
            row = {
                "strategy": name,
                "N": n,
                "B": max(1, round(0.01 * n)),
                "seconds": r.get("seconds"),
                "peak_extra_MiB": r.get("peak_extra_mib"),
                "peak_rss_MiB": r.get("peak_rss_mib"),
            }
            if "error" in r:
                row["note"] = r["error"]
            rows.append(row)
            print(f"  selection: {name:18s} N={n:>9,} {r}", file=sys.stderr, flush=True)
    notes = (
        f"Synthetic CLIP-like pool: D={D}, C={C}, 1 % labelled (round 2), B = 1 % of N, seed 0. "
        f"One BLAS thread per measurement (ALBENCH_BENCH_THREADS={THREADS}). "
        "`seconds` is `select()` wall time after the context's logits/features are materialised; "
        "`peak_extra_MiB` is the peak resident set during `select()` (sampled every 2 ms) above the resident set "
        "when `select()` started (inputs excluded; they take about N·(D+2C)·4 bytes); `peak_rss_MiB` is the "
        "process's peak, inputs included. Each cell runs in a fresh process. "
        f"Not measured: {', '.join(SKIP)} (trains its own prompt model each round); at 1M only "
        f"{', '.join(AT_1M)} (the rest are measured up to 100k). "
        "Targets at N=100k: feature-space strategies < 30 s and < 4 GiB."
    )
    return {"title": "Selection time and peak memory per strategy (synthetic features)", "rows": rows, "notes": notes}
