"""Weights on the real path, checked on faithful stand-ins (random init, exact formats, names and folder layouts).

Formats: open_clip's hub files (``open_clip_model.safetensors``, ``open_clip_pytorch_model.bin``) inside a
Hugging Face cache tree (``models--timm--vit_base_patch16_clip_224.openai/snapshots/<rev>/...``, files as
symlinks into ``blobs/``, ``refs/main`` naming the revision), OpenAI's TorchScript archive (``ViT-B-16.pt`` in
``~/.cache/clip``) and a plain state-dict file. For each: albench finds it (tag or path), decides the activation
from the model, and its features equal open_clip's own loading of the same file within 1e-5.

The fast tests use a two-layer architecture whose shapes OpenAI's state-dict reader can infer; the ViT-B/16
check at the end is marked slow.
"""

import json

import pytest
import torch

from albench.api.errors import AlbenchError, WeightsError
from albench.clip.backbone import Backbone, BackboneSpec
from albench.clip.weights import resolve_weights
from standins import hub_tree, write_openai_archive, write_safetensors, write_torch

# Shapes OpenAI's build_model_from_openai_state_dict infers back (64-wide heads, context 77).
TINY_OAI = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16, "head_width": 64},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 2},
}
ARCH = "albench-tiny-oai"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import open_clip

    cfg = tmp_path_factory.mktemp("cfg")
    (cfg / f"{ARCH}.json").write_text(json.dumps(TINY_OAI))
    open_clip.add_model_config(str(cfg))
    with torch.random.fork_rng():
        torch.manual_seed(11)
        model = open_clip.create_model(ARCH, force_quick_gelu=True).eval()
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k != "attn_mask"}


def features(model_or_bb, x, tokens):
    with torch.no_grad():
        if isinstance(model_or_bb, Backbone):
            return model_or_bb.encode_images(x), model_or_bb.encode_text(tokens)
        return model_or_bb.encode_image(x), model_or_bb.encode_text(tokens)


def assert_same_features(bb, ref, size: int):
    import open_clip

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, size, size, generator=g)
    tokens = open_clip.tokenize(["a photo of a cat.", "banded texture."])
    (ia, ta), (ib, tb) = features(bb, x, tokens), features(ref, x, tokens)
    assert (ia - ib).abs().max() < 1e-5 and (ta - tb).abs().max() < 1e-5
    return ia


# --- formats, by path ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["safetensors", "bin", "plain-state-dict"])
def test_state_dict_files_load_exactly_as_open_clip_loads_them(tiny, tmp_path, fmt):
    import open_clip

    path = {
        "safetensors": lambda: write_safetensors(tiny, tmp_path / "open_clip_model.safetensors"),
        "bin": lambda: write_torch(tiny, tmp_path / "open_clip_pytorch_model.bin"),
        "plain-state-dict": lambda: write_torch({"state_dict": tiny}, tmp_path / "weights.pt"),
    }[fmt]()
    bb = Backbone.load(BackboneSpec(ARCH, str(path), quick_gelu=True), device="cpu", precision="fp32")
    assert bb.describe()["format"] == ("safetensors" if fmt == "safetensors" else "torch-state-dict")
    assert bb.quick_gelu and bb.describe()["quick_gelu_reason"] == "--quick-gelu given"
    ref = open_clip.create_model(ARCH, pretrained=str(path), force_quick_gelu=True).eval()
    got = assert_same_features(bb, ref, 32)
    gelu = Backbone.load(BackboneSpec(ARCH, str(path), quick_gelu=False), device="cpu", precision="fp32")
    assert (features(gelu, torch.randn(1, 3, 32, 32), open_clip.tokenize(["x"]))[0] - got[:1]).abs().max() > 1e-4


def test_openai_archive_is_quick_gelu_and_loads_exactly(tiny, tmp_path):
    import open_clip

    path = write_openai_archive(tiny, tmp_path / "ViT-B-16.pt")
    with pytest.raises(WeightsError, match="OpenAI TorchScript archive; loading it executes code"):
        resolve_weights(BackboneSpec(ARCH, str(path)))
    bb = Backbone.load(BackboneSpec(ARCH, str(path), allow_torchscript=True), device="cpu", precision="fp32")
    d = bb.describe()
    assert d["format"] == "openai-torchscript" and d["quick_gelu"] and "OpenAI TorchScript" in d["quick_gelu_reason"]
    # reference 1: open_clip's reader of OpenAI archives; reference 2: open_clip's model with QuickGELU and the
    # archive's tensors (fp16 in the file), independent of albench's code path
    assert_same_features(bb, open_clip.load_openai_model(str(path), precision="fp32", device="cpu").eval(), 32)
    ref = open_clip.create_model(ARCH, force_quick_gelu=True).eval()
    ref.load_state_dict({k: v.half().float() for k, v in tiny.items()}, strict=False)
    assert_same_features(bb, ref, 32)
    with pytest.raises(AlbenchError, match="--no-quick-gelu contradicts the weights: OpenAI TorchScript archive"):
        resolve_weights(BackboneSpec(ARCH, str(path), quick_gelu=False, allow_torchscript=True))


# --- finding by tag -----------------------------------------------------------------------------------------


@pytest.fixture
def caches(tmp_path, monkeypatch):
    hub = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return {"hub": hub, "clip": tmp_path / "home" / ".cache" / "clip", "tmp": tmp_path}


