import os

import pytest


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
