"""The two plugin registries. The core never imports a concrete strategy or adapter."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import Registry

if TYPE_CHECKING:
    from .adapter import Adapter
    from .strategy import Strategy

STRATEGIES: "Registry[Strategy]" = Registry("strategy", "albench.strategies", "albench.strategy:Strategy")
ADAPTERS: "Registry[Adapter]" = Registry("adapter", "albench.adapters", "albench.adapter:Adapter")


def refresh() -> None:
    STRATEGIES.refresh()
    ADAPTERS.refresh()
