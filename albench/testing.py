"""The conformance kit for plugin authors: the contract's named checks on a tiny world.

In the spirit of scikit-learn's ``check_estimator`` / ``parametrize_with_checks``::

    from albench.testing import check_strategy, parametrize_with_checks

    def test_my_strategy():                 # all rules, first failure raises
        check_strategy(MyStrategy)

    @parametrize_with_checks([MyStrategy, MyAdapter])
    def test_albench_contract(plugin, check):   # one pytest id per rule
        check(plugin)

The tiny world is a random-initialised toy CLIP (CPU) and 4 solid-colour classes
with noise (60 pool, 20 test images); a full run of the checks takes seconds. The
rules themselves live in ``albench.api.conformance`` (one function per rule).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from albench.api.adapter import Adapter, AdapterEnv
from albench.api.conformance import ConformanceError, CheckFn, adapter_checks, run_checks, strategy_checks
from albench.api.strategy import Strategy
from albench.api.dataset import ArraySource, Dataset, Split

__all__ = [
    "ConformanceError",
    "check_adapter",
    "check_strategy",
    "parametrize_with_checks",
    "plugin_checks",
    "tiny_dataset",
    "tiny_env",
    "tiny_task",
]


def tiny_dataset(num_classes: int = 4, pool_per_class: int = 15, test_per_class: int = 5, seed: int = 0) -> Dataset:
    """Solid-colour 32x32 images with noise: learnable, tiny, deterministic."""
    rng = np.random.default_rng(seed)
    palette = np.array([[230, 30, 30], [30, 200, 40], [40, 60, 240], [240, 230, 40], [160, 40, 200], [30, 220, 230]])

    def make(per_class: int) -> Split:
        y = np.repeat(np.arange(num_classes), per_class)
        rng.shuffle(y)
        x = palette[y % len(palette)][:, None, None, :] + rng.normal(0, 25, (len(y), 32, 32, 3))
        return Split(ArraySource(np.clip(x, 0, 255).astype(np.uint8)), y)

    names = ["red", "green", "blue", "yellow", "purple", "cyan"][:num_classes]
    return Dataset("conformance", names, "something {}.", make(pool_per_class), make(test_per_class))


tiny_task = tiny_dataset  # old name, kept for one release


def tiny_env(seed: int = 0, round: int = 1) -> AdapterEnv:
    """A random-initialised toy CLIP on CPU, ``tiny_dataset()`` and an in-memory data bank."""
    from albench.clip.backbone import Backbone, BackboneSpec
    from albench.data.features import DataBank

    bb = Backbone.load(BackboneSpec(pretrained="random"), device="cpu")
    dataset = tiny_dataset()
    return AdapterEnv(bb, dataset, DataBank(bb, dataset, cache=None), seed=seed, round=round)


@functools.lru_cache(maxsize=1)
def _shared_env() -> AdapterEnv:
    return tiny_env()


def _resolve(plugin: type | str, kind: str | None = None) -> tuple[str, type]:
    """(kind, class) of a plugin class or registered name."""
    if isinstance(plugin, str):
        from albench.api.plugins import ADAPTERS, STRATEGIES

        if kind is None:
            if plugin in STRATEGIES.names() and plugin in ADAPTERS.names():
                raise ValueError(
                    f"'{plugin}' names both a strategy and an adapter; pass the class "
                    "(e.g. STRATEGIES.get(name)) or call check_strategy / check_adapter."
                )
            kind = "strategy" if plugin in STRATEGIES.names() else "adapter"
        return kind, (STRATEGIES if kind == "strategy" else ADAPTERS).get(plugin)
    if kind is None:
        kind = "adapter" if isinstance(plugin, type) and issubclass(plugin, Adapter) else "strategy"
    return kind, plugin


def check_strategy(
    strategy: type[Strategy] | str, options: Mapping[str, Any] | None = None, env: AdapterEnv | None = None
) -> None:
    """Run every strategy rule on a Strategy subclass (or registered name); raises ``ConformanceError``."""
    _, cls = _resolve(strategy, "strategy")
    run_checks(strategy_checks(), cls, env or tiny_env(), options)


def check_adapter(
    adapter: type[Adapter] | str, options: Mapping[str, Any] | None = None, env: AdapterEnv | None = None
) -> None:
    """Run every adapter rule on an Adapter subclass (or registered name); raises ``ConformanceError``."""
    _, cls = _resolve(adapter, "adapter")
    run_checks(adapter_checks(), cls, env or tiny_env(), options)


def plugin_checks(
    plugin: type | str, options: Mapping[str, Any] | None = None, env_factory: Callable[[], AdapterEnv] = _shared_env
) -> list[tuple[str, Callable[[Any], None]]]:
    """(rule name, check) pairs for one plugin; ``check(plugin)`` runs that rule on the tiny world."""
    kind, cls = _resolve(plugin)
    rules: list[CheckFn] = strategy_checks() if kind == "strategy" else adapter_checks()
    opts = dict(options or {})

    def bind(rule: CheckFn) -> Callable[[Any], None]:
        def check(_plugin: Any) -> None:
            rule(cls, env_factory(), opts)

        check.__name__ = rule.__name__
        check.__doc__ = rule.__doc__
        return check

    return [(rule.__name__, bind(rule)) for rule in rules]


def parametrize_with_checks(
    plugins: Iterable[type | str | tuple[type | str, Mapping[str, Any]]],
    env_factory: Callable[[], AdapterEnv] = _shared_env,
) -> Any:
    """A ``pytest.mark.parametrize("plugin, check", ...)`` with one id per (plugin, rule).

    ``plugins``: classes, registered names, or (class or name, options) pairs.
    Ids read ``<plugin>-<rule>``, e.g. ``entropy-check_strategy_deterministic``.
    """
    import pytest

    params, ids = [], []
    for item in plugins:
        plugin, options = item if isinstance(item, tuple) else (item, None)
        label = plugin if isinstance(plugin, str) else getattr(plugin, "name", plugin.__name__)
        for rule, check in plugin_checks(plugin, options, env_factory):
            params.append((plugin, check))
            ids.append(f"{label}-{rule}")
    return pytest.mark.parametrize("plugin, check", params, ids=ids)
