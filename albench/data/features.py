"""Frozen-encoder feature cache and the per-run data bank.

Features are computed once per (backbone identity, split content, view) and
stored as safetensors with a metadata header (key, shape, sha256 of the data);
a file whose header or checksum does not match is deleted and rebuilt, never
read as data. A file lock makes concurrent runners compute each entry once;
writes go through the one atomic writer (``albench.api.atomic``); temp files of
a writer that was killed are removed by the next writer of that entry (under the lock).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from albench.api import accounting, atomic
from albench.api.errors import AlbenchError

ENV_CACHE = "ALBENCH_CACHE"
#: Counter of images encoded to fill the frozen-feature cache (also counted as image-encoder images).
CACHE_FILL = "feature_cache_images"


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "albench"


def _sha(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


class FeatureCache:
    """Directory of cached feature matrices, shared safely between processes."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_cache_dir()

    def _ensure_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe", delete=True)
            probe.close()
        except OSError as exc:
            raise AlbenchError(
                f"Cache directory {self.root} is not writable ({exc.strerror}). "
                f"Pass --cache-dir or set {ENV_CACHE} to a writable directory."
            ) from exc

    def path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        return self.root / "features" / f"{digest}.safetensors"

    def load(self, key: str) -> torch.Tensor | None:
        """The cached tensor for ``key``, or None (a corrupt file is removed)."""
        from safetensors import safe_open

        p = self.path(key)
        if not p.exists():
            return None
        try:
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
                t = f.get_tensor("features")
            if (
                meta.get("key") != key
                or json.loads(meta.get("shape", "null")) != list(t.shape)
                or meta.get("sha256") != _sha(t)
            ):
                raise ValueError("header or checksum mismatch")
            return t
        except Exception:
            p.unlink(missing_ok=True)
            return None

    def save(self, key: str, t: torch.Tensor) -> None:
        from safetensors.torch import save

        t = t.detach().cpu().contiguous()
        data = save({"features": t}, metadata={"key": key, "shape": json.dumps(list(t.shape)), "sha256": _sha(t)})
        atomic.atomic_write(self.path(key), data)

    def get_or_compute(self, key: str, compute) -> torch.Tensor:
        hit = self.load(key)
        if hit is not None:
            return hit
        from filelock import FileLock

        self._ensure_writable()
        lock = FileLock(str(self.path(key)) + ".lock")
        with lock:
            hit = self.load(key)  # another process may have finished it while we waited
            if hit is not None:
                return hit
            atomic.remove_stale_temps(self.path(key))  # left by a killed writer; we hold the entry's lock
            t = compute()
            self.save(key, t)
            return t


