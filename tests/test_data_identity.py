"""Data identity by content: same names and sizes but different bytes never share a fingerprint."""

import os
import shutil

import numpy as np
import pytest

import albench.data.content as content
from albench.data.datasets.source import FileSource
from albench.data.tasks import load_task


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from albench.data.datasets.fake import generate

    root = tmp_path_factory.mktemp("identity") / "a"
    generate("eurosat", root, image_size=8)
    return root


def _same_size_other_bytes(p):
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    st = p.stat()
    p.write_bytes(bytes(raw))
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: only the content differs


def _source(root, rels):
    return FileSource(root, rels, [os.path.getsize(root / r) for r in rels])


def test_same_names_and_sizes_different_pixels_differ(tree, tmp_path):
    other = tmp_path / "b"
    shutil.copytree(tree, other)
    a = load_task("eurosat", data_root=str(tree), allow_custom_split=True)
    b = load_task("eurosat", data_root=str(other), allow_custom_split=True)
    assert a.fingerprint() == b.fingerprint()  # a copy elsewhere is the same data (root-independent)
    victim = other / "eurosat" / a.test.source.relpaths[3]
    _same_size_other_bytes(victim)
    c = load_task("eurosat", data_root=str(other), allow_custom_split=True)
    assert c.test.source.sizes.tolist() == a.test.source.sizes.tolist()
    assert c.fingerprint() != a.fingerprint()
    assert c.pool.source.fingerprint() == a.pool.source.fingerprint()  # only the test split changed


def test_unchanged_files_are_not_reread_changed_ones_are(tree, tmp_path, monkeypatch):
    root = tmp_path / "c"
    shutil.copytree(tree / "eurosat" / "2750" / "Forest", root)
    rels = sorted(p.name for p in root.iterdir())
    reads = []
    real = content.hash_file
    monkeypatch.setattr(content, "hash_file", lambda p: reads.append(os.path.basename(p)) or real(p))
    first = _source(root, rels).fingerprint()
    assert sorted(reads) == rels
    reads.clear()
    assert _source(root, rels).fingerprint() == first and reads == []  # cached by path + size + times
    _same_size_other_bytes(root / rels[0])
    changed = _source(root, rels).fingerprint()
    assert reads == [rels[0]] and changed != first
    assert content.hash_file(root / rels[0]) == __import__("hashlib").sha256((root / rels[0]).read_bytes()).hexdigest()


def test_unwritable_digest_cache_still_hashes(tree, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("ALBENCH_CACHE", str(blocker / "sub"))
    root = tree / "eurosat" / "2750" / "Forest"
    rels = sorted(p.name for p in root.iterdir())[:3]
    digests = content.file_digests([root / r for r in rels])
    assert digests == [__import__("hashlib").sha256((root / r).read_bytes()).hexdigest() for r in rels]


def test_feature_cache_key_follows_content(tree, tmp_path):
    from albench.data.features import DataBank, FeatureCache

    class B:
        identity, compute_identity, image_size = "bb", "bb|cpu|fp32", 8

    other = tmp_path / "d"
    shutil.copytree(tree, other)
    a = load_task("eurosat", data_root=str(tree), allow_custom_split=True)
    _same_size_other_bytes(other / "eurosat" / a.pool.source.relpaths[0])
    b = load_task("eurosat", data_root=str(other), allow_custom_split=True)
    keys = [DataBank(B(), t, FeatureCache(tmp_path / "fc"), progress=False).feature_key("pool") for t in (a, b)]
    assert keys[0] != keys[1]


def test_array_sources_hash_pixels():
    from albench.data.tasks import ArraySource

    x = np.zeros((2, 4, 4, 3), np.uint8)
    y = x.copy()
    y[1, 2, 2, 0] = 1
    assert ArraySource(x).fingerprint() != ArraySource(y).fingerprint()
