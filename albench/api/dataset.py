"""The dataset contract: a class list, a zero-shot template, and pool/test(/val) splits.

A dataset plugin is a loader, ``loader(data_root=None, **options) -> Dataset``,
registered under the entry-point group ``albench.datasets`` (albench's own toy,
CoOp-layout and generic datasets are declared there in ``pyproject.toml`` exactly
as a third party declares its own). A split's images come from an ``ImageSource``:
anything that can say how many images it holds, give a content fingerprint (the
feature-cache key) and decode a batch to uint8 RGB arrays at a requested square
resolution. ``ArraySource`` keeps arrays in memory; the CoOp-layout loaders
decode files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from albench.api.errors import UnknownNameError


class ImageSource(Protocol):
    """Where a split's images come from."""

    def __len__(self) -> int: ...

    def fingerprint(self) -> str:
        """Stable hash of the images' content (file bytes, or pixel bytes)."""
        ...

    def load(self, indices: np.ndarray, size: int) -> np.ndarray:
        """Decode images ``indices`` as uint8 (n, size, size, 3): resize short side, centre crop."""
        ...


class ArraySource:
    """In-memory uint8 images (n, h, w, 3); resized with bicubic interpolation on demand."""

    def __init__(self, images: np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 (n, h, w, 3) images, got {images.dtype} {images.shape}")
        self.images = images
        self._fp: str | None = None

    def __len__(self) -> int:
        return len(self.images)

    def fingerprint(self) -> str:
        if self._fp is None:
            self._fp = hashlib.sha256(np.ascontiguousarray(self.images).tobytes()).hexdigest()[:16]
        return self._fp

    def load(self, indices: np.ndarray, size: int) -> np.ndarray:
        batch = self.images[np.asarray(indices)]
        if batch.shape[1] == size and batch.shape[2] == size:
            return batch
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
        short = min(x.shape[-2:])
        x = F.interpolate(x, scale_factor=size / short, mode="bicubic", align_corners=False)
        top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
        x = x[..., top : top + size, left : left + size].clamp(0, 255).round()
        return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


@dataclass
class Split:
    source: ImageSource
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.labels) != len(self.source):
            raise ValueError(f"{len(self.labels)} labels for {len(self.source)} images")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Dataset:
    """One classification dataset as albench sees it. The pool is the train split."""

    name: str
    classnames: list[str]
    template: str
    pool: Split
    test: Split
    val: Split | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classnames)

    def split(self, name: str) -> Split:
        splits = {"pool": self.pool, "test": self.test, "val": self.val}
        if splits.get(name) is None:
            raise UnknownNameError("split", name, [k for k, v in splits.items() if v is not None])
        return splits[name]

    def fingerprint(self) -> str:
        """Identity of the task's content: class names, template, every split's images and labels."""
        h = hashlib.sha256()
        h.update(repr((self.name, self.classnames, self.template)).encode())
        for s in (self.pool, self.test, self.val):
            if s is not None:
                h.update(s.source.fingerprint().encode())
                h.update(np.ascontiguousarray(s.labels).tobytes())
        return h.hexdigest()[:16]

    def prompts(self) -> list[str]:
        return [self.template.format(c) for c in self.classnames]


class DatasetLoader(Protocol):
    """What an ``albench.datasets`` entry point points at."""

    def __call__(self, data_root: str | None = None, **options: Any) -> Dataset: ...
