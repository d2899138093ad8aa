"""The contract's named checks: built-ins pass every rule, broken plugins fail exactly the rule they break."""

import numpy as np
import pytest
import torch

from albench.api import conformance as rules
from albench.api.adapter import Adapter, Labeled
from albench.api.conformance import ConformanceError
from albench.api.plugins import ADAPTERS, STRATEGIES
from albench.api.strategy import Strategy
from albench.testing import check_adapter, check_strategy, parametrize_with_checks, plugin_checks, tiny_env


# The dual-prompt method is both a strategy and an adapter under one name, so it is passed as classes; its
# short schedule (2 epochs, no step floor) keeps the check about the contract, not about training time.
DUALPROMPT_FAST = {"epochs": 2, "min_steps": 0}
BUILTINS = [n for n in STRATEGIES.names() if n != "dualprompt"] + [n for n in ADAPTERS.names() if n != "dualprompt"]


@parametrize_with_checks(
    BUILTINS + [(STRATEGIES.get("dualprompt"), DUALPROMPT_FAST), (ADAPTERS.get("dualprompt"), DUALPROMPT_FAST)]
)
def test_builtin_plugins_conform(plugin, check):
    check(plugin)


def test_a_name_shared_by_a_strategy_and_an_adapter_must_be_disambiguated():
    with pytest.raises(ValueError, match="'dualprompt' names both a strategy and an adapter"):
        plugin_checks("dualprompt")


class Duplicates(Strategy):
    name = "dups"
    stochastic = False

    def select(self, ctx):
        return np.repeat(ctx.unlabeled[:1], ctx.budget)


class IgnoresRng(Strategy):
    name = "ignores-rng"

    def select(self, ctx):
        return ctx.unlabeled[: ctx.budget]


class MutatesContext(Strategy):
    name = "mutates"
    stochastic = False

    def select(self, ctx):
        ctx.labels[:] = 0
        return ctx.unlabeled[: ctx.budget]


class Linear(Adapter):
    """A linear probe on cached features: the smallest adapter that conforms."""

    name = "linear"
    defaults = {"steps": 20}

    def __init__(self, env, **options):
        super().__init__(env, **options)
        torch.manual_seed(env.seed)
        self.w = torch.nn.Parameter(torch.randn(env.num_classes, env.bank.features("pool").shape[1]) * 0.01)

    def trainable_parameters(self):
        return [self.w]

    def fit(self, labeled, pseudo=None):
        opt = torch.optim.SGD([self.w], lr=0.1)
        x, y = self.env.bank.features("pool")[labeled.indices], torch.as_tensor(labeled.labels)
        for _ in range(self.options["steps"]):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(x @ self.w.T, y).backward()
            opt.step()
        return {"steps": self.options["steps"]}

    def classifier(self):
        return self.w.detach()

    @torch.no_grad()
    def predict_logits(self, split, indices=None):
        return self.image_features(split, indices) @ self.w.T


class TouchesBackbone(Linear):
    name = "touches-backbone"

    def fit(self, labeled, pseudo=None):
        with torch.no_grad():
            next(self.env.backbone.model.parameters()).add_(1.0)
        return super().fit(labeled, pseudo)


class Noisy(Linear):
    name = "noisy"

    def __init__(self, env, **options):
        super().__init__(env, **options)
        self.w = torch.nn.Parameter(
            torch.randn(self.w.shape, generator=torch.Generator().manual_seed(int(torch.seed() % 2**31)))
        )


@pytest.fixture(scope="module")
def env():
    return tiny_env()


def failing_rules(plugin, env, kind):
    checks = rules.strategy_checks() if kind == "strategy" else rules.adapter_checks()
    failed = []
    for check in checks:
        try:
            check(plugin, env, {})
        except ConformanceError:
            failed.append(check.__name__)
    return failed


@pytest.mark.parametrize(
    "cls, rule",
    [
        (Duplicates, "check_strategy_selection_valid"),
        (IgnoresRng, "check_strategy_uses_rng_when_stochastic"),
        (MutatesContext, "check_strategy_leaves_context_unchanged"),
    ],
)
def test_broken_strategy_fails_exactly_its_rule(env, cls, rule):
    assert failing_rules(cls, env, "strategy") == [rule]


@pytest.mark.parametrize(
    "cls, rule",
    [
        (TouchesBackbone, "check_adapter_backbone_frozen"),
        (Noisy, "check_adapter_deterministic"),
    ],
)
def test_broken_adapter_fails_exactly_its_rule(cls, rule):
    assert failing_rules(cls, tiny_env(), "adapter") == [rule]  # a fresh env: TouchesBackbone edits its weights


def test_minimal_adapter_conforms(env):
    check_adapter(Linear, env=env)


def test_check_functions_raise_naming_the_rule(env):
    with pytest.raises(ConformanceError, match="duplicate indices"):
        check_strategy(Duplicates, env=env)
    with pytest.raises(ConformanceError, match="ignores ctx.rng"):
        check_strategy(IgnoresRng, env=env)
    with pytest.raises(ConformanceError, match="not a subclass of albench.api.adapter.Adapter"):
        check_adapter(Duplicates, env=env)


def test_parametrize_with_checks_gives_one_id_per_rule():
    mark = parametrize_with_checks([IgnoresRng, Linear])
    argnames, params = mark.args
    assert argnames == "plugin, check"
    ids = mark.kwargs["ids"]
    assert ids == (
        [f"ignores-rng-{c.__name__}" for c in rules.strategy_checks()]
        + [f"linear-{c.__name__}" for c in rules.adapter_checks()]
    )
    plugin, check = params[ids.index("ignores-rng-check_strategy_uses_rng_when_stochastic")]
    with pytest.raises(ConformanceError, match="ignores ctx.rng"):
        check(plugin)
    assert [name for name, _ in plugin_checks("entropy")] == [c.__name__ for c in rules.strategy_checks()]


def test_old_flat_path_still_offers_the_kit():
    import albench.conformance as old

    assert old.check_strategy is check_strategy and old.tiny_env is tiny_env


def test_labeled_tiny_set_misses_a_class(env):
    lab = rules._tiny_labeled(env)
    assert isinstance(lab, Labeled) and len(lab) == 6 and env.num_classes - 1 not in lab.labels


def test_contract_bases_are_abstract():
    with pytest.raises(TypeError, match="abstract method select"):
        Strategy()
    with pytest.raises(TypeError, match="abstract methods classifier, fit, predict_logits"):
        Adapter(None)

    class NoSelect(Strategy):
        name = "no-select"

    with pytest.raises(TypeError, match="NoSelect"):
        NoSelect()
