"""Weights and caches are never unpickled with code execution; TorchScript needs an explicit flag."""

import os

import pytest
import torch

from albench.clip.backbone import Backbone, BackboneSpec, is_torchscript
from albench.api.errors import WeightsError

MARKER = "albench_pwned_marker"


class Evil:
    def __reduce__(self):  # would run on a plain pickle.load
        return (exec, (f"import os; os.environ[{MARKER!r}] = '1'",))


def test_pickled_code_in_weights_file_is_not_executed(tmp_path):
    bad = tmp_path / "evil.pt"
    torch.save({"visual.proj": torch.zeros(2), "payload": Evil()}, bad)
    os.environ.pop(MARKER, None)
    with pytest.raises(WeightsError, match="Could not read weights file .*evil.pt"):
        Backbone.load(BackboneSpec("toy-clip", str(bad)), device="cpu")
    assert MARKER not in os.environ


def test_torchscript_archive_needs_explicit_flag(tmp_path):
    path = tmp_path / "ViT-B-16.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    assert is_torchscript(path)
    with pytest.raises(WeightsError, match="TorchScript archive; loading it executes code .* --allow-torchscript"):
        Backbone.load(BackboneSpec("ViT-B-16", str(path)), device="cpu")


def test_feature_cache_is_safetensors_not_pickle(tmp_path):
    from albench.data.features import FeatureCache

    cache = FeatureCache(tmp_path)
    cache.save("k", torch.ones(3))
    raw = cache.path("k").read_bytes()
    assert not raw.startswith(b"\x80") and b"__reduce__" not in raw  # no pickle protocol header
    header_len = int.from_bytes(raw[:8], "little")
    assert raw[8 : 8 + header_len].startswith(b"{")  # a JSON header: safetensors
