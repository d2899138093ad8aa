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
    reg = make_registry(
        monkeypatch,
        [("ghost", "module_that_does_not_exist:Thing"), ("random", "albench_strategies.random:RandomStrategy")],
    )
    assert reg.names() == ["ghost", "random"]  # listing works although 'ghost' cannot be imported


def test_unknown_name_suggests(monkeypatch):
    reg = make_registry(monkeypatch, [("entropy", "x:y"), ("random", "x:z")])
    with pytest.raises(UnknownNameError) as err:
        reg.get("entrpy")
    assert str(err.value).startswith("Unknown strategy 'entrpy'. Did you mean: entropy? Available: entropy, random")


def test_broken_plugin_reported_and_others_still_load(monkeypatch):
    reg = make_registry(
        monkeypatch,
        [("ghost", "module_that_does_not_exist:Thing"), ("random", "albench_strategies.random:RandomStrategy")],
    )
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


def test_builtin_datasets_are_entry_points_of_every_loader():
    """pyproject.toml declares exactly the toy, CoOp and generic datasets, each pointing at its family's loader."""
    from albench.api.plugins import DATASETS
    from albench.data.datasets.coop import COOP_SPLITS, load_coop
    from albench.data.toy.tasks import TOY_SUITE

    assert set(DATASETS.names()) >= {*COOP_SPLITS, *TOY_SUITE, "imagefolder", "csv"}
    first_party = {i.name for i in DATASETS.describe() if i.distribution == "albench"}
    assert first_party == {*COOP_SPLITS, *TOY_SUITE, "imagefolder", "csv"}
    for name in COOP_SPLITS:
        loader = DATASETS.get(name)
        assert loader.func is load_coop and loader.args == (name,)
    assert DATASETS.get("toy_shapes").name == "toy_shapes"


def test_load_dataset_goes_through_the_registry(monkeypatch):
    from albench.api.dataset import ArraySource, Dataset, Split
    from albench.api.plugins import DATASETS
    from albench.data.tasks import load_dataset, load_task, register_dataset
    import numpy as np

    seen = {}

    def loader(data_root=None, **options):
        seen.update(data_root=data_root, **options)
        split = Split(ArraySource(np.zeros((2, 4, 4, 3), np.uint8)), [0, 1])
        return Dataset("two", ["a", "b"], "{}", split, split)

    register_dataset("two", loader)
    try:
        assert load_dataset("two", data_root="/r", k=1).classnames == ["a", "b"] and seen == {"data_root": "/r", "k": 1}
        assert load_task("two").name == "two"  # the old name
        with pytest.raises(UnknownNameError, match="Unknown dataset 'tow'. Did you mean: two?"):
            load_dataset("tow")
        with pytest.raises(PluginLoadError, match="is not callable"):
            register_dataset("three", "not a loader")
    finally:
        DATASETS.unregister("two")


def test_stale_metadata_without_datasets_group_is_explained(monkeypatch):
    from albench.api.errors import AlbenchError
    from albench.data import tasks

    empty = Registry("dataset", "albench.no_such_group", None)
    monkeypatch.setattr(tasks, "DATASETS", empty)
    with pytest.raises(AlbenchError, match="Reinstall: pip install -e ."):
        tasks.dataset_names()


def test_callable_registry_rejects_non_callables(monkeypatch):
    eps = [EntryPoint("bad", "albench.api.errors:__doc__", "albench.test")]
    monkeypatch.setattr("albench.api.registry.entry_points", lambda group: [e for e in eps if e.group == group])
    reg = Registry("dataset", "albench.test", None)
    with pytest.raises(PluginLoadError, match="dataset 'bad' from distribution .* which is not callable"):
        reg.get("bad")


def test_launchers_and_bench_sections_use_the_same_registry():
    from albench.bench import SECTIONS
    from albench.engine.launchers import LAUNCHERS, launch_local, launch_slurm

    assert LAUNCHERS.names() == ["local", "slurm"] and LAUNCHERS.info("local").distribution == "albench"
    assert LAUNCHERS.get("local") is launch_local and LAUNCHERS.get("slurm") is launch_slurm
    with pytest.raises(UnknownNameError, match="Unknown launcher 'slrum'. Did you mean: slurm?"):
        LAUNCHERS.get("slrum")
    assert {"selection", "harness"} <= set(SECTIONS.names()) and type(SECTIONS) is Registry
