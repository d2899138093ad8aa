"""The plugin registries: strategies, adapters, datasets. The core never imports a concrete plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from albench.api.registry import Registry

if TYPE_CHECKING:
    from albench.api.adapter import Adapter
    from albench.api.dataset import Dataset
    from albench.api.strategy import Strategy

STRATEGIES: "Registry[Strategy]" = Registry("strategy", "albench.strategies", "albench.api.strategy:Strategy")
ADAPTERS: "Registry[Adapter]" = Registry("adapter", "albench.adapters", "albench.api.adapter:Adapter")
# Dataset loaders: loader(data_root=None, **options) -> albench.api.dataset.Dataset
DATASETS: "Registry[Dataset]" = Registry("dataset", "albench.datasets", None)


def refresh() -> None:
    STRATEGIES.refresh()
    ADAPTERS.refresh()
    DATASETS.refresh()
