import json
import os
import sys

import pytest

if "mutmut" in sys.modules:  # mutation testing: import the mutated copy of strategies/ under its installed name
    import strategies

    sys.modules["albench_strategies"] = strategies

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