class DataBank:
    """A run's access to a task's images: cached frozen features and decoded pixels.

    ``features(split)`` returns the frozen image encoder's (un-normalised)
    features of every image in the split, computed at most once per backbone
    across all runs that share the cache. ``pixels(split, idx)`` returns
    normalised image tensors from a per-process decoded-pixel cache, for
    adapters that prompt the image encoder.
    """

    def __init__(
        self, backbone, task, cache: FeatureCache | None = None, batch_size: int = 256, progress: bool = False
    ):
        self.backbone, self.task, self.cache = backbone, task, cache
        self.batch_size, self.progress = batch_size, progress
        self._features: dict[str, torch.Tensor] = {}
        self._pixels: dict[str, torch.Tensor] = {}
        self._device_pixels: dict[str, torch.Tensor] = {}
        self._views: dict[tuple, torch.Tensor] = {}

    def feature_key(self, split: str, view: str = "eval") -> str:
        src = self.task.split(split).source
        # compute_identity: weights + activation + device type + precision (bf16 GPU features never
        # stand in for fp32 CPU ones)
        return (
            f"v2|{self.backbone.compute_identity}|{self.task.name}|{split}|{src.fingerprint()}|"
            f"{self.backbone.image_size}|{view}"
        )

    @torch.no_grad()
    def _encode_split(self, split: str) -> torch.Tensor:
        src = self.task.split(split).source
        n = len(src)
        out = []
        it = range(0, n, self.batch_size)
        if self.progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=f"encoding {self.task.name}/{split}", unit="batch", leave=False)
        for start in it:
            idx = np.arange(start, min(n, start + self.batch_size))
            x = self.backbone.normalize_pixels(torch.from_numpy(src.load(idx, self.backbone.image_size)))
            with self.backbone.autocast():
                out.append(self.backbone.encode_images(x).float().cpu())
        accounting.count(CACHE_FILL, n)  # caching, not training or selection: the protocol books it apart
        return torch.cat(out) if out else torch.zeros(0, self.backbone.embed_dim)

    def features(self, split: str) -> torch.Tensor:
        if split not in self._features:
            compute = lambda: self._encode_split(split)  # noqa: E731
            key = self.feature_key(split)
            self._features[split] = self.cache.get_or_compute(key, compute) if self.cache else compute()
        return self._features[split]

    def pixel_cache(self, split: str) -> torch.Tensor:
        """uint8 (N, S, S, 3) of the whole split at the backbone's resolution, decoded once."""
        if split not in self._pixels:
            src = self.task.split(split).source
            self._pixels[split] = torch.from_numpy(
                np.ascontiguousarray(src.load(np.arange(len(src)), self.backbone.image_size))
            )
        return self._pixels[split]

    def pixels(self, split: str, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return self.backbone.normalize_pixels(self.pixel_cache(split)[idx])

    # ---- additions for adapters that train through (or augment in front of) the image tower ----
    def device_pixel_cache(self, split: str) -> torch.Tensor:
        """The uint8 pixel cache of ``split`` on the backbone's device (moved there once, then reused)."""
        if split not in self._device_pixels:
            cpu = self.pixel_cache(split)
            self._device_pixels[split] = cpu if self.backbone.device.type == "cpu" else cpu.to(self.backbone.device)
        return self._device_pixels[split]

    def view_key(self, split: str, view: int, seed: int, scale: tuple[float, float]) -> str:
        return self.feature_key(split, view=f"rrc{scale[0]:g}-{scale[1]:g}-flip|seed{seed}|view{view}")

    @torch.no_grad()
    def _encode_view(self, split: str, view: int, seed: int, scale: tuple[float, float]) -> torch.Tensor:
        from albench.components.augment import apply_crops, sample_crops
        from albench.api.seeding import torch_generator

        pix = self.device_pixel_cache(split)
        n, size = pix.shape[0], pix.shape[1]
        # crops for the whole split from one stream: independent of the batch size
        crops = sample_crops(n, size, size, torch_generator(seed, "augmented-view", view), scale=scale)
        out = []
        for start in range(0, n, self.batch_size):
            sl = slice(start, min(n, start + self.batch_size))
            x = apply_crops(self.backbone.normalize_pixels(pix[sl]), crops[sl])
            with self.backbone.autocast():
                out.append(self.backbone.encode_images(x).float().cpu())
        accounting.count(CACHE_FILL, n)
        return torch.cat(out) if out else torch.zeros(0, self.backbone.embed_dim)

    def augmented_features(
        self, split: str, views: int, seed: int = 0, scale: tuple[float, float] = (0.08, 1.0)
    ) -> torch.Tensor:
        """Frozen-encoder features of ``views`` augmented copies of every image, (views, N, D).

        View ``v`` is RandomResizedCrop(``scale``) + horizontal flip drawn from
        a stream seeded by (``seed``, v) and is cached on its own, so asking for
        8 views after 4 encodes only the 4 new ones, and every run sharing the
        cache (any run seed) reuses them: the image tower sees each view once.
        """
        if views < 1:
            raise AlbenchError(f"augmented views must be >= 1, got {views}.")
        out = []
        for v in range(views):
            key = (split, v, seed, tuple(scale))
            if key not in self._views:
                compute = lambda v=v: self._encode_view(split, v, seed, tuple(scale))  # noqa: E731
                k = self.view_key(split, v, seed, tuple(scale))
                self._views[key] = self.cache.get_or_compute(k, compute) if self.cache else compute()
            out.append(self._views[key])
        return torch.stack(out)
