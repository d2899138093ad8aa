"""Learning: on a toy task where zero-shot is below 70 %, every trainable adapter
trained on 5 % labels beats zero-shot.

The task is ``digits`` (scikit-learn's real handwritten digits, zero-shot from
typeset-digit captions): zero-shot ~29 %. ``toy_textures`` (zero-shot ~40 %) is
not used: its frozen toy-CLIP features are not separable enough (a logistic
regression on all 2,000 pool labels reaches only ~52 %), so no adapter can
show learning there with 100 labels.
"""
import numpy as np
import pytest

from albench.api.adapter import AdapterEnv, Labeled, ZeroShotClassifier, accuracy
from albench.data.features import DataBank
from albench.api.plugins import ADAPTERS
from albench.data.tasks import load_task

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def digits_env(toy_backbone):
    task = load_task("digits")
    return AdapterEnv(toy_backbone, task, DataBank(toy_backbone, task, cache=None), seed=1, round=5)


@pytest.fixture(scope="module")
def five_percent(digits_env):
    pool = digits_env.task.pool
    idx = np.random.default_rng(0).choice(len(pool), int(0.05 * len(pool)), replace=False)
    return Labeled(idx, pool.labels[idx])


@pytest.fixture(scope="module")
def zero_shot(digits_env):
    acc = accuracy(ZeroShotClassifier(digits_env).predict_logits("test"), digits_env.task.test.labels)
    assert acc < 70.0
    return acc


@pytest.mark.parametrize("name", ["coop", "vpt", "maple"])
def test_adapter_beats_zero_shot_with_five_percent_labels(name, digits_env, five_percent, zero_shot):
    a = ADAPTERS.get(name)(digits_env)
    info = a.fit(five_percent)
    acc = accuracy(a.predict_logits("test"), digits_env.task.test.labels)
    assert acc > zero_shot + 1.0, f"{name}: {acc:.1f} % vs zero-shot {zero_shot:.1f} % ({info})"


def test_deep_vpt_learns_more(digits_env, five_percent, zero_shot):
    a = ADAPTERS.get("vpt")(digits_env, deep=True, lr=0.01)
    a.fit(five_percent)
    assert accuracy(a.predict_logits("test"), digits_env.task.test.labels) > zero_shot + 5.0


def test_zeroshot_adapter_equals_the_zero_shot_column(digits_env, zero_shot):
    a = ADAPTERS.get("zeroshot")(digits_env)
    assert accuracy(a.predict_logits("test"), digits_env.task.test.labels) == zero_shot
