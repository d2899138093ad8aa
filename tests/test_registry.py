from importlib.metadata import EntryPoint

import pytest

from albench.api.errors import PluginLoadError, UnknownNameError
from albench.api.registry import Registry
from albench.api.strategy import Strategy


def make_registry(monkeypatch, entries):
    eps = [EntryPoint(name, value, "albench.test") for name, value in entries]
    monkeypatch.setattr("albench.api.registry.entry_points", lambda group: [e for e in eps if e.group == group])
    return Registry("strategy", "albench.test", "albench.api.strategy:Strategy")


def test_listing_does_not_import(monkeypatch):
    reg = make_registry(monkeypatch, [("ghost", "module_that_does_not_exist:Thing"), ("random", "albench_strategies.random:RandomStrategy")])
    assert reg.names() == ["ghost", "random"]  # listing works although 'ghost' cannot be imported


def test_unknown_name_suggests(monkeypatch):
    reg = make_registry(monkeypatch, [("entropy", "x:y"), ("random", "x:z")])
    with pytest.raises(UnknownNameError) as err:
        reg.get("entrpy")
    assert str(err.value).startswith("Unknown strategy 'entrpy'. Did you mean: entropy? Available: entropy, random")


def test_broken_plugin_reported_and_others_still_load(monkeypatch):
    reg = make_registry(monkeypatch, [("ghost", "module_that_does_not_exist:Thing"), ("random", "albench_strategies.random:RandomStrategy")])
    with pytest.raises(PluginLoadError, match="strategy 'ghost' from distribution .* failed to import"):
        reg.get("ghost")
    assert issubclass(reg.get("random"), Strategy)


def test_wrong_base_class_rejected(monkeypatch):
    reg = make_registry(monkeypatch, [("notastrategy", "albench.api.adapter:Adapter")])
    with pytest.raises(PluginLoadError, match="not a subclass of albench.api.strategy.Strategy"):
        reg.get("notastrategy")


def test_builtins_are_entry_points():
    from albench.api.plugins import ADAPTERS, STRATEGIES

    assert "random" in STRATEGIES.names() and "coop" in ADAPTERS.names()
    assert STRATEGIES.info("random").distribution == "albench"
