import numpy as np
import pytest

from albench.api.conformance import ConformanceError, check_adapter, check_strategy
from albench.api.plugins import ADAPTERS, STRATEGIES
from albench.api.strategy import Strategy


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_builtin_strategies_conform(name):
    check_strategy(name)


@pytest.mark.parametrize("name", ADAPTERS.names())
def test_builtin_adapters_conform(name):
    check_adapter(name)


class Duplicates(Strategy):
    name = "dups"

    def select(self, ctx):
        return np.repeat(ctx.unlabeled[:1], ctx.budget)


class IgnoresRng(Strategy):
    name = "ignores-rng"

    def select(self, ctx):
        return ctx.unlabeled[: ctx.budget]


@pytest.mark.parametrize("cls, message", [(Duplicates, "duplicate indices"), (IgnoresRng, "ignores ctx.rng")])
def test_conformance_catches_broken_strategies(cls, message):
    with pytest.raises(ConformanceError, match=message):
        check_strategy(cls)
