"""DualPrompt (the seed paper's method): adapter, losses, selection rule, mining, end-to-end runs."""

import numpy as np
import pytest
import torch

from albench.api.adapter import Labeled, ZeroShotClassifier
from albench.testing import check_adapter, check_strategy, tiny_env
from albench.api.errors import AlbenchError
from albench.api.strategy import RoundContext, check_selection
from albench_adapters.dualprompt import DualPrompt, clean_probability_from_logits, complementary_labels, dualprompt_loss
from albench_strategies.dualprompt import STATE_KEY, DualPromptStrategy, per_class_top, quota_select, zero_shot_pseudo

FAST = {"epochs": 2, "min_steps": 0}


@pytest.fixture(scope="module")
def env():
    return tiny_env()


# ---------------------------------------------------------------- conformance
def test_adapter_conforms():
    check_adapter("dualprompt", options=FAST)


def test_adapter_deep_vpt_conforms(env):
    check_adapter(DualPrompt, options={**FAST, "vpt_deep": True}, env=env)


def test_strategy_conforms():
    check_strategy("dualprompt", options=FAST)


def test_bad_options_name_values():
    with pytest.raises(AlbenchError, match="n_ctx=0; valid: an integer >= 1"):
        DualPrompt(tiny_env(), n_ctx=0)
    with pytest.raises(AlbenchError, match="vpt_deep=true needs vpt_tokens > 0"):
        DualPrompt(tiny_env(), vpt_tokens=0, vpt_deep=True)
    with pytest.raises(AlbenchError, match="Available: .*K.*k"):
        DualPromptStrategy(kk=3)
    with pytest.raises(AlbenchError, match=r"option k=-1 is not valid; expected an integer in 0\.\.100000"):
        DualPromptStrategy(k=-1)


# ---------------------------------------------------------------- losses
def test_loss_is_the_corrected_eq5():
    """L2 = -log p_clean(y) - log(1 - p_clean(y~)), not the printed -log p(y~) + log(1 - p(y~))."""
    torch.manual_seed(0)
    img, tp, tn = (
        torch.randn(6, 8),
        torch.nn.functional.normalize(torch.randn(3, 8), dim=-1),
        torch.nn.functional.normalize(torch.randn(3, 8), dim=-1),
    )
    y, comp = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([1, 2, 0, 2, 0, 1])
    parts = dualprompt_loss(img, tp, tn, y, comp, scale=10.0, lam=0.5)
    v = torch.nn.functional.normalize(img, dim=-1)
    pos, neg = 10 * v @ tp.T, 10 * v @ tn.T
    p_all = torch.exp(pos) / (torch.exp(pos) + torch.exp(neg))
    r = torch.arange(6)
    l2 = (-torch.log(p_all[r, y]) - torch.log(1 - p_all[r, comp])).mean()
    l1 = torch.nn.functional.cross_entropy(pos, y)
    assert torch.allclose(parts.l2, l2, atol=1e-5) and torch.allclose(parts.l1, l1, atol=1e-5)
    assert torch.allclose(parts.total, l1 + 0.5 * l2, atol=1e-5)
    assert torch.allclose(clean_probability_from_logits(pos, neg, y), p_all[r, y])
    assert torch.allclose(clean_probability_from_logits(pos, neg), p_all[r, pos.argmax(1)])


def test_complementary_labels_uniform_over_other_classes():
    g = torch.Generator().manual_seed(0)
    y = torch.zeros(20000, dtype=torch.long)
    c = complementary_labels(y, 5, g)
    assert (c != y).all()
    freq = torch.bincount(c, minlength=5).float() / len(c)
    assert freq[0] == 0 and torch.allclose(freq[1:], torch.full((4,), 0.25), atol=0.02)


