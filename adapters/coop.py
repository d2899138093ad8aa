"""CoOp: learnable text context for CLIP (Zhou et al., "Learning to Prompt for
Vision-Language Models", IJCV 2022; reference code github.com/KaiyangZhou/CoOp,
``trainers/coop.py``).

Prompt = [SOS] [ctx_1 .. ctx_M] [class-name tokens] [.] [EOT] with M = 16 shared
context vectors (``csc=True``: one set per class), class token at the end
(``class_token_position``: end / middle / front), EOT pooling, cosine logits at
CLIP's temperature. Context init N(0, 0.02) as in the reference. The image
encoder is frozen, so training reads cached features: the image tower never
runs during training.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from albench.adapter import Adapter, AdapterEnv, Labeled
from albench.seeding import seed_everything, torch_generator
from albench.training import TrainConfig, train


class PromptLearner(torch.nn.Module):
    """CoOp's context vectors and the fixed token embeddings around them."""

    def __init__(self, backbone, classnames: list[str], n_ctx: int = 16, csc: bool = False,
                 position: str = "end", init_std: float = 0.02):
        super().__init__()
        if position not in ("end", "middle", "front"):
            raise ValueError(f"class_token_position must be end, middle or front, not {position!r}")
        self.backbone, self.n_ctx, self.position = backbone, n_ctx, position
        width = backbone.text_width
        shape = (len(classnames), n_ctx, width) if csc else (n_ctx, width)
        self.ctx = torch.nn.Parameter(torch.empty(shape, device=backbone.device).normal_(std=init_std))
        names = [c.replace("_", " ") for c in classnames]
        placeholder = " ".join(["X"] * n_ctx)
        tokens = backbone.tokenize([f"{placeholder} {n}." if n_ctx else f"{n}." for n in names])
        with torch.no_grad():
            emb = backbone.token_embeddings(tokens)
        self.register_buffer("prefix", emb[:, :1].clone(), persistent=False)
        self.register_buffer("suffix", emb[:, 1 + n_ctx:].clone(), persistent=False)
        self.register_buffer("eot", backbone.eot_positions(tokens), persistent=False)
        self.name_lens = [len(t) - 2 for t in _encode_lengths(backbone, names)]

    def prompts(self) -> torch.Tensor:
        c = self.prefix.shape[0]
        ctx = self.ctx if self.ctx.dim() == 3 else self.ctx.unsqueeze(0).expand(c, -1, -1)
        if self.position == "end":
            return torch.cat([self.prefix, ctx, self.suffix], dim=1)
        out = []
        half = self.n_ctx // 2
        for i, nl in enumerate(self.name_lens):
            cls_tok, rest = self.suffix[i:i + 1, :nl], self.suffix[i:i + 1, nl:]
            if self.position == "middle":
                out.append(torch.cat([self.prefix[i:i + 1], ctx[i:i + 1, :half], cls_tok, ctx[i:i + 1, half:], rest], 1))
            else:
                out.append(torch.cat([self.prefix[i:i + 1], cls_tok, ctx[i:i + 1], rest], 1))
        return torch.cat(out, 0)

    def text_features(self) -> torch.Tensor:
        return self.backbone.encode_text_embeddings(self.prompts(), self.eot)


def _encode_lengths(backbone, names: list[str]) -> list[list[int]]:
    """Token ids (with SOS/EOT) of each class name, for middle/front placement."""
    toks = backbone.tokenize(names)
    eot = backbone.eot_positions(toks)
    return [toks[i, :int(e) + 1].tolist() for i, e in enumerate(eot)]


class CoOp(Adapter):
    """Context optimisation on cached image features."""

    name = "coop"
    frozen_image_encoder = True
    defaults = {"n_ctx": 16, "csc": False, "class_token_position": "end", "epochs": 20, "lr": 0.01,
                "batch_size": 16, "min_steps": 0}

    def __init__(self, env: AdapterEnv, **options):
        super().__init__(env, **options)
        if self.options["class_token_position"] not in ("end", "middle", "front"):
            from albench.errors import AlbenchError

            raise AlbenchError(f"coop: class_token_position={self.options['class_token_position']!r}; "
                               f"valid: end, middle, front.")
        seed_everything(env.seed, "coop-init", env.round)
        self.prompt = PromptLearner(env.backbone, env.task.classnames, self.options["n_ctx"], self.options["csc"],
                                    self.options["class_token_position"])
        self._text: torch.Tensor | None = None

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [self.prompt.ctx]

    def _logits(self, feats: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.env.backbone.logit_scale * F.normalize(feats.float(), dim=-1) @ F.normalize(text.float(), dim=-1).T

    def fit(self, labeled: Labeled, pseudo: Labeled | None = None) -> dict:
        bank, device = self.env.bank, self.env.device
        feats = bank.features("pool").to(device)
        cfg = TrainConfig(epochs=self.options["epochs"], lr=self.options["lr"], batch_size=self.options["batch_size"],
                          min_steps=self.options["min_steps"])

        def step(lb: Labeled | None, pb: Labeled | None) -> torch.Tensor:
            with self.env.backbone.autocast():
                text = self.prompt.text_features()
            logits = self._logits(feats[torch.as_tensor(lb.indices, device=device)], text)
            return F.cross_entropy(logits, torch.as_tensor(lb.labels, device=device))

        g = torch_generator(self.env.seed, "coop-batches", self.env.round)
        report = train(self.trainable_parameters(), step, labeled, None, cfg, g, where=f"coop round {self.env.round}")
        self._text = None
        return report

    @torch.no_grad()
    def classifier(self) -> torch.Tensor:
        if self._text is None:
            with self.env.backbone.autocast():
                self._text = F.normalize(self.prompt.text_features().float(), dim=-1).cpu()
        return self._text

    @torch.no_grad()
    def predict_logits(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        return self._logits(self.image_features(split, indices), self.classifier())
