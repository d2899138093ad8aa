"""Dataset lookup by name, through the ``albench.datasets`` entry points.

The dataset types (``Dataset``, ``Split``, ``ImageSource``, ``ArraySource``) are the
plugin-facing contract in ``albench.api.dataset`` and re-exported here; ``Task``
is the old name of ``Dataset`` and ``task_names`` / ``load_task`` / ``register_task``
the old names of ``dataset_names`` / ``load_dataset`` / ``register_dataset``, kept
for one release.
"""

from __future__ import annotations

from typing import Callable

from albench.api.dataset import ArraySource, Dataset, DatasetLoader, ImageSource, Split
from albench.api.errors import AlbenchError
from albench.api.plugins import DATASETS

Task = Dataset

__all__ = [
    "ArraySource",
    "Dataset",
    "DatasetLoader",
    "ImageSource",
    "Split",
    "Task",
    "dataset_names",
    "load_dataset",
    "load_task",
    "register_dataset",
    "register_task",
    "task_names",
]


def _checked_registry():
    if not DATASETS.names():
        raise AlbenchError(
            "No dataset is registered under the entry-point group 'albench.datasets': the installed "
            "albench metadata is older than its pyproject.toml. Reinstall: pip install -e ."
        )
    return DATASETS


def dataset_names() -> list[str]:
    """Registered dataset names (reads entry-point metadata only; imports no loader)."""
    return _checked_registry().names()


def load_dataset(name: str, data_root: str | None = None, **options) -> Dataset:
    """Load a registered dataset: its loader called as ``loader(data_root=data_root, **options)``."""
    return _checked_registry().get(name)(data_root=data_root, **options)


def register_dataset(name: str, loader: Callable[..., Dataset]) -> None:
    """Register a loader in-process (notebooks, tests); entry points remain the way to ship a dataset."""
    DATASETS.register(name, loader)


task_names, load_task, register_task = dataset_names, load_dataset, register_dataset
