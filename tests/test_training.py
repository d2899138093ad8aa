"""The shared training loop: finiteness checked without a per-step host sync, compiled step == eager step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from albench.api.adapter import Labeled
from albench.api.errors import TrainingError
from albench.components import training
from albench.components.training import TrainConfig, train


def _quadratic(param: torch.nn.Parameter, bad_from: int | None = None):
    """A loss that turns inf at call ``bad_from`` (1-based) and stays finite before it."""
    calls = {"n": 0}

    def step(lb, pb):
        calls["n"] += 1
        loss = (param - torch.as_tensor(lb.labels, dtype=torch.float32).mean()).square().sum()
        if bad_from is not None and calls["n"] >= bad_from:
            loss = loss * float("inf")
        return loss

    return step


def _labeled(n=32):
    return Labeled(np.arange(n), np.arange(n) % 3)


def test_non_finite_loss_names_its_first_step_between_checks():
    p = torch.nn.Parameter(torch.zeros(3))
    cfg = TrainConfig(epochs=10, batch_size=16, check_every=50)  # 20 steps, one host check at the end
    with pytest.raises(TrainingError, match=r"r1: training loss became inf at step 7 of 20\."):
        train([p], _quadratic(p, bad_from=7), _labeled(), None, cfg, torch.Generator().manual_seed(0), where="r1")


def test_finiteness_is_read_every_k_steps_not_every_step(monkeypatch):
    reads = []
    real = training._bad_jobs
    monkeypatch.setattr(training, "_bad_jobs", lambda *a: (reads.append(1), real(*a))[1])
    p = torch.nn.Parameter(torch.zeros(3))
    cfg = TrainConfig(epochs=11, batch_size=16, check_every=5)  # 22 steps: reads after 5, 10, 15, 20, 22
    info = train([p], _quadratic(p), _labeled(), None, cfg, torch.Generator().manual_seed(0))
    assert info["steps"] == 22 and len(reads) == 5
    assert np.isfinite(info["final_loss"])


def test_check_every_must_be_positive():
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="check_every"):
        train([p], _quadratic(p), _labeled(), None, TrainConfig(check_every=0), torch.Generator().manual_seed(0))


def _coop_train(backbone, compile_step: bool) -> torch.Tensor:
    from albench_adapters.coop import PromptLearner  # the real CoOp prompt learner (shared-prefix text path)

    names = ["red circle", "blue striped square", "green triangle", "a long class name"]
    torch.manual_seed(0)
    pl = PromptLearner(backbone, names)
    start = pl.ctx.detach().clone()
    feats = torch.randn(40, backbone.embed_dim, generator=torch.Generator().manual_seed(1))
    labels = np.arange(40) % len(names)

    def step(lb, pb):
        text = pl.text_features()
        idx = torch.as_tensor(lb.indices)
        logits = backbone.logit_scale * F.normalize(feats[idx], dim=-1) @ F.normalize(text, dim=-1).T
        return F.cross_entropy(logits, torch.as_tensor(lb.labels))

    cfg = TrainConfig(epochs=4, batch_size=16, lr=0.01, compile=compile_step)  # batches of 16, 16, 8: two shapes
    train([pl.ctx], step, Labeled(np.arange(40), labels), None, cfg, torch.Generator().manual_seed(2))
    assert (pl.ctx - start).abs().max() > 1e-3  # training moved the context, so equality is not vacuous
    return pl.ctx.detach().clone()


def test_compiled_step_gives_the_eager_parameters(toy_backbone):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    eager = _coop_train(toy_backbone, compile_step=False)
    assert counters["stats"]["unique_graphs"] == 0
    compiled = _coop_train(toy_backbone, compile_step=True)
    assert counters["stats"]["unique_graphs"] >= 1  # the step really went through torch.compile
    assert (eager - compiled).abs().max() < 1e-4


def test_logit_scale_is_read_from_the_device_once(toy_backbone, monkeypatch):
    first = toy_backbone.logit_scale
    monkeypatch.setattr(torch.Tensor, "item", lambda self: (_ for _ in ()).throw(AssertionError("host read")))
    assert toy_backbone.logit_scale == first  # remembered: a training step does not synchronise
    monkeypatch.undo()
    with torch.no_grad():
        toy_backbone.model.logit_scale.add_(0.5)
    try:
        assert toy_backbone.logit_scale == pytest.approx(first * np.exp(0.5), rel=1e-5)  # a change is seen
    finally:
        with torch.no_grad():
            toy_backbone.model.logit_scale.sub_(0.5)
