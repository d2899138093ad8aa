"""Real datasets: CoOp-layout loaders, generic imagefolder/csv task types, fake-tree generator.

Importing this package registers every loader with ``albench.data.tasks``; it
imports nothing heavy (PIL, torch) so that ``albench list`` stays instant.
"""
from __future__ import annotations

from functools import partial

from albench.data.tasks import register_task
from albench.data.datasets.coop import COOP_SPLITS, load_coop
from albench.data.datasets.generic import load_csv, load_imagefolder

for _name in COOP_SPLITS:
    register_task(_name, partial(load_coop, _name))
register_task("imagefolder", load_imagefolder)
register_task("csv", load_csv)



def is_real_dataset(name: str) -> bool:
    """A dataset of real images (CoOp layouts, imagefolder, csv): never meant for the toy CLIP by default."""
    return name in COOP_SPLITS or name in ("imagefolder", "csv")


__all__ = ["COOP_SPLITS", "is_real_dataset", "load_coop", "load_csv", "load_imagefolder"]