@pytest.mark.parametrize("deep, detach", [(False, True), (True, False)])
def test_l2_gradients_reach_negative_and_visual_prompts(env, deep, detach):
    a = DualPrompt(env, vpt_deep=deep, detach_positive=detach)
    idx = np.arange(8)
    img = a._encode_pixels(a.env.bank.pixels("pool", idx))
    tp, tn = a.model.text_features()
    y = torch.as_tensor(env.task.pool.labels[idx])
    comp = complementary_labels(y, env.num_classes, torch.Generator().manual_seed(0))
    dualprompt_loss(img, tp, tn, y, comp, env.backbone.logit_scale, detach_positive=detach).l2.backward()
    m = a.model
    assert m.neg.ctx.grad is not None and m.neg.ctx.grad.abs().sum() > 0
    assert m.visual.shallow.grad is not None and m.visual.shallow.grad.abs().sum() > 0
    if deep:
        assert m.visual.deep_prompts.grad is not None and (m.visual.deep_prompts.grad.abs().sum((1, 2)) > 0).all()
    pos_grad = 0.0 if m.pos.ctx.grad is None else float(m.pos.ctx.grad.abs().sum())
    assert (pos_grad == 0.0) if detach else (pos_grad > 0.0)
    assert all(p.grad is None for p in env.backbone.model.parameters())


def test_detach_image_keeps_l2_away_from_visual_prompts(env):
    a = DualPrompt(env, detach_image=True)
    idx = np.arange(8)
    img = a._encode_pixels(a.env.bank.pixels("pool", idx))
    tp, tn = a.model.text_features()
    y = torch.as_tensor(env.task.pool.labels[idx])
    comp = complementary_labels(y, env.num_classes, torch.Generator().manual_seed(0))
    parts = dualprompt_loss(img, tp, tn, y, comp, env.backbone.logit_scale, detach_image=True)
    plain = dualprompt_loss(img, tp, tn, y, comp, env.backbone.logit_scale)
    assert torch.allclose(parts.l2, plain.l2)  # same value, different gradient paths
    parts.l2.backward()
    m = a.model
    assert m.neg.ctx.grad.abs().sum() > 0
    assert m.visual.shallow.grad is None or float(m.visual.shallow.grad.abs().sum()) == 0.0


def test_visual_lr_scale_sets_the_visual_group_lr(env, monkeypatch):
    import albench_adapters.dualprompt as mod

    seen = {}
    monkeypatch.setattr(mod, "train", lambda groups, *a, **k: seen.update(groups=groups) or {"steps": 0})
    a = DualPrompt(env, lr=0.01, visual_lr_scale=3.0)
    a.fit(Labeled(np.arange(4), env.task.pool.labels[:4]))
    text, visual = seen["groups"]
    assert text["lr"] == 0.01 and visual["lr"] == pytest.approx(0.03)
    assert visual["params"] == list(a.model.visual.parameters()) and len(text["params"]) == 2
    with pytest.raises(AlbenchError, match="visual_lr_scale=0"):
        DualPrompt(env, visual_lr_scale=0)


@pytest.mark.parametrize(
    ("augment", "image_size", "expected"),
    [("auto", 32, False), ("auto", 64, True), ("auto", 224, True), (True, 32, True), (False, 224, False)],
)
def test_augment_auto_follows_the_image_size(monkeypatch, augment, image_size, expected):
    """ "auto" (the default) augments real-size images only: on the toy world's 32 px a flip changes a digit.
    The toy tower cannot encode the pretended sizes, so no pixel is read: its own env (nothing shared is
    touched), uniform prompt init (no patch-mean pass) and a pixel feed stopped as soon as it is built."""
    import albench_adapters.dualprompt as mod

    env = tiny_env()

    seen = {}

    class FeedBuilt(Exception):
        pass

    class SpyFeed(mod.PixelFeed):
        def __init__(self, *a, augment=False, **k):
            seen["augment"] = augment
            raise FeedBuilt

    monkeypatch.setattr(mod, "PixelFeed", SpyFeed)
    monkeypatch.setattr(env.backbone, "image_size", image_size)
    a = DualPrompt(env, **FAST, vpt_init="uniform", **({} if augment == "auto" else {"augment": augment}))
    assert a.options["augment"] == augment
    with pytest.raises(FeedBuilt):
        a.fit(Labeled(np.arange(4), env.task.pool.labels[:4]))
    assert seen["augment"] is expected
    with pytest.raises(AlbenchError, match="augment='maybe'"):
        DualPrompt(env, augment="maybe")


