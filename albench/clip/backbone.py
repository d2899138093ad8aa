"""CLIP backbones from open_clip, loaded offline, with prompt-splicing hooks.

Sources of weights (``--backbone ARCH --pretrained SOURCE``):

* ``toy-clip`` (default) or ``toy-clip-v1`` with ``albench-toy``: the tiny CLIPs shipped in the
  package (open_clip configs registered from ``albench/data/toy/configs``);
* an open_clip architecture with a pretrained tag (``ViT-B-16`` + ``openai``): the
  file must already be in the Hugging Face or open_clip cache, nothing is downloaded;
* a local weights file (``.safetensors`` or a ``torch.save``d state dict, read with
  ``weights_only=True``); an OpenAI TorchScript archive only with ``allow_torchscript``;
* ``random``: random init, only when asked for by name, and recorded as such.

OpenAI's CLIP was trained with QuickGELU. open_clip >= 2.29 builds ``ViT-B-16``
with nn.GELU even for the ``openai`` tag and only warns, so we force QuickGELU
whenever the tag's config says so, the architecture ends in ``-quickgelu``, or
the user says so (``quick_gelu=True``).

Hooks: ``encode_text_embeddings`` runs the text tower on token embeddings (CoOp's
``TextEncoder``; Zhou et al., IJCV 2022, github.com/KaiyangZhou/CoOp), truncated to
the longest real prompt, exact because the causal mask hides everything after
the EOT token; ``encode_image_prompted`` runs the vision tower with extra
learnable tokens (VPT, Jia et al., ECCV 2022; MaPLe, Khattak et al., CVPR 2023).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from albench import accounting
from albench.api.errors import AlbenchError, UnknownNameError, WeightsError

TOY = "toy-clip"
TOY_TAG = "albench-toy"
RANDOM = "random"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def resolve_device(device: str | None = None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def file_sha256(path: Path, _memo: dict = {}) -> str:  # noqa: B006 - process-wide memo on purpose
    """sha256 of a weights file, memoised on (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _memo:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _memo[key] = h.hexdigest()
    return _memo[key]


def is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors or torch file, never executing pickled code."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"Could not read weights file {path}: {type(exc).__name__}: {exc}. "
                           f"Is it truncated or not a CLIP checkpoint?") from exc
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"Weights file {path} does not hold a state dict of tensors.")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}


def load_strict(model: torch.nn.Module, sd: dict[str, torch.Tensor], arch: str, path: Path) -> None:
    """Load a state dict, failing with a readable list of what does not fit."""
    own = {k: v for k, v in model.state_dict().items() if k != "attn_mask"}
    sd = {k: v for k, v in sd.items() if k != "attn_mask"}
    if "logit_scale" in sd and sd["logit_scale"].ndim != own["logit_scale"].ndim:
        sd["logit_scale"] = sd["logit_scale"].reshape(own["logit_scale"].shape)
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = [f"{k}: file {tuple(sd[k].shape)} vs {arch} {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(sd)) if sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:3])})")
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        raise WeightsError(f"Weights file {path} does not match architecture '{arch}': {'; '.join(parts)}. "
                           f"Pass the architecture these weights were saved from with --backbone.")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=False)


@dataclass
class BackboneSpec:
    """What the user asked for; ``Backbone.load`` turns it into a model."""

    arch: str = TOY
    pretrained: str | None = None  # tag, file path, "random"; None = the arch's default
    quick_gelu: bool | None = None  # None = decide from the tag / arch name
    allow_torchscript: bool = False
    cache_dir: str | None = None  # where open_clip / HF caches are searched


