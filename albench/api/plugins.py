"""The two plugin registries. The core never imports a concrete strategy or adapter."""
from __future__ import annotations

from typing import TYPE_CHECKING

from albench.api.registry import Registry

if TYPE_CHECKING:
    from albench.api.adapter import Adapter
    from albench.api.strategy import Strategy

STRATEGIES: "Registry[Strategy]" = Registry("strategy", "albench.strategies", "albench.api.strategy:Strategy")
ADAPTERS: "Registry[Adapter]" = Registry("adapter", "albench.adapters", "albench.api.adapter:Adapter")


def refresh() -> None:
    STRATEGIES.refresh()
    ADAPTERS.refresh()