def test_pseudo_overlapping_labels_are_dropped_and_counts_reported(env):
    a = DualPrompt(env, **FAST)
    y = env.task.pool.labels
    info = a.fit(Labeled(np.arange(4), y[:4]), Labeled(np.arange(2, 12), (y[2:12] + 1) % 4))
    assert info["labeled"] == 4 and info["pseudo"] == 8 and info["steps"] == 2
    p = a.clean_probability("pool", np.arange(5))
    assert p.shape == (5,) and ((p > 0) & (p < 1)).all()
    with pytest.raises(AlbenchError, match="labels must lie in 0..3"):
        DualPrompt(env, **FAST).fit(Labeled([0, 1], [0, 7]))


# ---------------------------------------------------------------- selection rule
def test_quota_and_remainder_rule_exact():
    # 3 classes, budget 8 -> quota floor(8/3) = 2 per class; class 1 has a single candidate (shortfall 1),
    # so the remainder is 8 mod 3 = 2 plus 1 = 3 samples, chosen by lowest p_clean among everything left.
    pred = np.array([0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 0, 2])
    p = np.array([0.10, 0.20, 0.05, 0.90, 0.15, 0.80, 0.30, 0.35, 0.60, 0.70, 0.12, 0.33])
    got, shortfall = quota_select(p, pred, 8, 3)
    assert shortfall == 1  # class 1's missing candidate is the fallback; 8 mod 3 is the designed remainder
    # per class: class 0 -> positions 2 (.05), 0 (.10); class 1 -> 5 (.80); class 2 -> 6 (.30), 11 (.33)
    # remainder from the rest {1 .20, 3 .90, 4 .15, 7 .35, 8 .60, 9 .70, 10 .12}: 10, 4, 1
    assert sorted(got[:5].tolist()) == [0, 2, 5, 6, 11]
    assert got[5:].tolist() == [10, 4, 1]
    assert len(set(got.tolist())) == 8
    # budget below C: everything by lowest p_clean overall
    assert quota_select(p, pred, 2, 3)[0].tolist() == [2, 0]
    # exact multiple: pure per-class quotas
    assert sorted(quota_select(np.array([0.5, 0.4, 0.3, 0.2]), np.array([0, 0, 1, 1]), 2, 2)[0].tolist()) == [1, 3]
    with pytest.raises(AlbenchError, match="budget 13 exceeds the 12"):
        quota_select(p, pred, 13, 3)


def test_mining_picks_per_class_top_k():
    pred = np.array([0, 0, 0, 1, 1, 2, 0, 1])
    p = np.array([0.9, 0.2, 0.95, 0.4, 0.8, 0.7, 0.5, 0.99])
    assert per_class_top(p, pred, 2, 4).tolist() == [0, 2, 4, 5, 7]  # class 2 has one, class 3 none
    assert per_class_top(p, pred, 0, 4).tolist() == []
    probs = np.array([[0.7, 0.3], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]])
    idx, lab = zero_shot_pseudo(probs, np.array([0, 2, 3, 4]), K=1)  # candidate 1 excluded
    assert idx.tolist() == [0, 2] and lab.tolist() == [0, 1]


class _FixedDual(DualPrompt):
    """A 'trained' dual-prompt adapter whose positive/negative logits are hand-built."""

    def set_logits(self, pos, neg):
        self._pos, self._neg, self.fitted = torch.as_tensor(pos), torch.as_tensor(neg), True

    def dual_logits(self, split, indices=None):
        return (self._pos, self._neg) if indices is None else (self._pos[indices], self._neg[indices])


