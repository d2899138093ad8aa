"""Adapters: exact splicing, parameter isolation, options, augmentation, feature reuse."""

import hashlib
import math

import numpy as np
import pytest
import torch

from albench import accounting
from albench.api.adapter import AdapterEnv, Labeled
from albench.components.augment import Crops, apply_crops, random_resized_crop_flip, sample_crops
from albench.testing import tiny_task
from albench.api.errors import AlbenchError
from albench.data.features import DataBank, FeatureCache
from albench.api.plugins import ADAPTERS
from albench.components.training import PixelFeed, TrainConfig, train
from albench_adapters.coop import CoOp
from albench_adapters.maple import MaPLe
from albench_adapters.vpt import VPT, VisualPrompts
from albench_adapters.zeroshot import ZeroShot

TRAINABLE = {"coop": CoOp, "vpt": VPT, "maple": MaPLe}


def weights_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def env(random_backbone):
    task = tiny_task()
    return AdapterEnv(random_backbone, task, DataBank(random_backbone, task, cache=None), seed=3, round=2)


@pytest.fixture(scope="module")
def vitb16_env():
    """A real open_clip ViT-B/16 (random init): 12-block towers, 77-token text, 224 px images."""
    from albench.clip.backbone import Backbone, BackboneSpec

    bb = Backbone.load(BackboneSpec("ViT-B-16", pretrained="random"), device="cpu")
    task = tiny_task(num_classes=3, pool_per_class=2, test_per_class=1)
    return AdapterEnv(bb, task, DataBank(bb, task, cache=None), seed=0, round=1)


def names(env):
    return [c.replace("_", " ") for c in env.task.classnames]


# ---- registration ---------------------------------------------------------
def test_adapters_registered_with_citations():
    for name in ("zeroshot", "coop", "vpt", "maple"):
        cls = ADAPTERS.get(name)
        assert cls.name == name
        doc = cls.__module__ and __import__(cls.__module__, fromlist=["x"]).__doc__
        assert "github.com/" in doc and any(y in doc for y in ("2021", "2022", "2023"))
    assert ADAPTERS.get("vpt").frozen_image_encoder is False
    assert ADAPTERS.get("maple").frozen_image_encoder is False
    assert ADAPTERS.get("coop").frozen_image_encoder is True


# ---- exact splicing -------------------------------------------------------
@pytest.mark.parametrize("which", ["toy", pytest.param("vitb16", marks=pytest.mark.slow)])
def test_coop_splice_equals_encode_text(which, env, vitb16_env):
    e = env if which == "toy" else vitb16_env
    bb = e.backbone
    with torch.no_grad():
        for pos in ("end", "middle", "front"):
            a = CoOp(e, n_ctx=0, class_token_position=pos)
            ref = bb.encode_text(bb.tokenize([f"{n}." for n in names(e)]))
            assert (a.prompt.text_features() - ref).abs().max() < 1e-5
        # the template's tokens as (word-initialised) context: exactly CLIP's prompt at init
        a = CoOp(e, ctx_init="a photo of a")
        assert tuple(a.prompt.ctx.shape) == (4, bb.text_width)
        ref = bb.encode_text(bb.tokenize([f"a photo of a {n}." for n in names(e)]))
        assert (a.prompt.text_features() - ref).abs().max() < 1e-5


@pytest.mark.parametrize("which", ["toy", pytest.param("vitb16", marks=pytest.mark.slow)])
def test_vpt_zero_tokens_equals_encode_image(which, env, vitb16_env):
    e = env if which == "toy" else vitb16_env
    x = e.bank.pixels("test", np.arange(2))
    with torch.no_grad():
        ref = e.backbone.model.encode_image(x)
        for deep in (False, True):
            vp = VisualPrompts(e.backbone, 0, deep)
            assert (vp.features(x) - ref).abs().max() < 1e-5
        if which == "toy":  # the adapter's own image features with zero tokens are the cached frozen ones
            a = VPT(e, n_tokens=0)
            assert (a.image_features("test") - e.bank.features("test")).abs().max() < 1e-4


