"""The plugin contract as named checks, one function per rule.

Modelled on scikit-learn's ``utils.estimator_checks``: every rule of
``albench.api.strategy`` and ``albench.api.adapter`` is one ``check_*`` function
taking ``(cls, env, options)`` and raising ``ConformanceError`` that names the
broken rule. ``strategy_checks()`` / ``adapter_checks()`` list them in order, and
``run_checks`` runs a list. The checks need an ``AdapterEnv`` (a backbone, a task and
a data bank); this module takes it as an argument so the contract layer imports
nothing above itself. ``albench.testing`` builds a tiny world for them
(``check_strategy``, ``check_adapter``, ``parametrize_with_checks``); use that in a
plugin's test suite.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch

from albench.api.adapter import Adapter, AdapterEnv, Labeled, ZeroShotClassifier
from albench.api.strategy import RoundContext, Strategy, check_selection

CheckFn = Callable[[type, AdapterEnv, Mapping[str, Any]], None]


class ConformanceError(AssertionError):
    """A plugin broke the albench contract."""


def _fail(msg: str) -> None:
    raise ConformanceError(msg)


# ---------------------------------------------------------------- strategies
def _round_cases(cls: type[Strategy]) -> list[tuple[int, np.ndarray]]:
    """Round 2 with 8 labels, and round 1 with none unless the strategy needs labels."""
    cases = [(2, np.arange(0, 16, 2))]
    if not cls.needs_labels:
        cases.insert(0, (1, np.zeros(0, dtype=np.int64)))
    return cases


def _context(env: AdapterEnv, rnd: int, labeled: np.ndarray, seed: int, model: Any) -> RoundContext:
    y = env.dataset.pool.labels
    return RoundContext(
        round=rnd,
        budget=5,
        pool_size=len(env.dataset.pool),
        num_classes=env.dataset.num_classes,
        labeled=labeled.copy(),
        labels=y[labeled].copy(),
        rng=np.random.default_rng(seed),
        model=model,
        env=env,
        state={},
    )


def check_strategy_is_subclass(cls: type, env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """A strategy is a subclass of ``albench.api.strategy.Strategy``."""
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        _fail(f"{cls!r} is not a subclass of albench.api.strategy.Strategy")


def check_strategy_selection_valid(cls: type[Strategy], env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """``select`` returns exactly ``budget`` distinct, unlabelled, in-range integer indices."""
    model = ZeroShotClassifier(env)
    for rnd, labeled in _round_cases(cls):
        c = _context(env, rnd, labeled, 0, model)
        try:
            check_selection(cls.name, cls(**options).select(c), c)
        except Exception as exc:
            _fail(f"round {rnd}: {exc}")


def check_strategy_leaves_context_unchanged(cls: type[Strategy], env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """``select`` does not mutate ``ctx.labeled`` or ``ctx.labels``."""
    model = ZeroShotClassifier(env)
    for rnd, labeled in _round_cases(cls):
        c = _context(env, rnd, labeled, 0, model)
        before = (c.labeled.copy(), c.labels.copy())
        cls(**options).select(c)
        if not (np.array_equal(before[0], c.labeled) and np.array_equal(before[1], c.labels)):
            _fail(f"{cls.name} mutated ctx.labeled / ctx.labels")


def check_strategy_deterministic(cls: type[Strategy], env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """Two fresh instances given rngs of the same seed select the same indices."""
    model = ZeroShotClassifier(env)
    for rnd, labeled in _round_cases(cls):
        first = np.sort(np.asarray(cls(**options).select(_context(env, rnd, labeled, 0, model))))
        again = np.sort(np.asarray(cls(**options).select(_context(env, rnd, labeled, 0, model))))
        if not np.array_equal(first, again):
            _fail(f"{cls.name} is not deterministic given the round's rng: {first.tolist()} vs {again.tolist()}")


def check_strategy_uses_rng_when_stochastic(cls: type[Strategy], env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """A strategy declaring ``stochastic = True`` draws its randomness from ``ctx.rng`` (6 seeds differ)."""
    if not cls.stochastic:
        return
    model = ZeroShotClassifier(env)
    for rnd, labeled in _round_cases(cls):
        outs = {
            tuple(np.sort(np.asarray(cls(**options).select(_context(env, rnd, labeled, s, model))))) for s in range(6)
        }
        if len(outs) == 1:
            _fail(f"{cls.name} declares stochastic=True but ignores ctx.rng (6 seeds gave the same picks)")


def check_round_context_refuses_oversized_budget(
    cls: type[Strategy], env: AdapterEnv, options: Mapping[str, Any]
) -> None:
    """The harness never asks for more labels than the unlabelled pool holds (so ``select`` need not cope)."""
    n = len(env.dataset.pool)
    try:
        RoundContext(
            round=1,
            budget=n + 1,
            pool_size=n,
            num_classes=env.dataset.num_classes,
            labeled=np.zeros(0, int),
            labels=np.zeros(0, int),
            rng=np.random.default_rng(0),
            model=ZeroShotClassifier(env),
            env=env,
        )
    except Exception:
        return
    _fail("RoundContext accepted a budget larger than the unlabelled pool")


def strategy_checks() -> list[CheckFn]:
    """The strategy rules, in the order ``run_checks`` runs them."""
    return [
        check_strategy_is_subclass,
        check_strategy_selection_valid,
        check_strategy_leaves_context_unchanged,
        check_strategy_deterministic,
        check_strategy_uses_rng_when_stochastic,
        check_round_context_refuses_oversized_budget,
    ]


# ---------------------------------------------------------------- adapters
def _state_hash(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _tiny_labeled(env: AdapterEnv) -> Labeled:
    """Fewer samples than a batch, and one class without any label."""
    y = env.dataset.pool.labels
    idx = np.flatnonzero(y != env.dataset.num_classes - 1)[:6]
    return Labeled(idx, y[idx])


@dataclass
class _Fitted:
    adapter: Adapter
    info: Any
    logits: torch.Tensor
    params_before: list[torch.Tensor]
    backbone_before: str
    backbone_after: str


_FITTED: dict[tuple[Any, ...], _Fitted] = {}


def _fitted(cls: type[Adapter], env: AdapterEnv, options: Mapping[str, Any]) -> _Fitted:
    """One fit on the tiny labelled set, shared by the adapter checks on the same (class, env, options)."""
    key = (cls, id(env), repr(sorted(options.items())))
    if key not in _FITTED:
        before = _state_hash(env.backbone.model)
        a = cls(env, **options)
        params_before = [p.detach().clone() for p in a.trainable_parameters()]
        info = a.fit(_tiny_labeled(env))
        _FITTED.clear()  # keep at most one fitted adapter alive
        _FITTED[key] = _Fitted(
            a, info, a.predict_logits("test"), params_before, before, _state_hash(env.backbone.model)
        )
    return _FITTED[key]


def check_adapter_is_subclass(cls: type, env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """An adapter is a subclass of ``albench.api.adapter.Adapter``."""
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        _fail(f"{cls!r} is not a subclass of albench.api.adapter.Adapter")


def check_adapter_fit_returns_dict(cls: type[Adapter], env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """``fit`` copes with a tiny set (one class unlabelled) and returns a dict of training facts."""
    info = _fitted(cls, env, options).info
    if not isinstance(info, dict):
        _fail(f"{cls.name}.fit must return a dict of training facts, got {type(info).__name__}")


def check_adapter_logits_shape_and_finite(cls: type[Adapter], env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """``predict_logits(split)`` is a finite (n, C) tensor."""
    logits = _fitted(cls, env, options).logits
    shape = (len(env.dataset.test), env.dataset.num_classes)
    if tuple(logits.shape) != shape:
        _fail(f"{cls.name}.predict_logits('test') has shape {tuple(logits.shape)}, expected {shape}")
    if not torch.isfinite(logits).all():
        _fail(f"{cls.name}.predict_logits returned non-finite values")


def check_adapter_logits_of_indices(cls: type[Adapter], env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """``predict_logits(split, indices)`` equals the matching rows of the full-split logits."""
    f = _fitted(cls, env, options)
    sub = f.adapter.predict_logits("test", np.array([3, 1]))
    if not torch.allclose(sub.float(), f.logits[[3, 1]].float(), atol=1e-4, rtol=1e-4):
        _fail(f"{cls.name}.predict_logits(split, indices) disagrees with the full-split logits")


def check_adapter_feature_and_classifier_shapes(
    cls: type[Adapter], env: AdapterEnv, options: Mapping[str, Any]
) -> None:
    """``image_features('pool')`` is (N, D) and ``classifier()`` is (C, D)."""
    a = _fitted(cls, env, options).adapter
    feats = a.image_features("pool")
    if feats.ndim != 2 or feats.shape[0] != len(env.dataset.pool):
        _fail(f"{cls.name}.image_features('pool') has shape {tuple(feats.shape)}")
    w = a.classifier()
    if w.ndim != 2 or w.shape[0] != env.dataset.num_classes:
        _fail(f"{cls.name}.classifier() has shape {tuple(w.shape)}, expected ({env.dataset.num_classes}, D)")


def check_adapter_backbone_frozen(cls: type[Adapter], env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """Training changes neither the backbone's weights nor its ``requires_grad`` flags."""
    f = _fitted(cls, env, options)
    if f.backbone_after != f.backbone_before:
        _fail(f"{cls.name} changed the backbone's weights")
    if any(p.requires_grad for p in env.backbone.model.parameters()):
        _fail(f"{cls.name} switched gradients on for backbone parameters")