def test_strategy_select_and_mine_on_constructed_case(env, monkeypatch):
    n, c = len(env.task.pool), env.num_classes
    rng = np.random.default_rng(0)
    pred = np.arange(n) % c
    pred[pred == 3] = 2  # class 3 is never predicted
    pos = torch.full((n, c), -5.0)
    pos[np.arange(n), pred] = 5.0
    margin = torch.as_tensor(rng.normal(0, 2, n), dtype=torch.float32)  # p_clean = sigmoid(margin)
    neg = pos.clone()
    neg[np.arange(n), pred] = 5.0 - margin
    model = DualPrompt.__new__(_FixedDual)
    model.set_logits(pos, neg)
    fits = []
    monkeypatch.setattr(DualPrompt, "fit", lambda self, *a, **k: fits.append(1))
    labeled = np.array([0, 1, 2])
    ctx = RoundContext(
        round=2,
        budget=7,
        pool_size=n,
        num_classes=c,
        labeled=labeled,
        labels=env.task.pool.labels[labeled],
        rng=np.random.default_rng(0),
        model=model,
        env=env,
        state={},
    )
    picked = check_selection("dualprompt", DualPromptStrategy(k=3).select(ctx), ctx)
    assert fits == []  # the run's trained dual-prompt adapter is reused, not retrained
    unl = ctx.unlabeled
    pc = torch.sigmoid(margin).numpy()[unl]
    expect = unl[quota_select(pc, pred[unl], 7, c)[0]]
    assert picked.tolist() == expect.tolist()
    # quota floor(7/4) = 1 from each of classes 0, 1, 2 (class 3 has no candidates), then 4 by lowest p_clean
    for cls in range(3):
        members = unl[pred[unl] == cls]
        assert members[np.argmin(torch.sigmoid(margin).numpy()[members])] in picked
    mined_idx, mined_lab = ctx.pseudo_labels
    assert ctx.state[STATE_KEY][0] is mined_idx
    assert not set(mined_idx.tolist()) & (set(picked.tolist()) | set(labeled.tolist()))
    assert np.array_equal(mined_lab, pred[mined_idx]) and np.bincount(mined_lab, minlength=c).tolist() == [3, 3, 3, 0]
    rest = np.setdiff1d(unl, picked)
    for cls in range(3):
        members = rest[pred[rest] == cls]
        top = members[np.argsort(-torch.sigmoid(margin).numpy()[members], kind="stable")[:3]]
        assert sorted(mined_idx[mined_lab == cls].tolist()) == sorted(top.tolist())


def test_round1_trains_own_model_on_zero_shot_top_K(env, monkeypatch):
    seen = {}
    real_fit = DualPrompt.fit

    def spy(self, labeled, pseudo=None):
        seen["labeled"], seen["pseudo"] = len(labeled), pseudo
        return real_fit(self, labeled, pseudo)

    monkeypatch.setattr(DualPrompt, "fit", spy)
    n = len(env.task.pool)
    zs = ZeroShotClassifier(env)
    ctx = RoundContext(
        round=1,
        budget=4,
        pool_size=n,
        num_classes=env.num_classes,
        labeled=np.zeros(0, int),
        labels=np.zeros(0, int),
        rng=np.random.default_rng(0),
        model=zs,
        env=env,
        state={},
    )
    DualPromptStrategy(K=3, **FAST).select(ctx)
    exp_idx, exp_lab = zero_shot_pseudo(ctx.probs, np.arange(n), 3)
    assert seen["labeled"] == 0 and np.array_equal(seen["pseudo"].indices, exp_idx)
    assert np.array_equal(seen["pseudo"].labels, exp_lab) and np.bincount(exp_lab).max() <= 3
    assert ctx.state["dualprompt_last"]["model"].startswith(
        "trained its own model (the strategy's options) on 0 labels + zero-shot top-3"
    )


