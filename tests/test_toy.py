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


@pytest.mark.slow
def test_pretraining_recipe_is_reproducible(tmp_path):
    from albench.data.toy.pretrain import pretrain
    from safetensors.torch import load_file

    outs = []
    for i in range(2):
        w = tmp_path / f"w{i}.safetensors"
        pretrain(steps=2, batch=16, corpus_size=64, out_weights=w, out_card=tmp_path / f"c{i}.json", log_every=100)
        outs.append(load_file(str(w)))
    assert outs[0].keys() == outs[1].keys()
    assert all(torch.equal(outs[0][k], outs[1][k]) for k in outs[0])


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