@pytest.mark.parametrize("which", ["toy", pytest.param("vitb16", marks=pytest.mark.slow)])
def test_maple_without_prompts_is_plain_clip(which, env, vitb16_env):
    e = env if which == "toy" else vitb16_env
    bb = e.backbone
    x = e.bank.pixels("test", np.arange(2))
    with torch.no_grad():
        m = MaPLe(e, n_ctx=0)
        # the paper's depth 9, capped by the shallower tower (deep prompts enter both towers)
        towers = min(len(bb.model.visual.transformer.resblocks), len(bb.model.transformer.resblocks))
        assert m.prompt.depth == min(9, towers)
        assert (m.encode_pixels(x) - bb.model.encode_image(x)).abs().max() < 1e-5
        ref = bb.encode_text(bb.tokenize([f"a photo of a {n}." for n in names(e)]))
        assert (m.text_weights() - ref).abs().max() < 1e-5


@pytest.mark.slow
def test_maple_init_quirk_only_a_photo_is_learnable(vitb16_env):
    bb = vitb16_env.backbone
    m = MaPLe(vitb16_env)
    assert m.prompt.depth == 9 and len(m.prompt.text_deep) == 8 and len(m.prompt.proj_deep) == 8
    with torch.no_grad():
        emb = bb.token_embeddings(bb.tokenize(["a photo of a"]))[0]
        assert torch.equal(m.prompt.ctx, emb[1:3])  # "a photo"
        # "of a" stays a fixed token embedding right after the two learnable vectors
        assert torch.equal(m.prompt.suffix[0, :2], emb[3:5])
        # with depth 1 (no deep prompts) the initial text side is exactly CLIP on "a photo of a {c}."
        shallow = MaPLe(vitb16_env, depth=1)
        ref = bb.encode_text(bb.tokenize([f"a photo of a {n}." for n in names(vitb16_env)]))
        assert (shallow.text_weights() - ref).abs().max() < 1e-5
    # the deep projections start as clones of one layer (reference ``_get_clones``)
    assert all(torch.equal(p.weight, m.prompt.proj_deep[0].weight) for p in m.prompt.proj_deep)
    # visual prompts are derived: only text prompts and projections are parameters
    n_params = sum(p.numel() for p in m.trainable_parameters())
    assert n_params == 2 * 512 + 9 * (512 * 768 + 768) + 8 * 2 * 512


@pytest.mark.slow
def test_vpt_init_and_shapes(env, vitb16_env):
    vp = VisualPrompts(vitb16_env.backbone, 20)
    assert tuple(vp.shallow.shape) == (20, 768) and vp.deep_prompts is None
    assert math.isclose(vp.init_bound, math.sqrt(6 / (3 * 16 * 16 + 768)))  # 0.0625
    assert vp.shallow.abs().max() <= vp.init_bound and vp.shallow.abs().max() > 0.9 * vp.init_bound
    deep = VisualPrompts(env.backbone, 20, deep=True)
    blocks = len(env.backbone.model.visual.transformer.resblocks)  # deep prompts enter every block after the first
    assert tuple(deep.deep_prompts.shape) == (blocks - 1, 20, env.backbone.vision_width)
    assert [p.shape for p in deep.parameters()] == [deep.shallow.shape, deep.deep_prompts.shape]
    # prompts change the features, deep ones differently from shallow ones
    x = env.bank.pixels("test", np.arange(2))
    with torch.no_grad():
        base = env.backbone.model.encode_image(x)
        assert (vp.__class__(env.backbone, 20).features(x) - base).abs().max() > 1e-3


# ---- parameters: only adapter parameters get gradients; backbone untouched ----
@pytest.mark.parametrize("name", ["coop", "vpt", "maple"])
def test_only_adapter_parameters_receive_gradients(name, env):
    bb = env.backbone
    before = weights_hash(bb.model)
    a = TRAINABLE[name](env, **({"min_steps": 0} if name == "coop" else {}))  # a few steps are enough here
    own = a.trainable_parameters()
    assert own and all(p.requires_grad for p in own)
    y = env.task.pool.labels
    idx = np.arange(8)
    if name == "coop":
        logits = a._logits(env.bank.features("pool")[idx], a.prompt.text_features())
    elif name == "vpt":
        logits = a.encode_pixels(env.bank.pixels("pool", idx)) @ a.text_weights().T
    else:
        logits = a.encode_pixels(env.bank.pixels("pool", idx)) @ a.text_weights().T
    torch.nn.functional.cross_entropy(logits, torch.as_tensor(y[idx])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in own)
    assert all(p.grad is None and not p.requires_grad for p in bb.model.parameters())
    for p in own:
        p.grad = None
    values = [p.detach().clone() for p in own]
    info = a.fit(Labeled(idx, y[idx]))
    assert info["steps"] > 0 and math.isfinite(info["final_loss"])
    assert any(not torch.equal(v, p.detach()) for v, p in zip(values, a.trainable_parameters()))
    assert weights_hash(bb.model) == before


