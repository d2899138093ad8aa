"""Shared test helpers (imported by test modules as ``helpers``; test modules never import each other).

* the small grid the crash, concurrency and determinism tests run, and what they compare;
* ``Victim``: a ``python -m albench.cli.main run`` subprocess read line by line;
* synthetic run records with known numbers for table and report tests.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from albench.cli.main import main
from albench.api.strategy import RoundContext
from albench.bench.selection import SyntheticPredictor
from albench.engine.records import read_record

#: Folder holding the test-only ``sitecustomize`` that injects crash timing (see tests/crashhooks/).
CRASH_HOOKS = Path(__file__).parent / "crashhooks"

GRID = [
    "--strategy",
    "random,entropy",
    "--adapter",
    "coop",
    "--dataset",
    "digits",
    "--seeds",
    "1,2",
    "--rounds",
    "2",
    "--adapter-opt",
    "epochs=2",
    "--adapter-opt",
    "min_steps=0",
    "--device",
    "cpu",
    "--no-progress",
]
RUNS = 4


def strip_timing(rec: dict, encoder: bool = False) -> dict:
    """A record without the fields that are timings or timestamps (and, if asked, encoder-pass counts)."""
    rec = copy.deepcopy(rec)
    rec["timing"] = None
    rec.pop("provenance", None)  # command line, host, peak memory: differ between equal runs
    # the git SHA is read once per process; a commit landing while the suite runs changes it between processes
    rec["environment"]["git_sha"] = None
    for r in rec["rounds"]:
        r["seconds"] = None
        r["train"].pop("seconds", None)
        (r.get("diagnostics") or {}).pop("seconds", None)  # the diagnostics' own wall time
        if encoder:
            r["encoder"] = None
    if encoder:
        rec["encoder_passes"] = None
    return rec


def valid_records(res: Path) -> dict[str, Path]:
    return {
        p.stem: p
        for p in res.rglob("*.json")
        if "failed" not in p.relative_to(res).parts and not p.name.startswith(".") and read_record(p)
    }


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tmp")] if root.exists() else []


def kill_while_writing(victim, root: Path, rng) -> None:
    """SIGKILL ``victim`` while its one temp file under ``root`` is written but not yet renamed."""
    victim.wait_for(lambda: len(temp_files(root)) == 1)
    time.sleep(rng.uniform(0.0, 0.3))
    assert victim.signal(signal.SIGKILL)
    victim.finish()


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def slow_write_env(seconds: float, pattern: str) -> dict[str, str]:
    """Environment for a ``Victim`` whose atomic writes of files matching ``pattern`` pause ``seconds``
    between writing the temp file and renaming it (injected by tests/crashhooks/sitecustomize.py)."""
    path = os.pathsep.join(p for p in (str(CRASH_HOOKS), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "ALBENCH_TEST_SLOW_WRITE": f"{seconds}:{pattern}"}


class Victim:
    """A ``python -m albench.cli.main run`` subprocess whose output is read line by line."""

    def __init__(self, args, extra_env=None):
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **(extra_env or {}))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "albench.cli", "run", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pred, timeout=600.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            if self.proc.poll() is not None:
                return pred()
            time.sleep(0.02)
        raise AssertionError("timed out; output so far:\n" + "\n".join(self.lines))

    def started(self):
        return any(line.startswith("grid:") for line in self.lines)

    def signal(self, sig) -> bool:
        """Send ``sig`` if the process still runs; True if it was delivered."""
        if self.proc.poll() is not None:
            return False
        self.proc.send_signal(sig)
        return True

    def finish(self, timeout=300):
        rc = self.proc.wait(timeout)
        self._t.join(10)
        return rc, "\n".join(self.lines)


# accuracy at round r for (column strategy, adapter) and seed: base + r + seed offset
BASE = {
    ("random", "coop"): 40.0,
    ("coreset", "coop"): 41.0,
    ("badge", "coop"): 45.0,
    ("dualprompt", "coop"): 47.0,
    ("dualprompt", "dualprompt"): 50.0,
}
SEED_OFF = {1: -1.0, 2: 0.0, 3: 1.0}
DATASET_SHIFT = {
    "toy_shapes": 10.0,
    "toy_textures": 0.0,
    "toy_shifted": -10.0,
    "toy_patterns": -15.0,
    "toy_fine": -5.0,
    "digits": 5.0,
}


def make_record(root: Path, dataset, strategy, adapter, seed, accs, zs=30.0, epochs=20, arch="toy-clip"):
    config = {
        "strategy": strategy,
        "adapter": adapter,
        "dataset": dataset,
        "adapter_options": {"epochs": epochs},
        "backbone": f"{arch}-id",
        "seed": seed,
        "protocol": {"rounds": len(accs), "round_fraction": 0.01, "round_budget": None},
    }
    chash = f"{abs(hash(json.dumps(config, sort_keys=True))) % 10**12:012d}"
    rounds = [
        {
            "round": r,
            "labeled": 10 * r,
            "budget_pct": float(r),
            "accuracy": a,
            "classes_covered": min(8, 3 + r),
            "seconds": {"select": 0.01 * r, "train": 0.1, "evaluate": 0.01},
        }
        for r, a in enumerate(accs, 1)
    ]
    rec = {
        "schema": 1,
        "run_id": f"{strategy}__{adapter}__seed{seed}__{chash}",
        "config_hash": chash,
        "config": config,
        "label": strategy,
        "strategy": strategy,
        "adapter": adapter,
        "dataset": dataset,
        "seed": seed,
        "num_classes": 8,
        "zero_shot_accuracy": zs,
        "backbone": {"arch": arch},
        "rounds": rounds,
        "timing": {"total_seconds": 1.0, "finished_at": f"2026-01-0{seed}T00:00:00"},
        "environment": {},
        "device": "cpu",
    }
    path = root / dataset / f"{rec['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec))
    return path


def ctx_from(logits, feats, classifier=None, labeled=(), labels=(), budget=3, seed=0) -> RoundContext:
    """A round-2 selection context over fixed logits and features (classifier: identity rows by default)."""
    logits = np.asarray(logits, dtype=np.float32)
    feats = np.asarray(feats, dtype=np.float32)
    c = logits.shape[1]
    w = np.eye(c, feats.shape[1], dtype=np.float32) if classifier is None else classifier
    return RoundContext(
        round=2,
        budget=budget,
        pool_size=len(logits),
        num_classes=c,
        labeled=np.asarray(labeled, int),
        labels=np.asarray(labels, int),
        rng=np.random.default_rng(seed),
        model=SyntheticPredictor(logits, feats, w),
    )


def direct_alfamix_candidates(z, probs, w, anchors, cap):
    """The closed form as written in the paper/reference: α per class, mix, re-classify."""
    z = np.asarray(z, dtype=np.float64)
    yhat = (z @ w.T).argmax(1)
    g = (probs - np.eye(w.shape[0])[yhat]) @ w  # ∇_z CE(s·z·Wᵀ, ŷ) up to the positive factor s
    eps = cap / np.sqrt(z.shape[1])
    cand = np.zeros(len(z), dtype=bool)
    for a in anchors:
        diff = a[None, :] - z
        alpha = (eps * np.linalg.norm(diff, axis=1) / np.linalg.norm(g, axis=1))[:, None] * g / (diff + 1e-8)
        mix = (1 - alpha) * z + alpha * a[None, :]
        cand |= (mix @ w.T).argmax(1) != yhat
    return cand
