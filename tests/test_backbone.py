import json

import pytest
import torch

from albench.clip.backbone import Backbone, BackboneSpec
from albench.api.errors import AlbenchError, UnknownNameError, WeightsError


def test_truncated_text_equals_full_length(toy_backbone):
    bb = toy_backbone
    tok = bb.tokenize(["a photo of a red striped circle.", "ringed texture.", "x"])
    emb = bb.token_embeddings(tok)
    eot = bb.eot_positions(tok)
    full = bb.encode_text_embeddings(emb, eot, truncate=False)
    short = bb.encode_text_embeddings(emb, eot, truncate=True)
    assert (full - short).abs().max() < 1e-5
    assert (bb.encode_text(tok) - full).abs().max() < 1e-5


def test_prompted_image_encoder_without_prompts_is_plain(toy_backbone):
    x = torch.randn(3, 3, 32, 32)
    assert (toy_backbone.encode_images(x) - toy_backbone.encode_image_prompted(x)).abs().max() < 1e-5


def test_random_init_needs_explicit_flag():
    with pytest.raises(AlbenchError, match="--pretrained is required"):
        Backbone.load(BackboneSpec("ViT-B-16"), device="cpu")


def test_missing_pretrained_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(WeightsError) as err:
        Backbone.load(BackboneSpec("ViT-B-16", "openai"), device="cpu")
    msg = str(err.value)
    assert "never downloads" in msg and "Looked in" in msg and "--pretrained openai=/path/to" in msg


def test_unknown_tag_lists_valid_ones():
    with pytest.raises(UnknownNameError, match="Unknown pretrained tag for 'ViT-B-16' 'opena'. Did you mean: openai"):
        Backbone.load(BackboneSpec("ViT-B-16", "opena"), device="cpu")


def test_openai_tag_means_quick_gelu():
    from open_clip.pretrained import get_pretrained_cfg

    assert get_pretrained_cfg("ViT-B-16", "openai").get("quick_gelu") is True


TINY = {
    "embed_dim": 32,
    "quick_gelu": False,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture
def tiny_arch(tmp_path):
    import open_clip

    cfg = tmp_path / "cfgs"
    cfg.mkdir()
    (cfg / "albench-tiny-test.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(str(cfg))
    return "albench-tiny-test"


def test_quick_gelu_roundtrip_on_saved_random_init(tiny_arch, tmp_path):
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(3)
    ref = open_clip.create_model(tiny_arch, pretrained=None, force_quick_gelu=True).eval()
    path = tmp_path / "tiny_openai.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items() if k != "attn_mask"}, str(path))
    x = torch.randn(2, 3, 32, 32)
    want = ref.encode_image(x)
    good = Backbone.load(BackboneSpec(tiny_arch, str(path), quick_gelu=True), device="cpu")
    assert good.quick_gelu and (good.encode_images(x) - want).abs().max() < 1e-5
    plain = Backbone.load(BackboneSpec(tiny_arch, str(path), quick_gelu=False), device="cpu")
    assert (plain.encode_images(x) - want).abs().max() > 1e-4  # GELU vs QuickGELU really differ
    auto = Backbone.load(BackboneSpec(tiny_arch, str(path)), device="cpu")  # "openai" in the name decides nothing
    assert not auto.quick_gelu and "no pretrained tag" in auto.describe()["quick_gelu_reason"]
    assert good.identity != Backbone.load(BackboneSpec(tiny_arch, "random"), device="cpu").identity


def test_weights_for_other_architecture_rejected(tiny_arch, tmp_path):
    import open_clip
    from safetensors.torch import save_file

    m = open_clip.create_model(tiny_arch, pretrained=None)
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in m.state_dict().items() if k != "attn_mask"}, str(path))
    with pytest.raises(WeightsError, match="does not match architecture 'toy-clip'"):
        Backbone.load(BackboneSpec("toy-clip", str(path)), device="cpu")


def test_truncated_weights_rejected(tmp_path):
    from albench.data.toy.model import WEIGHTS_FILE

    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(WEIGHTS_FILE.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="Could not read weights file"):
        Backbone.load(BackboneSpec("toy-clip", str(bad)), device="cpu")


def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        Backbone.load(BackboneSpec("toy-clip", str(tmp_path / "nope.safetensors")), device="cpu")


def test_identity_tracks_weights(toy_backbone, random_backbone):
    assert toy_backbone.identity != random_backbone.identity
    assert random_backbone.describe()["random_init"] and not toy_backbone.describe()["random_init"]


def _coop_learner(bb, names, std=1.0):
    from albench.components.prompts import PromptLearner

    torch.manual_seed(0)
    pl = PromptLearner(bb, names)
    with torch.no_grad():
        pl.ctx.normal_(std=std)  # far from zero, so every layer mixes the context in
    return pl


@pytest.mark.parametrize("which", ["toy_backbone", "random_backbone"])
def test_shared_prefix_text_equals_full_prompts(which, request):
    """CoOp's shared [SOS][ctx] prefix run once gives the full computation's features and gradients."""
    bb = request.getfixturevalue(which)
    pl = _coop_learner(bb, ["red circle", "blue striped square", "x", "a long class name with many words"])
    fast = pl.text_features()
    full = bb.encode_text_embeddings(pl.prompts(), pl.eot)
    assert bb._shared_prefix_ok is True
    assert fast.shape == full.shape
    assert (fast - full).abs().max() < 1e-5 * max(1.0, full.abs().max().item())
    g_fast = torch.autograd.grad(fast.square().sum(), pl.ctx)[0]
    g_full = torch.autograd.grad(bb.encode_text_embeddings(pl.prompts(), pl.eot).square().sum(), pl.ctx)[0]
    assert (g_fast - g_full).abs().max() < 1e-4 * max(1.0, g_full.abs().max().item())


def test_shared_prefix_falls_back_when_mask_is_not_causal():
    """A tower the fast path does not cover runs the full computation: same result, no shortcut."""
    from albench.clip.text_prefix import supports_shared_prefix

    bb = Backbone.load(BackboneSpec(), device="cpu")
    bb.model.attn_mask = torch.zeros_like(bb.model.attn_mask)  # bidirectional text attention
    assert not supports_shared_prefix(bb.model)
    pl = _coop_learner(bb, ["red circle", "blue striped square"])
    full = bb.encode_text_embeddings(pl.prompts(), pl.eot)
    assert torch.equal(pl.text_features(), full)
    assert bb._shared_prefix_ok is False
