"""Real datasets: CoOp-layout loaders, generic imagefolder/csv dataset types, fake-tree generator.

The loaders are registered through the ``albench.datasets`` entry points in
pyproject.toml; this package imports nothing heavy (PIL, torch).
"""

from __future__ import annotations

from albench.data.datasets.coop import COOP_SPLITS, load_coop
from albench.data.datasets.generic import load_csv, load_imagefolder


def is_real_dataset(name: str) -> bool:
    """A dataset of real images (CoOp layouts, imagefolder, csv): never meant for the toy CLIP by default."""
    return name in COOP_SPLITS or name in ("imagefolder", "csv")


__all__ = ["COOP_SPLITS", "is_real_dataset", "load_coop", "load_csv", "load_imagefolder"]