def test_maple_gradients_reach_every_prompt_and_projection(env):
    m = MaPLe(env)
    idx = np.arange(6)
    logits = m.encode_pixels(env.bank.pixels("pool", idx)) @ m.text_weights().T
    torch.nn.functional.cross_entropy(logits, torch.as_tensor(env.task.pool.labels[idx])).backward()
    for n, p in m.prompt.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, n


def test_reinitialised_per_round_and_seed(random_backbone):
    task = tiny_task()
    bank = DataBank(random_backbone, task, cache=None)
    for cls in (CoOp, VPT, MaPLe):

        def p(s, r, cls=cls):
            adapter = cls(AdapterEnv(random_backbone, task, bank, s, r))
            return torch.cat([t.detach().flatten() for t in adapter.trainable_parameters()])

        assert torch.equal(p(1, 1), p(1, 1))
        assert not torch.equal(p(1, 1), p(1, 2)) and not torch.equal(p(1, 1), p(2, 1))


def test_zeroshot_adapter_is_clip_with_the_template(env):
    a = ZeroShot(env)
    assert a.fit(Labeled([0, 1], [0, 1]))["steps"] == 0 and a.trainable_parameters() == []
    bb = env.backbone
    with torch.no_grad():
        w = torch.nn.functional.normalize(bb.encode_text(bb.tokenize(env.task.prompts())), dim=-1)
    assert (a.classifier() - w).abs().max() < 1e-5
    img = torch.nn.functional.normalize(env.bank.features("test"), dim=-1)
    assert torch.allclose(a.predict_logits("test"), bb.logit_scale * img @ w.T, atol=1e-3)


# ---- user errors ------------------------------------------------------------
@pytest.mark.parametrize(
    "name, opts, needle",
    [
        ("coop", {"class_token_position": "left"}, "end, middle, front"),
        ("coop", {"aug_views": -1}, "aug_views=-1"),
        ("coop", {"n_ctx": 40}, "n_ctx=40"),
        ("coop", {"lr": 0.0}, "lr=0.0"),
        ("vpt", {"n_tokens": -2}, "n_tokens=-2"),
        ("vpt", {"epochs": 0}, "epochs=0"),
        ("vpt", {"aug_min_scale": 1.5}, "aug_min_scale=1.5"),
        ("maple", {"depth": 0}, "depth=0"),
        ("maple", {"n_ctx": -1}, "n_ctx=-1"),
        ("maple", {"nctx": 2}, "n_ctx"),
    ],
)
def test_bad_options_are_user_errors(name, opts, needle, env):
    with pytest.raises(AlbenchError, match="valid|Did you mean|Available") as ei:
        ADAPTERS.get(name)(env, **opts)
    assert needle in str(ei.value)


# ---- augmentation -------------------------------------------------------------
def test_augment_exact_boxes_and_flip():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    whole = Crops(
        torch.tensor([0, 0]),
        torch.tensor([0, 0]),
        torch.tensor([8, 8]),
        torch.tensor([8, 8]),
        torch.tensor([False, True]),
    )
    y = apply_crops(x, whole)
    assert torch.allclose(y[0], x[0]) and torch.allclose(y[1], x[1].flip(-1))
    box = Crops(
        torch.tensor([2, 0]),
        torch.tensor([4, 0]),
        torch.tensor([4, 8]),
        torch.tensor([4, 8]),
        torch.tensor([False, False]),
    )
    assert torch.allclose(apply_crops(x, box, size=4)[0], x[0, :, 2:6, 4:8], atol=1e-5)