@pytest.mark.parametrize("name", ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"])
def test_tag_is_found_in_a_hub_cache_tree_and_decides_the_activation(tiny, caches, name):
    src = caches["tmp"] / name
    (write_safetensors if name.endswith(".safetensors") else write_torch)(tiny, src)
    snap = hub_tree(caches["hub"], "timm/vit_base_patch16_clip_224.openai", {name: src})
    res = resolve_weights(BackboneSpec("ViT-B-16", "openai"))
    assert res.path == snap / name and res.found_in == "hub cache" and res.tag == "openai"
    assert res.quick_gelu and res.quick_gelu_reason == "open_clip's pretrained config of ViT-B-16 / openai"
    # a GELU checkpoint of the same architecture, by its tag
    src2 = write_safetensors(tiny, caches["tmp"] / "laion" / "open_clip_model.safetensors")
    hub_tree(caches["hub"], "laion/CLIP-ViT-B-16-laion2B-s34B-b88K", {"open_clip_model.safetensors": src2})
    res = resolve_weights(BackboneSpec("ViT-B-16", "laion2b_s34b_b88k"))
    assert res.found_in == "hub cache" and not res.quick_gelu


def test_openai_archive_is_found_by_tag_in_the_clip_cache(tiny, caches):
    write_openai_archive(tiny, caches["clip"] / "ViT-B-16.pt")
    with pytest.raises(WeightsError, match="Pass --allow-torchscript if you trust it"):
        resolve_weights(BackboneSpec("ViT-B-16", "openai"))
    res = resolve_weights(BackboneSpec("ViT-B-16", "openai", allow_torchscript=True))
    assert res.path == caches["clip"] / "ViT-B-16.pt" and res.found_in == "openai cache"
    assert res.format == "openai-torchscript" and res.quick_gelu


def test_missing_tag_says_how_to_fill_the_cache(caches):
    with pytest.raises(WeightsError) as err:
        resolve_weights(BackboneSpec("ViT-B-16", "openai"))
    msg = str(err.value)
    assert (
        f"{caches['hub']}/models--timm--vit_base_patch16_clip_224.openai/snapshots/*/open_clip_model.safetensors" in msg
    )
    assert "python -c \"import open_clip; open_clip.create_model('ViT-B-16', pretrained='openai')\"" in msg
    assert "--pretrained openai=/path/to/open_clip_model.safetensors" in msg


# --- a file: the activation comes from the user or the tag named with it, never from the file name -----------


def test_file_with_tag_takes_the_tags_activation(tiny, tmp_path):
    path = write_safetensors(tiny, tmp_path / "plain_name.safetensors")
    res = resolve_weights(BackboneSpec("ViT-B-16", f"openai={path}"))
    assert res.path == path and res.tag == "openai" and res.quick_gelu
    res = resolve_weights(BackboneSpec("ViT-B-16", f"laion2b_s34b_b88k={path}"))
    assert not res.quick_gelu


def test_file_without_decision_is_refused_whatever_its_name(tiny, tmp_path):
    for name in ("open_clip_model.safetensors", "vit_b16_openai.safetensors"):
        path = write_safetensors(tiny, tmp_path / name)
        with pytest.raises(AlbenchError, match="Say which: --quick-gelu or --no-quick-gelu, or name the tag"):
            resolve_weights(BackboneSpec("ViT-B-16", str(path)))
        assert resolve_weights(BackboneSpec("ViT-B-16", str(path), quick_gelu=True)).quick_gelu
        assert not resolve_weights(BackboneSpec("ViT-B-16", str(path), quick_gelu=False)).quick_gelu


def test_activation_is_in_the_identity_and_the_record(tiny, tmp_path):
    path = write_safetensors(tiny, tmp_path / "w.safetensors")
    qg = Backbone.load(BackboneSpec(ARCH, str(path), quick_gelu=True), device="cpu")
    plain = Backbone.load(BackboneSpec(ARCH, str(path), quick_gelu=False), device="cpu")
    assert qg.identity.endswith(":qg") and qg.identity != plain.identity
    assert qg.describe()["quick_gelu"] is True and plain.describe()["quick_gelu_reason"] == "--no-quick-gelu given"


# --- ViT-B/16 itself, at random init (about 150 M parameters) -------------------------------------------------


@pytest.mark.slow
def test_vit_b16_hub_file_and_openai_archive_by_tag(caches, monkeypatch):
    import open_clip

    with torch.random.fork_rng():
        torch.manual_seed(5)
        model = open_clip.create_model("ViT-B-16", force_quick_gelu=True).eval()
    sd = {k: v.detach() for k, v in model.state_dict().items() if k != "attn_mask"}
    src = write_safetensors(sd, caches["tmp"] / "open_clip_model.safetensors")
    snap = hub_tree(caches["hub"], "timm/vit_base_patch16_clip_224.openai", {"open_clip_model.safetensors": src})
    bb = Backbone.load(BackboneSpec("ViT-B-16", "openai"), device="cpu", precision="fp32")
    assert bb.quick_gelu and bb.resolved.path == snap / "open_clip_model.safetensors"
    ref = open_clip.create_model(
        "ViT-B-16", pretrained=str(snap / "open_clip_model.safetensors"), force_quick_gelu=True
    ).eval()
    assert_same_features(bb, ref, 224)
    # open_clip's own loading by tag reads this very tree (offline); with the tag's activation forced it agrees
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    by_tag = open_clip.create_model(
        "ViT-B-16", pretrained="openai", cache_dir=str(caches["hub"]), force_quick_gelu=True
    ).eval()
    assert_same_features(bb, by_tag, 224)
    del bb, ref, by_tag
    (snap / "open_clip_model.safetensors").unlink()  # now only OpenAI's archive is there
    arch = write_openai_archive(sd, caches["clip"] / "ViT-B-16.pt")
    bb = Backbone.load(BackboneSpec("ViT-B-16", "openai", allow_torchscript=True), device="cpu", precision="fp32")
    assert bb.resolved.format == "openai-torchscript" and bb.quick_gelu
    assert_same_features(bb, open_clip.load_openai_model(str(arch), precision="fp32", device="cpu").eval(), 224)
