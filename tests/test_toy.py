import numpy as np
import pytest
import torch

from albench.data.toy.render import ShapeSpec, render_digit, render_shape


def test_rendering_is_a_pure_function_of_spec_and_seed():
    spec = ShapeSpec("star", "checkered", "red", "noisy")
    a, b = render_shape(spec, 7), render_shape(spec, 7)
    assert a.dtype == np.uint8 and a.shape == (32, 32, 3) and np.array_equal(a, b)
    assert not np.array_equal(a, render_shape(spec, 8))
    assert np.array_equal(render_digit(3, 5), render_digit(3, 5))


TINY = dict(steps=4, batch=16, corpus_size=48, warmup=2)


def _pretrain(workdir, **kw):
    from albench.data.toy.pretrain import Recipe, pretrain

    return pretrain(
        workdir,
        Recipe(**TINY),
        out_weights=workdir / "w.safetensors",
        ckpt_every=1,
        snapshot_every=100,
        log_every=100,
        probe_n=0,
        **kw,
    )


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.slow
def test_pretraining_recipe_is_reproducible(tmp_path):
    outs = []
    for i in range(2):
        _pretrain(tmp_path / f"run{i}")
        outs.append(_weights(tmp_path / f"run{i}" / "w.safetensors"))
    assert outs[0].keys() == outs[1].keys()
    assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])


@pytest.mark.slow
def test_interrupted_pretraining_resumes_to_the_same_weights(tmp_path, monkeypatch):
    import albench.data.toy.pretrain as pt

    _pretrain(tmp_path / "straight")
    calls = {"n": 0}
    real_loss = pt.soft_clip_loss

    def dying_loss(*a):
        calls["n"] += 1
        if calls["n"] == 3:  # killed during step 3, after the step-2 checkpoint
            raise KeyboardInterrupt
        return real_loss(*a)

    monkeypatch.setattr(pt, "soft_clip_loss", dying_loss)
    with pytest.raises(KeyboardInterrupt):
        _pretrain(tmp_path / "cut")
    assert (tmp_path / "cut" / "checkpoint.pt").exists() and not (tmp_path / "cut" / "w.safetensors").exists()
    monkeypatch.setattr(pt, "soft_clip_loss", real_loss)
    _pretrain(tmp_path / "cut")
    assert "resumed at step 2" in (tmp_path / "cut" / "log.txt").read_text()
    a, b = _weights(tmp_path / "straight" / "w.safetensors"), _weights(tmp_path / "cut" / "w.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_schedule_is_flat_until_the_decay_so_a_run_can_be_shortened():
    from albench.data.toy.pretrain import Recipe, lr_at

    long, short = Recipe(steps=2000), Recipe(steps=1000)
    assert [lr_at(s, long) for s in range(800)] == [lr_at(s, short) for s in range(800)]
    assert lr_at(0, long) < lr_at(199, long) == long.lr == lr_at(1599, long) > lr_at(1800, long) > lr_at(1999, long)


def test_caption_compatibility_treats_ambiguous_words_as_true_of_both_values():
    from albench.data.toy.corpus import Sample, compatibility

    ring = Sample("shape", (("shape", "ring"), ("color", "red")), 0)
    circle = Sample("shape", (("shape", "circle"), ("color", "red")), 1)
    square = Sample("shape", (("shape", "square"), ("color", "red")), 2)
    caps = [
        {"kind": ("shape",), "shape": ("circle", "ring")},
        {"kind": ("shape",), "shape": ("ring",)},
        {"kind": ("swatch",), "color": ("red",)},
    ]
    assert compatibility([ring, circle, square], caps).tolist() == [[1, 1, 0], [1, 0, 0], [0, 0, 0]]


def test_every_toy_arch_is_an_open_clip_config_with_shipped_weights():
    from albench.clip.backbone import Backbone, BackboneSpec
    from albench.data.toy.model import SHIPPED_WEIGHTS

    for arch in ("toy-clip", "toy-clip-v1"):
        bb = Backbone.load(BackboneSpec(arch), device="cpu")
        assert bb.describe()["weights"] == "albench-toy" and bb.identity.startswith(f"{arch}:")
        assert SHIPPED_WEIGHTS[arch].stat().st_size <= 30 * 2**20
    new = Backbone.load(BackboneSpec(), device="cpu")
    assert new.spec.arch == "toy-clip" and new.model.visual.grid_size == (8, 8)  # 64 patches


@pytest.mark.slow
def test_toy_suite_shapes_and_imbalance():
    from albench.data.tasks import load_task

    fine = load_task("toy_fine")
    counts = np.bincount(fine.pool.labels, minlength=fine.num_classes)
    assert fine.num_classes == 80 and counts.max() >= 5 * counts.min()  # long-tailed pool
    assert (np.bincount(fine.test.labels) == 20).all()  # balanced test split
    digits = load_task("digits")
    assert len(digits.pool) == 1200 and len(digits.test) == 597 and digits.num_classes == 10
    assert digits.fingerprint() == load_task("digits").fingerprint()
