"""Shared pieces of the harness / peer-protocol / scaling / GPU bench sections.

* ``feature_task``: a ``Task`` whose images are never decoded (``NeverDecoded``
  raises if anything asks for pixels) — for benchmarks of what runs on cached
  features only (CoOp, zero-shot, feature-space strategies) at pool sizes no
  real image set on this machine has.
* ``PrefilledBank``: a ``DataBank`` whose frozen-feature matrices are given up
  front (synthetic, clustered by class) instead of encoded; it refuses to
  encode anything else, so a run that would have needed the image tower fails
  loudly instead of silently measuring something else.
* ``pixel_task``: a task of synthetic uint8 images at a given resolution (the
  peer-protocol and GPU sections push them through a real ViT).
* ``inject``: puts a backbone / task / bank into a ``Workspace`` under the keys
  ``protocol.execute`` looks them up by, so the real harness code path runs on
  them (records, timings, encoder-pass accounting all unchanged).
* ``RssPeak``: peak resident memory of this process during a block, sampled by
  a thread every ``interval`` seconds (Linux ``/proc/self/statm``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import threading
import time

import numpy as np
import torch

from albench.api.errors import AlbenchError
from albench.data.features import DataBank
from albench.data.tasks import ArraySource, Split, Task


class NeverDecoded:
    """An ImageSource of ``n`` images that exist only as pre-computed features."""

    def __init__(self, n: int, tag: str):
        self.n, self.tag = int(n), tag

    def __len__(self) -> int:
        return self.n

    def fingerprint(self) -> str:
        return hashlib.sha256(f"synthetic-features|{self.tag}|{self.n}".encode()).hexdigest()[:16]

    def load(self, indices, size):
        raise AlbenchError(f"synthetic feature task '{self.tag}': its images are never decoded (features only).")


def class_names(c: int) -> list[str]:
    return [f"class {i}" for i in range(c)]


def feature_task(name: str, n_pool: int, n_test: int, n_classes: int, seed: int = 0) -> Task:
    rng = np.random.default_rng(seed)
    pool = Split(NeverDecoded(n_pool, f"{name}/pool/{seed}"), rng.integers(0, n_classes, n_pool))
    test = Split(NeverDecoded(n_test, f"{name}/test/{seed}"), rng.integers(0, n_classes, n_test))
    return Task(
        name=name,
        classnames=class_names(n_classes),
        template="a photo of a {}.",
        pool=pool,
        test=test,
        meta={"synthetic": "cached features only"},
    )


def clustered_features(labels: np.ndarray, n_classes: int, dim: int, seed: int = 0, noise: float = 0.6) -> torch.Tensor:
    """Features like a CLIP tower's: a shared direction + a class centre + isotropic noise (float32)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(n_classes, dim, generator=g), dim=-1)
    shared = torch.nn.functional.normalize(torch.randn(dim, generator=g), dim=-1)
    lab = torch.as_tensor(labels, dtype=torch.long)
    x = shared + centres[lab] + noise * torch.randn(len(lab), dim, generator=g) / dim**0.5
    return x.float()


class PrefilledBank(DataBank):
    """A DataBank whose frozen features are given, never encoded."""

    def __init__(self, backbone, task, features: dict[str, torch.Tensor]):
        super().__init__(backbone, task, cache=None)
        for split, f in features.items():
            if f.shape != (len(task.split(split)), backbone.embed_dim):
                raise ValueError(
                    f"prefilled {split} features {tuple(f.shape)} do not match "
                    f"({len(task.split(split))}, {backbone.embed_dim})"
                )
        self._features.update(features)

    def features(self, split: str) -> torch.Tensor:
        if split not in self._features:
            raise AlbenchError(f"PrefilledBank has no '{split}' features and never encodes images.")
        return self._features[split]


def prefilled_bank(backbone, task: Task, seed: int = 0) -> PrefilledBank:
    feats = {
        s: clustered_features(task.split(s).labels, task.num_classes, backbone.embed_dim, seed=seed + i)
        for i, s in enumerate(("pool", "test"))
    }
    return PrefilledBank(backbone, task, feats)


def pixel_task(name: str, n_pool: int, n_test: int, n_classes: int, size: int, seed: int = 0) -> Task:
    """Synthetic uint8 images (size x size, smooth random blobs + noise) with random labels."""
    rng = np.random.default_rng(seed)

    def images(n: int) -> np.ndarray:
        low = rng.integers(0, 256, (n, 8, 8, 3)).astype(np.float32)
        up = torch.nn.functional.interpolate(
            torch.from_numpy(low).permute(0, 3, 1, 2), size=(size, size), mode="bilinear", align_corners=False
        )
        up = up + torch.from_numpy(rng.normal(0, 12, (n, 3, size, size)).astype(np.float32))
        return up.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()

    pool = Split(ArraySource(images(n_pool)), rng.integers(0, n_classes, n_pool))
    test = Split(ArraySource(images(n_test)), rng.integers(0, n_classes, n_test))
    return Task(name=name, classnames=class_names(n_classes), template="a photo of a {}.", pool=pool, test=test)


def inject(ws, spec, backbone=None, task: Task | None = None, bank: DataBank | None = None) -> None:
    """Make ``protocol.execute(spec, ..., ws)`` use these objects (same lookup keys as ``Workspace``)."""
    from albench.engine.protocol import canonical

    if backbone is not None:
        ws._backbones[canonical(dataclasses.asdict(spec.backbone))] = backbone
    if task is not None:
        ws._tasks[(spec.dataset, spec.data_root, canonical(spec.dataset_options or {}))] = task
    if bank is not None:
        ident = getattr(bank.backbone, "compute_identity", bank.backbone.identity)  # Workspace.bank's key
        ws._banks[(ident, bank.task.name, bank.task.fingerprint())] = bank


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssPeak:
    """``with RssPeak() as m: ...`` then ``m.peak_above_start`` (bytes); ``m.reset()`` restarts the baseline."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.start = self.peak = 0
        self._stop = threading.Event()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def reset(self) -> None:
        self.start = self.peak = rss_bytes()

    def __enter__(self) -> "RssPeak":
        self.reset()
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def peak_above_start(self) -> int:
        return max(0, self.peak - self.start)


def exponent(n1: float, t1: float, n2: float, t2: float) -> float | None:
    """Empirical growth exponent k in t ∝ N^k between two sizes."""
    if t1 <= 0 or t2 <= 0 or n1 == n2:
        return None
    return float(np.log(t2 / t1) / np.log(n2 / n1))
