"""Conformance checks for third-party strategies and adapters.

In the spirit of scikit-learn's ``check_estimator``: call
``check_strategy(MyStrategy)`` or ``check_adapter(MyAdapter)`` in your own test
suite. Each runs the contract from ``albench.api.strategy`` / ``albench.api.adapter``
on a tiny synthetic world (random-init toy CLIP, 4 colour classes) in a few
seconds and raises ``ConformanceError`` naming the broken rule.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from albench.api.adapter import Adapter, AdapterEnv, Labeled, ZeroShotClassifier
from albench.api.strategy import RoundContext, Strategy, check_selection
from albench.data.tasks import ArraySource, Split, Task


class ConformanceError(AssertionError):
    """A plugin broke the albench contract."""


def tiny_task(num_classes: int = 4, pool_per_class: int = 15, test_per_class: int = 5, seed: int = 0) -> Task:
    """Solid-colour 32x32 images with noise: learnable, tiny, deterministic."""
    rng = np.random.default_rng(seed)
    palette = np.array([[230, 30, 30], [30, 200, 40], [40, 60, 240], [240, 230, 40], [160, 40, 200], [30, 220, 230]])

    def make(per_class: int) -> Split:
        y = np.repeat(np.arange(num_classes), per_class)
        rng.shuffle(y)
        x = palette[y % len(palette)][:, None, None, :] + rng.normal(0, 25, (len(y), 32, 32, 3))
        return Split(ArraySource(np.clip(x, 0, 255).astype(np.uint8)), y)

    names = ["red", "green", "blue", "yellow", "purple", "cyan"][:num_classes]
    return Task("conformance", names, "something {}.", make(pool_per_class), make(test_per_class))


def tiny_env(seed: int = 0, round: int = 1) -> AdapterEnv:
    from albench.clip.backbone import Backbone, BackboneSpec
    from albench.data.features import DataBank

    bb = Backbone.load(BackboneSpec(pretrained="random"), device="cpu")
    task = tiny_task()
    return AdapterEnv(bb, task, DataBank(bb, task, cache=None), seed=seed, round=round)


def _resolve(obj, kind: str):
    if isinstance(obj, str):
        from albench.api.plugins import ADAPTERS, STRATEGIES

        return (STRATEGIES if kind == "strategy" else ADAPTERS).get(obj)
    return obj


def _fail(msg: str) -> None:
    raise ConformanceError(msg)


def check_strategy(strategy, options: dict | None = None, env: AdapterEnv | None = None) -> None:
    """Check a Strategy subclass (or registered name) against the contract."""
    cls = _resolve(strategy, "strategy")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        _fail(f"{cls!r} is not a subclass of albench.api.strategy.Strategy")
    env = env or tiny_env()
    n = len(env.task.pool)
    y = env.task.pool.labels
    model = ZeroShotClassifier(env)
    # round 2 with 8 labels, and round 1 with none unless the strategy needs labels
    cases = [(2, np.arange(0, 16, 2))]
    if not cls.needs_labels:
        cases.insert(0, (1, np.zeros(0, dtype=np.int64)))
    for rnd, labeled in cases:
        def ctx(seed: int) -> RoundContext:
            return RoundContext(round=rnd, budget=5, pool_size=n, num_classes=env.task.num_classes, labeled=labeled.copy(),
                                labels=y[labeled].copy(), rng=np.random.default_rng(seed), model=model, env=env, state={})
        c = ctx(0)
        before = (c.labeled.copy(), c.labels.copy())
        picked = cls(**(options or {})).select(c)
        try:
            picked = check_selection(cls.name, picked, c)
        except Exception as exc:
            _fail(f"round {rnd}: {exc}")
        if not (np.array_equal(before[0], c.labeled) and np.array_equal(before[1], c.labels)):
            _fail(f"{cls.name} mutated ctx.labeled / ctx.labels")
        again = np.asarray(cls(**(options or {})).select(ctx(0)))
        if not np.array_equal(np.sort(picked), np.sort(again)):
            _fail(f"{cls.name} is not deterministic given the round's rng: {picked.tolist()} vs {again.tolist()}")
        if cls.stochastic:
            outs = {tuple(np.sort(np.asarray(cls(**(options or {})).select(ctx(s))))) for s in range(1, 6)}
            if len(outs | {tuple(np.sort(picked))}) == 1:
                _fail(f"{cls.name} declares stochastic=True but ignores ctx.rng (6 seeds gave the same picks)")
    # budget larger than the unlabelled pool must be refused before select() runs
    try:
        RoundContext(round=1, budget=n + 1, pool_size=n, num_classes=env.task.num_classes, labeled=np.zeros(0, int),
                     labels=np.zeros(0, int), rng=np.random.default_rng(0), model=model, env=env)
    except Exception:
        pass
    else:
        _fail("RoundContext accepted a budget larger than the unlabelled pool")


def _state_hash(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def check_adapter(adapter, options: dict | None = None, env: AdapterEnv | None = None) -> None:
    """Check an Adapter subclass (or registered name) against the contract."""
    cls = _resolve(adapter, "adapter")
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        _fail(f"{cls!r} is not a subclass of albench.api.adapter.Adapter")
    env = env or tiny_env()
    c, n_test = env.task.num_classes, len(env.task.test)
    backbone_before = _state_hash(env.backbone.model)
    # tiny labelled set: fewer samples than a batch, one class missing
    y = env.task.pool.labels
    idx = np.flatnonzero(y != c - 1)[:6]
    a = cls(env, **(options or {}))
    params_before = [p.detach().clone() for p in a.trainable_parameters()]
    info = a.fit(Labeled(idx, y[idx]))
    if not isinstance(info, dict):
        _fail(f"{cls.name}.fit must return a dict of training facts, got {type(info).__name__}")
    logits = a.predict_logits("test")
    if tuple(logits.shape) != (n_test, c):
        _fail(f"{cls.name}.predict_logits('test') has shape {tuple(logits.shape)}, expected {(n_test, c)}")
    if not torch.isfinite(logits).all():
        _fail(f"{cls.name}.predict_logits returned non-finite values")
    sub = a.predict_logits("test", np.array([3, 1]))
    if not torch.allclose(sub.float(), logits[[3, 1]].float(), atol=1e-4, rtol=1e-4):
        _fail(f"{cls.name}.predict_logits(split, indices) disagrees with the full-split logits")
    feats = a.image_features("pool")
    if feats.ndim != 2 or feats.shape[0] != len(env.task.pool):
        _fail(f"{cls.name}.image_features('pool') has shape {tuple(feats.shape)}")
    w = a.classifier()
    if w.ndim != 2 or w.shape[0] != c:
        _fail(f"{cls.name}.classifier() has shape {tuple(w.shape)}, expected ({c}, D)")
    if _state_hash(env.backbone.model) != backbone_before:
        _fail(f"{cls.name} changed the backbone's weights")
    params_after = a.trainable_parameters()
    if params_before and all(torch.equal(b, p.detach()) for b, p in zip(params_before, params_after)):
        _fail(f"{cls.name}.fit did not change any of its trainable parameters")
    if any(p.requires_grad for p in env.backbone.model.parameters()):
        _fail(f"{cls.name} switched gradients on for backbone parameters")
    b = cls(env, **(options or {}))
    b.fit(Labeled(idx, y[idx]))
    if not torch.allclose(b.predict_logits("test").float(), logits.float(), atol=1e-5):
        _fail(f"{cls.name} is not deterministic: two fits with the same seed gave different logits")
