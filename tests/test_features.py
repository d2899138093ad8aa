import torch

from albench.data.features import FeatureCache


def test_roundtrip_and_corruption_rebuilt(tmp_path):
    cache = FeatureCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return torch.arange(12, dtype=torch.float32).view(3, 4)

    a = cache.get_or_compute("k1", compute)
    b = cache.get_or_compute("k1", compute)
    assert torch.equal(a, b) and len(calls) == 1
    p = cache.path("k1")
    p.write_bytes(p.read_bytes()[:-7])  # truncated file
    assert cache.load("k1") is None and not p.exists()  # detected and removed, never read as data
    c = cache.get_or_compute("k1", compute)
    assert torch.equal(a, c) and len(calls) == 2


def test_checksum_mismatch_detected(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.save("k", torch.ones(2, 2))
    p = cache.path("k")
    raw = bytearray(p.read_bytes())
    raw[-1] ^= 0xFF  # flip bits inside the tensor data
    p.write_bytes(bytes(raw))
    assert cache.load("k") is None


def test_key_mismatch_detected(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.save("a", torch.ones(2))
    cache.path("a").rename(cache.path("b"))  # a file under the wrong name
    assert cache.load("b") is None


def test_unwritable_cache_dir_is_a_clear_error(tmp_path):
    import pytest

    from albench.api.errors import AlbenchError

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")  # fails even for root
    with pytest.raises(AlbenchError, match="Cache directory .*not-a-dir/sub is not writable"):
        FeatureCache(blocker / "sub").get_or_compute("k", lambda: torch.ones(1))
