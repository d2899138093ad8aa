"""Real datasets: CoOp-layout loaders, generic imagefolder/csv dataset types, fake-tree generator.

The loaders are registered through the ``albench.datasets`` entry points in
pyproject.toml; this package imports nothing heavy (PIL, torch).
"""
from __future__ import annotations

from albench.data.datasets.coop import COOP_SPLITS, load_coop
from albench.data.datasets.generic import load_csv, load_imagefolder

__all__ = ["COOP_SPLITS", "load_coop", "load_csv", "load_imagefolder"]