# ---------------------------------------------------------------- learning on the shipped toy CLIP
@pytest.mark.slow
def test_p_clean_separates_correct_from_corrupted_labels(toy_backbone, workspace):
    """Train on a toy task with 30 % flipped labels; p_clean(image, given label) ranks the correct ones higher."""
    from sklearn.metrics import roc_auc_score

    from albench.api.adapter import AdapterEnv

    task = workspace.task("toy_shapes", None)
    env = AdapterEnv(toy_backbone, task, workspace.bank(toy_backbone, task), seed=1, round=1)
    rng = np.random.default_rng(0)
    y, c = task.pool.labels, task.num_classes
    idx = np.concatenate([rng.choice(np.flatnonzero(y == k), 25, replace=False) for k in range(c)])
    given = y[idx].copy()
    flipped = rng.random(idx.size) < 0.3
    given[flipped] = (given[flipped] + rng.integers(1, c, flipped.sum())) % c
    # deep VPT: on the 3-layer toy CLIP, shallow random prompts need more steps to recover (README)
    a = DualPrompt(env, epochs=5, min_steps=0, vpt_deep=True)
    a.fit(Labeled(idx, given))
    auroc = roc_auc_score(~flipped, a.clean_probability("pool", idx, given).numpy())
    assert auroc > 0.8, auroc


@pytest.mark.parametrize("adapter", ["dualprompt", "coop"])
@pytest.mark.slow
def test_runs_complete(tmp_path, workspace, adapter):
    from albench.engine.protocol import RunSpec, execute

    spec = RunSpec(
        strategy="dualprompt",
        adapter=adapter,
        dataset="toy_shapes",
        seed=1,
        rounds=2,
        strategy_options={"epochs": 1, "min_steps": 0, "k": 4},
        adapter_options={"epochs": 1, "min_steps": 0},
    )
    rec = execute(spec, tmp_path, workspace).record
    b = rec["round_budget"]
    assert [r["labeled"] for r in rec["rounds"]] == [b, 2 * b]
    for r in rec["rounds"]:  # every diagnostic of a dual-prompt selection is in the record
        d = r["diagnostics"]
        assert all(d["auroc"][k] is not None for k in ("max_softmax", "entropy", "margin", "p_clean"))
        assert d["selection"]["model_has_dual_prompts"] and sum(d["selection"]["predicted_class_hist"]) == b
        assert d["pseudo_labels"]["size"] > 0 and 0 <= d["pseudo_labels"]["precision"] <= 1
        assert d["pseudo_labels"]["used_by_adapter"] == (adapter == "dualprompt")
        assert d["mean_p_clean"]["correct"] is not None and 0 <= d["test"]["balanced_accuracy"] <= 100
    models = [r["diagnostics"]["selection"]["model"] for r in rec["rounds"]]
    if adapter == "dualprompt":
        assert models[0].startswith("trained its own model (the adapter's options)")
        assert models[1] == "reused the run's dual-prompt adapter"
    else:
        assert all(m.startswith("trained its own model (the strategy's options)") for m in models)
    sel = sum((r["selected"] for r in rec["rounds"]), [])
    assert len(set(sel)) == len(sel) == 2 * b
    assert all(0 <= r["accuracy"] <= 100 for r in rec["rounds"])
    # pseudo-labels reach the adapter that accepts them (k per predicted class), never CoOp
    for r in rec["rounds"]:
        assert (
            (0 < r["pseudo_labeled"] <= 4 * rec["num_classes"]) if adapter == "dualprompt" else r["pseudo_labeled"] == 0
        )


# ---------------------------------------------------------------- "Ours" consistency
def _round1_ctx(env):
    n = len(env.task.pool)
    return RoundContext(
        round=1,
        budget=4,
        pool_size=n,
        num_classes=env.num_classes,
        labeled=np.zeros(0, int),
        labels=np.zeros(0, int),
        rng=np.random.default_rng(0),
        model=ZeroShotClassifier(env),
        env=env,
        state={},
    )


