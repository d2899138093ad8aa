"""CLIP backbones from open_clip with prompt-splicing hooks.

Which weights, which activation (QuickGELU) and how they are read live in
``albench.clip.weights``; device and precision in ``albench.clip.compute``.
This module wraps the loaded model for adapters.

Hooks: ``encode_text_embeddings`` runs the text tower on token embeddings (CoOp's
``TextEncoder``; Zhou et al., IJCV 2022, github.com/KaiyangZhou/CoOp), truncated to
the longest real prompt, exact because the causal mask hides everything after
the EOT token; ``encode_image_prompted`` runs the vision tower with extra
learnable tokens (VPT, Jia et al., ECCV 2022; MaPLe, Khattak et al., CVPR 2023).
"""

from __future__ import annotations

import contextlib
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from albench import accounting
from albench.clip.compute import Compute, resolve_compute, resolve_device  # noqa: F401 - resolve_device re-exported
from albench.clip.weights import (  # noqa: F401 - re-exported for callers of the backbone module
    RANDOM,
    TOY,
    TOY_TAG,
    BackboneSpec,
    ResolvedWeights,
    file_sha256,
    is_torchscript,
    load_model,
    load_strict,
    read_state_dict,
)

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class Backbone:
    """A frozen open_clip CLIP plus the hooks adapters need."""

    def __init__(
        self,
        model: torch.nn.Module,
        spec: BackboneSpec,
        resolved: ResolvedWeights,
        identity: str,
        compute: Compute,
        tokenizer_context: int,
    ):
        device = compute.device
        self.model = model.to(device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.spec, self.resolved, self.identity, self.compute, self.device = spec, resolved, identity, compute, device
        self.quick_gelu = resolved.quick_gelu
        self.precision = compute.precision
        self.weights = (
            TOY_TAG
            if resolved.found_in == "shipped"
            else str(resolved.path)
            if resolved.path is not None
            else f"{RANDOM}:seed0"
        )
        self.context_length = tokenizer_context
        v = self.model.visual
        size = v.image_size if hasattr(v, "image_size") else 224
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.mean, self.std = OPENAI_MEAN, OPENAI_STD
        self.embed_dim = (
            int(self.model.text_projection.shape[1])
            if self.model.text_projection is not None
            else int(self.model.ln_final.weight.shape[0])
        )
        self.text_width = int(self.model.ln_final.weight.shape[0])
        self.vision_width = int(v.conv1.out_channels)
        self._mean_t = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        self._std_t = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        self._shared_prefix_ok: bool | None = None

    # ---- loading ---------------------------------------------------------
    @classmethod
    def load(
        cls, spec: BackboneSpec | None = None, device: str | torch.device | None = None, precision: str = "auto"
    ) -> "Backbone":
        """Load ``spec`` on ``device`` (auto: the GPU if any) computing in ``precision`` (fp32, bf16, auto)."""
        spec = spec or BackboneSpec()
        compute = resolve_compute(str(device) if device is not None else "auto", precision)
        model, resolved, identity = load_model(spec)
        return cls(model, spec, resolved, identity, compute, int(model.context_length))

    @classmethod
    def from_model(
        cls,
        model: Any,
        spec: BackboneSpec,
        identity: str,
        device: str | torch.device = "auto",
        precision: str = "auto",
        quick_gelu: bool = False,
        reason: str = "built by the caller",
    ) -> "Backbone":
        """Wrap a model built elsewhere (benchmarks: forced image sizes), random init unless said otherwise."""
        resolved = ResolvedWeights(spec.arch, None, "random", None, quick_gelu, reason, "random")
        return cls(model, spec, resolved, identity, resolve_compute(str(device), precision), int(model.context_length))

    @property
    def compute_identity(self) -> str:
        """Weights, activation, device type and precision: what the frozen features depend on."""
        return f"{self.identity}|{self.compute.key()}"

    def describe(self) -> dict:
        """What records store about the backbone."""
        return {
            "arch": self.spec.arch,
            "pretrained": self.spec.pretrained or (TOY_TAG if self.resolved.found_in == "shipped" else None),
            "weights": self.weights,
            "identity": self.identity,
            "quick_gelu": self.quick_gelu,
            "quick_gelu_reason": self.resolved.quick_gelu_reason,
            "format": self.resolved.format,
            "tag": self.resolved.tag,
            "random_init": self.resolved.path is None,
            "image_size": self.image_size,
            "embed_dim": self.embed_dim,
            "device": self.device.type,
            "precision": self.precision,
        }

    def autocast(self):
        """bf16 autocast when the precision is bf16 (CUDA or CPU autocast); nothing in fp32."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
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

    def encode_text_embeddings(
        self,
        embeds: torch.Tensor,
        eot: torch.Tensor,
        deep_prompts: Sequence[torch.Tensor] | None = None,
        deep_start: int = 1,
        truncate: bool = True,
    ) -> torch.Tensor:
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
                    x = torch.cat([x[:, :deep_start], p, x[:, deep_start + n :]], dim=1)
                else:
                    x = torch.cat([x[:deep_start], p.transpose(0, 1), x[deep_start + n :]], dim=0)
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

    def encode_text_shared_prefixes(
        self, prefixes: torch.Tensor, suffix: torch.Tensor, eot: torch.Tensor
    ) -> torch.Tensor:
        """(R, C, D) text features of R learners' prompts ``cat(prefixes[j], suffix[i])`` in one tower call.

        Each learner's features equal ``encode_text_shared_prefix(prefixes[j:j+1], ...)`` (bit for bit on
        CPU, tested): batched runs rely on it. Towers the fast path does not cover run learner by learner.
        """
        from albench.clip.text_prefix import encode_shared_prefixes, supports_shared_prefix

        if self._shared_prefix_ok is None:
            self._shared_prefix_ok = supports_shared_prefix(self.model)
        if self._shared_prefix_ok:
            return encode_shared_prefixes(self.model, prefixes, suffix, eot)
        return torch.stack([self.encode_text_shared_prefix(p.unsqueeze(0), suffix, eot) for p in prefixes])

    @torch.no_grad()
    def text_classifier(self, prompts: Sequence[str], batch: int = 256) -> torch.Tensor:
        """L2-normalised text features of fixed prompts (zero-shot weights), (C, E)."""
        feats = []
        for i in range(0, len(prompts), batch):
            tok = self.tokenize(prompts[i : i + batch])
            with self.autocast():
                emb = self.token_embeddings(tok)
                feats.append(self.encode_text_embeddings(emb, self.eot_positions(tok)).float())
        return F.normalize(torch.cat(feats), dim=-1)

    @property
    def logit_scale(self) -> float:
        """CLIP's exp(t) as a float, read from the device once per change of the parameter.

        Training steps use it every step; a ``.item()`` each time would synchronise a GPU every step.
        """
        p = self.model.logit_scale
        key = (p.data_ptr(), p._version)
        if getattr(self, "_logit_scale_key", None) != key:
            self._logit_scale_value = float(p.exp().item())
            self._logit_scale_key = key
        return self._logit_scale_value

    # ---- images ----------------------------------------------------------
    def normalize_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (n, H, W, 3) -> normalised float (n, 3, H, W) on the backbone's device."""
        x = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        return (x - self._mean_t) / self._std_t

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Plain image features (n, E) of normalised pixels; counted as encoder passes."""
        accounting.count("image_encoder_images", pixels.shape[0])
        return self.model.encode_image(pixels.to(self.device))

    @torch.no_grad()
    def input_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """The vision tower's input sequence after ``ln_pre``: (B, 1 + patches, Wv), [CLS] first.

        What appended visual prompts sit next to (``encode_image_prompted``); prompt initialisations
        that start from the image tokens read it. Not counted as an encoder pass (patch embedding only).
        """
        v = self.model.visual
        x = v.conv1(pixels.to(self.device).to(v.conv1.weight.dtype))
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls_tok = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        return v.ln_pre(torch.cat([cls_tok, x], dim=1) + v.positional_embedding.to(x.dtype))

    def encode_image_prompted(
        self,
        pixels: torch.Tensor,
        prompts: torch.Tensor | None = None,
        deep_prompts: Sequence[torch.Tensor] | None = None,
        prompts_before_ln_pre: bool = False,
    ) -> torch.Tensor:
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