class Backbone:
    """A frozen open_clip CLIP plus the hooks adapters need."""

    def __init__(self, model: torch.nn.Module, spec: BackboneSpec, weights: str, identity: str,
                 quick_gelu: bool, device: torch.device, tokenizer_context: int):
        self.model = model.to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.spec, self.weights, self.identity, self.quick_gelu, self.device = spec, weights, identity, quick_gelu, device
        self.context_length = tokenizer_context
        v = self.model.visual
        size = v.image_size if hasattr(v, "image_size") else 224
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.mean, self.std = OPENAI_MEAN, OPENAI_STD
        self.embed_dim = int(self.model.text_projection.shape[1]) if self.model.text_projection is not None else \
            int(self.model.ln_final.weight.shape[0])
        self.text_width = int(self.model.ln_final.weight.shape[0])
        self.vision_width = int(v.conv1.out_channels)
        self._mean_t = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        self._std_t = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        self._shared_prefix_ok: bool | None = None

    # ---- loading ---------------------------------------------------------
    @classmethod
    def load(cls, spec: BackboneSpec | None = None, device: str | torch.device | None = None) -> "Backbone":
        spec = spec or BackboneSpec()
        dev = resolve_device(device) if not isinstance(device, torch.device) else device
        model, weights, identity, qg = _load_open_clip(spec)
        ctx = model.context_length
        return cls(model, spec, weights, identity, qg, dev, ctx)

    def describe(self) -> dict:
        """What records store about the backbone."""
        return {"arch": self.spec.arch, "pretrained": self.spec.pretrained or _shipped_tag(self.spec.arch),
                "weights": self.weights, "identity": self.identity, "quick_gelu": self.quick_gelu,
                "random_init": self.weights.startswith(RANDOM), "image_size": self.image_size,
                "embed_dim": self.embed_dim}

    def autocast(self):
        """bf16 autocast on CUDA, nothing on CPU (fp32 is exact and fast enough there)."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ---- text ------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        import open_clip

        return open_clip.tokenize(list(texts), context_length=self.context_length).to(self.device)

    def token_embeddings(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.token_embedding(tokens.to(self.device))

    @staticmethod
    def eot_positions(tokens: torch.Tensor) -> torch.Tensor:
        return tokens.argmax(dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """open_clip's own text encoding (used as the reference in tests)."""
        return self.model.encode_text(tokens.to(self.device))

    def encode_text_embeddings(self, embeds: torch.Tensor, eot: torch.Tensor,
                               deep_prompts: Sequence[torch.Tensor] | None = None, deep_start: int = 1,
                               truncate: bool = True) -> torch.Tensor:
        """Text features from token embeddings (N, L, W) pooled at ``eot`` (N,).

        ``deep_prompts[i]`` (n, W) or (N, n, W) replaces positions
        ``deep_start:deep_start+n`` at the input of block ``i + 1`` (MaPLe's deep
        text prompts). With ``truncate``, positions after the last EOT are dropped.
        """
        m = self.model
        length = int(eot.max().item()) + 1 if truncate else embeds.shape[1]
        x = embeds[:, :length] + m.positional_embedding[:length].to(embeds.dtype)
        mask = m.attn_mask[:length, :length] if m.attn_mask is not None else None
        batch_first = getattr(m.transformer, "batch_first", True)
        if not batch_first:
            x = x.transpose(0, 1)
        for i, blk in enumerate(m.transformer.resblocks):
            if deep_prompts is not None and 1 <= i <= len(deep_prompts):
                p = deep_prompts[i - 1]
                n = p.shape[-2]
                p = p.expand(x.shape[0] if batch_first else x.shape[1], -1, -1).to(x.dtype)
                if batch_first:
                    x = torch.cat([x[:, :deep_start], p, x[:, deep_start + n:]], dim=1)
                else:
                    x = torch.cat([x[:deep_start], p.transpose(0, 1), x[deep_start + n:]], dim=0)
            x = blk(x, attn_mask=mask)
        if not batch_first:
            x = x.transpose(0, 1)
        from albench.clip.text_prefix import pool_and_project

        return pool_and_project(m, x, eot)

    def encode_text_shared_prefix(self, prefix: torch.Tensor, suffix: torch.Tensor, eot: torch.Tensor) -> torch.Tensor:
        """Text features of prompts ``cat(prefix, suffix[i])`` with the shared prefix run once.

        ``prefix`` (1, P, W), ``suffix`` (C, S, W), ``eot`` (C,) positions in the full
        prompt. Exact (see ``albench.clip.text_prefix``); towers the fast path does not
        cover run the full computation instead.
        """
        from albench.clip.text_prefix import encode_shared_prefix, supports_shared_prefix

        if self._shared_prefix_ok is None:
            self._shared_prefix_ok = supports_shared_prefix(self.model)
        if self._shared_prefix_ok:
            return encode_shared_prefix(self.model, prefix, suffix, eot)
        full = torch.cat([prefix.expand(suffix.shape[0], -1, -1), suffix], dim=1)
        return self.encode_text_embeddings(full, eot)

    @torch.no_grad()
    def text_classifier(self, prompts: Sequence[str], batch: int = 256) -> torch.Tensor:
        """L2-normalised text features of fixed prompts (zero-shot weights), (C, E)."""
        feats = []
        for i in range(0, len(prompts), batch):
            tok = self.tokenize(prompts[i:i + batch])
            with self.autocast():
                emb = self.token_embeddings(tok)
                feats.append(self.encode_text_embeddings(emb, self.eot_positions(tok)).float())
        return F.normalize(torch.cat(feats), dim=-1)

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.exp().item())

    # ---- images ----------------------------------------------------------
    def normalize_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (n, H, W, 3) -> normalised float (n, 3, H, W) on the backbone's device."""
        x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        return (x - self._mean_t) / self._std_t

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Plain image features (n, E) of normalised pixels; counted as encoder passes."""
        accounting.count("image_encoder_images", pixels.shape[0])
        return self.model.encode_image(pixels.to(self.device))

    def encode_image_prompted(self, pixels: torch.Tensor, prompts: torch.Tensor | None = None,
                              deep_prompts: Sequence[torch.Tensor] | None = None,
                              prompts_before_ln_pre: bool = False) -> torch.Tensor:
        """Vision tower with learnable tokens appended after the patch tokens.

        ``prompts`` (n, Wv) or (B, n, Wv) enter at the input; with
        ``prompts_before_ln_pre`` they pass through ``ln_pre`` (MaPLe-repo
        placement), otherwise they are appended after it (DeFT/LIFT placement).
        ``deep_prompts[i]`` replaces the prompt tokens at the input of block
        ``i + 1`` (deep VPT). Self-attention is permutation-equivariant and the
        prompts carry no positional embedding, so "after CLS" (original VPT) and
        "appended" give identical CLS outputs; only the ln_pre question matters.
        """
        accounting.count("image_encoder_images", pixels.shape[0])
        v = self.model.visual
        x = v.conv1(pixels.to(self.device).to(v.conv1.weight.dtype))
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls_tok = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        x = torch.cat([cls_tok, x], dim=1) + v.positional_embedding.to(x.dtype)
        seq = x.shape[1]
        b = x.shape[0]

        def _expand(p: torch.Tensor) -> torch.Tensor:
            return (p.unsqueeze(0).expand(b, -1, -1) if p.dim() == 2 else p).to(x.dtype)

        if prompts is not None and prompts_before_ln_pre:
            x = v.ln_pre(torch.cat([x, _expand(prompts)], dim=1))
        else:
            x = v.ln_pre(x)
            if prompts is not None:
                x = torch.cat([x, _expand(prompts)], dim=1)
        for i, blk in enumerate(v.transformer.resblocks):
            if deep_prompts is not None and 1 <= i <= len(deep_prompts):
                x = torch.cat([x[:, :seq], _expand(deep_prompts[i - 1])], dim=1)
            x = blk(x)
        pooled, _ = v._pool(x)
        if v.proj is not None:
            pooled = pooled @ v.proj
        return pooled


def _shipped_tag(arch: str) -> str | None:
    """The tag of weights shipped inside albench for ``arch`` (the toy CLIPs), else None."""
    from albench.data.toy.model import SHIPPED_WEIGHTS, register_configs

    register_configs()
    return TOY_TAG if arch in SHIPPED_WEIGHTS else None


def _default_cache_dirs(spec: BackboneSpec) -> list[Path]:
    dirs = []
    if spec.cache_dir:
        dirs.append(Path(spec.cache_dir))
    dirs.append(Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"))
    dirs.append(Path.home() / ".cache" / "clip")
    return dirs


def _find_tag_file(arch: str, tag: str, spec: BackboneSpec) -> tuple[Path | None, list[str]]:
    """Local file for an open_clip pretrained tag, searched in caches only (never downloads)."""
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch, tag)
    looked: list[str] = []
    hub = cfg.get("hf_hub") or ""
    if hub:
        repo = hub.rstrip("/")
        filename = None
        if "/" in repo and repo.count("/") > 1:
            repo, filename = repo.rsplit("/", 1)
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub is an open_clip dependency
            try_to_load_from_cache = None
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for d in _default_cache_dirs(spec)[:-1]:
            for name in names:
                looked.append(f"{d}/models--{repo.replace('/', '--')}/.../{name}")
                if try_to_load_from_cache is not None:
                    hit = try_to_load_from_cache(repo, name, cache_dir=str(d))
                    if isinstance(hit, str) and Path(hit).exists():
                        return Path(hit), looked
    url = cfg.get("url") or ""
    if url:
        dirs = ([Path(spec.cache_dir)] if spec.cache_dir else []) + [Path.home() / ".cache" / "clip"]
        for d in dirs:
            cand = d / os.path.basename(url)
            looked.append(str(cand))
            if cand.exists():
                return cand, looked
    return None, looked


def _load_open_clip(spec: BackboneSpec):
    import open_clip
    from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

    from albench.data.toy.model import SHIPPED_WEIGHTS

    arch = spec.arch
    shipped = _shipped_tag(arch)  # also registers the toy configs with open_clip
    if arch not in open_clip.list_models():
        raise UnknownNameError("backbone architecture", arch, open_clip.list_models())
    src = spec.pretrained or shipped
    if src is None:
        raise AlbenchError(f"--pretrained is required for backbone '{arch}': an open_clip tag "
                           f"({', '.join(list_pretrained_tags_by_model(arch)) or 'none known'}), a local weights "
                           f"file, or 'random' for random init.")
    tag_cfg = {}
    path: Path | None = None
    if src == RANDOM:
        pass
    elif src == TOY_TAG:
        if shipped is None:
            raise UnknownNameError(f"architecture shipping '{TOY_TAG}' weights", arch, sorted(SHIPPED_WEIGHTS))
        if spec.quick_gelu:
            raise AlbenchError(f"{arch} was trained with GELU; quick_gelu does not apply to it.")
        path = SHIPPED_WEIGHTS[arch]
        if not path.exists():
            raise WeightsError(f"The shipped {arch} weights are missing ({path}). Reinstall albench or run "
                               f"'albench toy pretrain' to recreate them.")
    elif Path(src).suffix in (".safetensors", ".bin", ".pt", ".pth") or os.sep in src or Path(src).exists():
        path = Path(src)
        if not path.exists():
            raise WeightsError(f"Weights file {path} does not exist.")
    else:
        tags = list_pretrained_tags_by_model(arch)
        if src not in tags:
            raise UnknownNameError(f"pretrained tag for '{arch}'", src, tags + [RANDOM])
        tag_cfg = get_pretrained_cfg(arch, src)
        path, looked = _find_tag_file(arch, src, spec)
        if path is None:
            raise WeightsError(
                f"Pretrained weights '{arch}' / '{src}' are not on this machine and albench never downloads. "
                f"Looked in: {'; '.join(looked)}. Provide them by copying the open_clip checkpoint file and passing "
                f"--pretrained /path/to/open_clip_model.safetensors (with --backbone {arch}), or populate the "
                f"Hugging Face cache (HF_HOME) on a machine with internet first.")
    qg = spec.quick_gelu
    if qg is None:
        qg = bool(tag_cfg.get("quick_gelu")) or arch.endswith("-quickgelu") or (path is not None and "openai" in path.name.lower())
    if path is not None and is_torchscript(path):
        if not spec.allow_torchscript:
            raise WeightsError(f"{path} is an OpenAI TorchScript archive; loading it executes code stored in the file. "
                               f"Pass --allow-torchscript if you trust it, or convert it to a safetensors state dict.")
        model = open_clip.load_openai_model(str(path), precision="fp32", device="cpu", jit=False)
        return model, str(path), f"{arch}:{file_sha256(path)[:16]}:qg", True
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = open_clip.create_model(arch, pretrained=None, force_quick_gelu=bool(qg) and not arch.endswith("-quickgelu"))
    if path is None:
        return model, f"{RANDOM}:seed0", f"{arch}:{RANDOM}:seed0{':qg' if qg else ''}", bool(qg)
    load_strict(model, read_state_dict(path), arch, path)
    weights = TOY_TAG if src == TOY_TAG else str(path)
    return model, weights, f"{arch}:{file_sha256(path)[:16]}{':qg' if qg else ''}", bool(qg)


def save_card(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2))
