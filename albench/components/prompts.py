"""Learnable text context for CLIP's text encoder: the prompt learner of CoOp.

Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022; reference
code github.com/KaiyangZhou/CoOp (``trainers/coop.py``, ``PromptLearner``).

Prompt = [SOS] [ctx_1 .. ctx_M] [class-name tokens] [.] [EOT]: M context vectors,
shared by all classes (``csc=False``) or one set per class (``csc=True``), the class
token at the end, middle or front, context init N(0, 0.02) or the token embeddings
of a phrase (``ctx_init``; the context length becomes the phrase's token count).
Shared by the CoOp and DualPrompt adapters and usable by any third-party adapter;
the backbone is an ``albench.clip.backbone.Backbone`` (duck-typed here so the
component layer stays below the CLIP layer).
"""

from __future__ import annotations

import torch


class PromptLearner(torch.nn.Module):
    """CoOp's context vectors and the fixed token embeddings around them."""

    def __init__(
        self,
        backbone,
        classnames: list[str],
        n_ctx: int = 16,
        csc: bool = False,
        position: str = "end",
        init_std: float = 0.02,
        ctx_init: str = "",
    ):
        super().__init__()
        if position not in ("end", "middle", "front"):
            raise ValueError(f"class_token_position must be end, middle or front, not {position!r}")
        width = backbone.text_width
        ctx_init = ctx_init.replace("_", " ").strip()
        if ctx_init:  # reference CTX_INIT: context = the phrase's token embeddings, unified
            init_tok = backbone.tokenize([ctx_init])
            n_ctx = int(backbone.eot_positions(init_tok)[0]) - 1
            with torch.no_grad():
                init = backbone.token_embeddings(init_tok)[0, 1 : 1 + n_ctx].clone()
            self.ctx = torch.nn.Parameter(init)
            placeholder = ctx_init
        else:
            shape = (len(classnames), n_ctx, width) if csc else (n_ctx, width)
            self.ctx = torch.nn.Parameter(torch.empty(shape, device=backbone.device).normal_(std=init_std))
            placeholder = " ".join(["X"] * n_ctx)
        self.backbone, self.n_ctx, self.position = backbone, n_ctx, position
        names = [c.replace("_", " ") for c in classnames]
        tokens = backbone.tokenize([f"{placeholder} {n}." if n_ctx else f"{n}." for n in names])
        with torch.no_grad():
            emb = backbone.token_embeddings(tokens)
        self.register_buffer("prefix", emb[:, :1].clone(), persistent=False)
        self.register_buffer("suffix", emb[:, 1 + n_ctx :].clone(), persistent=False)
        self.register_buffer("eot", backbone.eot_positions(tokens), persistent=False)
        self.name_lens = [len(t) - 2 for t in class_name_token_ids(backbone, names)]

    def prompts(self) -> torch.Tensor:
        c = self.prefix.shape[0]
        ctx = self.ctx if self.ctx.dim() == 3 else self.ctx.unsqueeze(0).expand(c, -1, -1)
        if self.position == "end":
            return torch.cat([self.prefix, ctx, self.suffix], dim=1)
        out = []
        half = self.n_ctx // 2
        for i, nl in enumerate(self.name_lens):
            cls_tok, rest = self.suffix[i : i + 1, :nl], self.suffix[i : i + 1, nl:]
            if self.position == "middle":
                out.append(
                    torch.cat([self.prefix[i : i + 1], ctx[i : i + 1, :half], cls_tok, ctx[i : i + 1, half:], rest], 1)
                )
            else:
                out.append(torch.cat([self.prefix[i : i + 1], cls_tok, ctx[i : i + 1], rest], 1))
        return torch.cat(out, 0)

    def shares_prefix(self) -> bool:
        """Unified context at the front: [SOS][ctx] is the same in every prompt (run once)."""
        return self.position == "end" and self.ctx.dim() == 2

    def _shared_prefix(self) -> torch.Tensor:
        return torch.cat([self.prefix[:1], self.ctx.unsqueeze(0)], dim=1)

    def text_features(self) -> torch.Tensor:
        if self.shares_prefix():
            return self.backbone.encode_text_shared_prefix(self._shared_prefix(), self.suffix, self.eot)
        return self.backbone.encode_text_embeddings(self.prompts(), self.eot)


def can_encode_together(learners: list[PromptLearner]) -> bool:
    """Whether ``text_features_together`` runs these learners in one call: shared prefixes of one length, on one
    backbone, over the same class-name tokens."""
    first = learners[0]
    return all(
        pl.shares_prefix()
        and pl.backbone is first.backbone
        and pl.ctx.shape == first.ctx.shape
        and torch.equal(_buffer(pl, "suffix"), _buffer(first, "suffix"))
        and torch.equal(_buffer(pl, "eot"), _buffer(first, "eot"))
        for pl in learners
    )


def _buffer(module: torch.nn.Module, name: str) -> torch.Tensor:
    value = getattr(module, name)
    assert isinstance(value, torch.Tensor)
    return value


def text_features_together(learners: list[PromptLearner], checked: bool = False) -> list[torch.Tensor]:
    """Each learner's ``text_features()``, from one text-tower call when ``can_encode_together`` (batched runs).

    R learners' prefixes go through the tower as one batch of R·(P + C·S) rows
    (``Backbone.encode_text_shared_prefixes``); the results equal each learner's own call. ``checked=True``:
    the caller has established ``can_encode_together`` once (a training loop), so no step repeats it.
    """
    if len(learners) < 2 or not (checked or can_encode_together(learners)):
        return [pl.text_features() for pl in learners]
    first = learners[0]
    prefixes = torch.cat([pl._shared_prefix() for pl in learners])
    return list(first.backbone.encode_text_shared_prefixes(prefixes, first.suffix, first.eot).unbind(0))


def class_name_token_ids(backbone, names: list[str]) -> list[list[int]]:
    """Token ids (with SOS/EOT) of each class name, for middle/front placement."""
    toks = backbone.tokenize(names)
    eot = backbone.eot_positions(toks)
    return [toks[i, : int(e) + 1].tolist() for i, e in enumerate(eot)]