def _built_models(monkeypatch):
    built = []
    real_init = DualPrompt.__init__

    def spy(self, env, **kw):
        real_init(self, env, **kw)
        built.append(self)

    monkeypatch.setattr(DualPrompt, "__init__", spy)
    return built


def test_ours_round1_model_takes_the_adapter_options(env, monkeypatch):
    import dataclasses

    from albench.api.options import resolve_options

    built = _built_models(monkeypatch)
    a_opts = resolve_options(
        "adapter", "dualprompt", DualPrompt.defaults, {"vpt_tokens": 0, "epochs": 1, "min_steps": 0, "lam": 0.5}
    )
    ours = dataclasses.replace(env, extra={"adapter": "dualprompt", "adapter_options": a_opts})
    ctx = _round1_ctx(ours)
    DualPromptStrategy(K=2).select(ctx)
    assert built[-1].model.visual is None and built[-1].options["lam"] == 0.5  # the adapter's, not 20 tokens
    assert "the adapter's options" in ctx.selection_model_note and ctx.selection_model is built[-1]
    # with another adapter the strategy's own options apply
    other = dataclasses.replace(env, extra={"adapter": "coop", "adapter_options": {}})
    ctx = _round1_ctx(other)
    DualPromptStrategy(K=2, epochs=1, min_steps=0, vpt_tokens=3).select(ctx)
    assert built[-1].model.visual is not None and built[-1].options["vpt_tokens"] == 3
    assert "the strategy's options" in ctx.selection_model_note


def test_ours_names_strategy_model_options_it_ignores(env):
    import dataclasses

    ours = dataclasses.replace(
        env, extra={"adapter": "dualprompt", "adapter_options": {**DualPrompt.defaults, "vpt_tokens": 0, "epochs": 1}}
    )
    s = DualPromptStrategy(K=2, vpt_tokens=20, epochs=1)
    opts, whose = s.own_model_options(_round1_ctx(ours))
    assert opts["vpt_tokens"] == 0 and whose == "the adapter's options; ignored strategy options vpt_tokens=20"


@pytest.mark.slow
def test_patch_mean_init_keeps_the_prompted_tower_at_zero_shot(toy_backbone, workspace):
    """The toy ViT loses its features when near-zero prompt tokens join its sequence; centred prompts do not."""
    from albench.api.adapter import AdapterEnv, accuracy
    from albench.components.training import cosine_logits

    task = workspace.task("toy_shapes", None)
    env = AdapterEnv(toy_backbone, task, workspace.bank(toy_backbone, task), seed=4, round=1)
    text = toy_backbone.text_classifier(task.prompts()).cpu()
    y = task.test.labels
    zs = accuracy(ZeroShotClassifier(env).predict_logits("test"), y)
    acc = {
        (init, n): accuracy(
            cosine_logits(
                DualPrompt(env, vpt_init=init, vpt_tokens=n).image_features("test"), text, toy_backbone.logit_scale
            ),
            y,
        )
        for init in ("patch_mean", "uniform")
        for n in (2, 20)
    }
    # untrained, on the 64-patch toy CLIP: 2 centred tokens leave zero-shot (78.5 %) within 3 points, while
    # VPT's uniform init already costs about 7; with 20 tokens centring still keeps about 13 points more
    assert acc["patch_mean", 2] >= zs - 3.0, (acc, zs)
    assert acc["patch_mean", 2] > acc["uniform", 2] + 3.0, (acc, zs)
    assert acc["patch_mean", 20] > acc["uniform", 20] + 8.0, (acc, zs)
    a = DualPrompt(env)
    b = DualPrompt(env, vpt_init="uniform")
    assert torch.allclose(
        a.model.visual.shallow - b.model.visual.shallow,
        (a.model.visual.shallow - b.model.visual.shallow)[0].expand_as(a.model.visual.shallow),
    )
