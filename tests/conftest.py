import json
import os
import sys

import pytest

if "mutmut" in sys.modules:  # mutation testing: the mutated copy of strategies/ answers its installed name
    import importlib
    import importlib.abc
    import importlib.util

    class _MutatedStrategies(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        """``albench_strategies[.x]`` is the module ``strategies[.x]`` (mutmut names mutants by file path)."""

        def find_spec(self, name, path=None, target=None):
            if name == "albench_strategies" or name.startswith("albench_strategies."):
                return importlib.util.spec_from_loader(name, self)
            return None

        def create_module(self, spec):
            return importlib.import_module("strategies" + spec.name[len("albench_strategies") :])

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, _MutatedStrategies())

import helpers  # noqa: E402  (after the alias: it imports albench)


@pytest.fixture(scope="session", autouse=True)
def _shared_cache(tmp_path_factory):
    """One feature/render cache for the whole session, never the user's."""
    path = tmp_path_factory.mktemp("albench-cache")
    os.environ["ALBENCH_CACHE"] = str(path)
    yield path


@pytest.fixture(scope="session")
def toy_backbone():
    from albench.clip.backbone import Backbone, BackboneSpec

    return Backbone.load(BackboneSpec(), device="cpu")


@pytest.fixture(scope="session")
def random_backbone():
    from albench.clip.backbone import Backbone, BackboneSpec

    return Backbone.load(BackboneSpec(pretrained="random"), device="cpu")


@pytest.fixture(scope="session")
def workspace(_shared_cache):
    from albench.engine.protocol import Workspace

    return Workspace(_shared_cache, device="cpu", progress=False)


@pytest.fixture(scope="session")
def warm(tmp_path_factory):
    """A warm feature cache and the records of an uninterrupted in-process run (the reference)."""
    base = tmp_path_factory.mktemp("reliability")
    cache = base / "cache"
    for d in ("warmup", "ref"):  # the reference is made with a warm cache, like every run after it
        res = helpers.cli("run", *helpers.GRID, "--cache-dir", cache, "--results-dir", base / d)
        assert res.exit_code == 0, res.output
    ref = {k: json.loads(p.read_text()) for k, p in helpers.valid_records(base / "ref").items()}
    assert len(ref) == helpers.RUNS
    return {"cache": cache, "ref": ref, "base": base}