def test_augment_sampling_is_seeded_and_in_range():
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    a, b, c = sample_crops(4000, 32, 32, g(1)), sample_crops(4000, 32, 32, g(1)), sample_crops(4000, 32, 32, g(2))
    assert torch.equal(a.top, b.top) and torch.equal(a.width, b.width) and torch.equal(a.flip, b.flip)
    assert not torch.equal(a.top, c.top)
    area = (a.height * a.width).float() / (32 * 32)
    assert area.min() >= 0.05 and area.max() <= 1.0 and area.mean() < 0.7  # scale (0.08, 1) up to rounding
    assert (a.top + a.height).max() <= 32 and (a.left + a.width).max() <= 32 and a.top.min() >= 0
    assert 0.45 < a.flip.float().mean() < 0.55
    x = torch.rand(5, 3, 32, 32)
    out = random_resized_crop_flip(x, g(0), size=16)
    assert out.shape == (5, 3, 16, 16) and out.min() >= x.min() - 1e-6 and out.max() <= x.max() + 1e-6
    with pytest.raises(AlbenchError, match="scale"):
        sample_crops(2, 8, 8, g(0), scale=(0.5, 0.1))


def test_pixel_feed_matches_bank_and_augments(env):
    plain = PixelFeed(env.bank, "pool")
    assert torch.equal(plain([3, 5]), env.bank.pixels("pool", [3, 5]))
    f1 = PixelFeed(env.bank, "pool", augment=True, generator=torch.Generator().manual_seed(0))
    f2 = PixelFeed(env.bank, "pool", augment=True, generator=torch.Generator().manual_seed(0))
    a, b = f1([3, 5]), f2([3, 5])
    assert torch.equal(a, b) and not torch.equal(a, plain([3, 5]))


# ---- feature reuse --------------------------------------------------------------
def test_coop_augmented_views_are_encoded_once_and_cached(random_backbone, tmp_path):
    task = tiny_task()
    cache = FeatureCache(tmp_path)
    bank = DataBank(random_backbone, task, cache=cache)
    n = len(task.pool)
    with accounting.measure() as first:
        views = bank.augmented_features("pool", 3)
    assert views.shape == (3, n, random_backbone.embed_dim)
    assert first["image_encoder_images"] == 3 * n
    assert not torch.allclose(views[0], views[1]) and not torch.allclose(views[0], bank.features("pool"))
    # a new run (fresh bank, same cache) and more rounds: zero image-encoder passes
    bank2 = DataBank(random_backbone, task, cache=cache)
    bank2.features("pool"), bank2.features("test")
    y = task.pool.labels
    with accounting.measure() as later:
        for r in (1, 2):
            a = CoOp(AdapterEnv(random_backbone, task, bank2, seed=1, round=r), aug_views=3, epochs=2, min_steps=0)
            a.fit(Labeled(np.arange(10), y[:10]))
            a.predict_logits("test"), a.predict_logits("pool")
        assert torch.equal(bank2.augmented_features("pool", 2), views[:2])  # views are cached one by one
    assert later.get("image_encoder_images", 0) == 0


def test_prompted_adapter_encodes_each_split_once_per_model(env):
    y = env.task.pool.labels
    a = VPT(env, epochs=1)
    with accounting.measure() as fit:
        info = a.fit(Labeled(np.arange(20), y[:20]))
    assert info["steps"] == 2 and fit["image_encoder_images"] == 20  # one epoch of 20 samples: batches of 16 and 4
    with accounting.measure() as ev:
        a.predict_logits("test"), a.predict_logits("pool"), a.image_features("pool"), a.predict_logits("test", [1, 2])
    assert ev["image_encoder_images"] == len(env.task.test) + len(env.task.pool)


def test_trainer_handles_tiny_sets_and_counts_steps():
    p = torch.nn.Parameter(torch.zeros(3))
    g = torch.Generator().manual_seed(0)
    seen = []

    def step(lb, pb):
        seen.append((len(lb), None if pb is None else len(pb)))
        return ((p - torch.as_tensor(lb.labels[:1], dtype=torch.float32)) ** 2).sum()

    info = train(
        [p], step, Labeled([0, 1, 2], [1, 1, 1]), Labeled(np.arange(70), np.ones(70)), TrainConfig(epochs=2), g
    )
    assert info["steps"] == 4 and seen[0] == (3, 64) and seen[1] == (3, 6)  # 70 pseudo = batches of 64 + 6
    assert train([p], step, Labeled([], []), None, TrainConfig(), g)["steps"] == 0
    assert train([p], step, Labeled([0], [1]), None, TrainConfig(epochs=1, min_steps=5), g)["steps"] == 5