def check_adapter_fit_trains(cls: type[Adapter], env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """``fit`` changes at least one of ``trainable_parameters()`` (when it declares any)."""
    f = _fitted(cls, env, options)
    after = f.adapter.trainable_parameters()
    if f.params_before and all(torch.equal(b, p.detach()) for b, p in zip(f.params_before, after)):
        _fail(f"{cls.name}.fit did not change any of its trainable parameters")


def check_adapter_deterministic(cls: type[Adapter], env: AdapterEnv, options: Mapping[str, Any]) -> None:
    """Two fits with the same env (seed, round) give the same logits."""
    f = _fitted(cls, env, options)
    b = cls(env, **options)
    b.fit(_tiny_labeled(env))
    if not torch.allclose(b.predict_logits("test").float(), f.logits.float(), atol=1e-5):
        _fail(f"{cls.name} is not deterministic: two fits with the same seed gave different logits")


def adapter_checks() -> list[CheckFn]:
    """The adapter rules, in the order ``run_checks`` runs them."""
    return [
        check_adapter_is_subclass,
        check_adapter_fit_returns_dict,
        check_adapter_logits_shape_and_finite,
        check_adapter_logits_of_indices,
        check_adapter_feature_and_classifier_shapes,
        check_adapter_backbone_frozen,
        check_adapter_fit_trains,
        check_adapter_deterministic,
    ]


def run_checks(checks: list[CheckFn], cls: type, env: AdapterEnv, options: Mapping[str, Any] | None = None) -> None:
    """Run ``checks`` in order on ``cls``; the first broken rule raises ``ConformanceError``."""
    try:
        for check in checks:
            check(cls, env, dict(options or {}))
    finally:
        _FITTED.clear()
