"""MaPLe: multi-modal prompt learning for CLIP.

Khattak et al., "MaPLe: Multi-modal Prompt Learning", CVPR 2023; reference code
github.com/muzairkhattak/multimodal-prompt-learning (``trainers/maple.py``:
``MultiModalPromptLearner``; ``clip/model.py``: ``VisionTransformer_MaPLe``,
``ResidualAttentionBlock_MaPLe``), ported to open_clip's batch-first towers.

* Text: ``n_ctx = 2`` learnable context vectors after [SOS]; prompt depth
  J = 9: at the input of text blocks 1..J-1 the two context positions are
  replaced by fresh learnable "compound" prompts (N(0, 0.02) init).
* Vision: every text prompt is coupled to a vision prompt by its own linear
  projection text width -> vision width (the shallow one ``proj``, and J-1
  deep ones, clones of one initial layer as in the reference). The projected
  shallow prompts are appended to [CLS] + patches + positional embedding
  *before* ``ln_pre`` (the reference's placement); at blocks 1..J-1 the
  previous prompt outputs are replaced by the projected deep prompts. Only
  the text prompts and the projections are free parameters.
* Initialisation, with the reference's quirk: the context is initialised from
  "a photo of a", but only the first ``n_ctx = 2`` token embeddings ("a photo")
  become learnable; the prompt text stays the whole phrase, so "of a" remain
  fixed token embeddings after the context: [SOS] [ctx: "a photo"] "of a"
  {class} "." [EOT]. (The reference uses "{phrase} {class}." as the prompt, not
  the dataset template, and so do we.) When ``n_ctx`` exceeds the phrase's
  words the context is random N(0, 0.02) with placeholder tokens.
* Depth is capped at the towers' depth (the toy CLIP has 3 blocks per tower,
  so depth 9 means 3 there; ViT-B/16's 12 blocks take the full 9). With
  ``n_ctx = 0`` there are no prompts and the model is plain CLIP on the prompt
  "a photo of a {class}." (the splice test).

Defaults (paper grid lr in {0.001, 0.01, 0.03}, 10 or 20 epochs, batch 16;
the reference's base-to-novel recipe is lr 0.0035, batch 4, 5 epochs): lr
0.01, 10 epochs (with batch 16 instead of 4, the reference's step size is
roughly 0.01). On the toy world (digits, 5 % labels): 45 % vs 29 % zero-shot;
20 epochs gave 51 % at twice the cost. Augmentation ``augment="auto"`` as VPT:
the CoOp crop + flip for images of at least 64 px, off for the toy world's
32 px images (21 % with it on digits).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from albench.api.adapter import AdapterEnv, Labeled
from albench.api.errors import AlbenchError
from albench.api.options import Opt
from albench.api.seeding import seed_everything, torch_generator
from albench.components.training import TrainConfig, cosine_logits, train
from albench.components.training_options import check_training_options
from albench.components.visual_prompts import PromptedImageAdapter, vision_layers


class MultiModalPromptLearner(torch.nn.Module):
    """MaPLe's coupled text and vision prompts."""

    def __init__(self, backbone, classnames: list[str], n_ctx: int = 2, depth: int = 9, ctx_init: str = "a photo of a"):
        super().__init__()
        if n_ctx < 0:
            raise AlbenchError(f"maple: n_ctx={n_ctx!r}; valid: an integer >= 0 (paper: 2).")
        if depth < 1:
            raise AlbenchError(f"maple: depth={depth!r}; valid: an integer >= 1 (paper: 9).")
        self.backbone = backbone
        wt, wv = backbone.text_width, backbone.vision_width
        layers = min(len(backbone.model.transformer.resblocks), vision_layers(backbone))
        self.depth = min(depth, layers)
        self.n_ctx = n_ctx
        dev = backbone.device
        ctx_init = ctx_init.replace("_", " ").strip()
        if ctx_init and n_ctx <= len(ctx_init.split(" ")):
            with torch.no_grad():
                emb = backbone.token_embeddings(backbone.tokenize([ctx_init]))
            ctx = emb[0, 1 : 1 + n_ctx].clone()
            prefix_text = ctx_init  # the whole phrase: words after the first n_ctx tokens stay fixed
        else:
            ctx = torch.empty(n_ctx, wt, device=dev).normal_(std=0.02)
            prefix_text = " ".join(["X"] * n_ctx)
        self.ctx = torch.nn.Parameter(ctx)
        self.proj = torch.nn.Linear(wt, wv).to(dev)
        self.text_deep = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.empty(n_ctx, wt, device=dev).normal_(std=0.02)) for _ in range(self.depth - 1)]
        )
        single = torch.nn.Linear(wt, wv).to(dev)
        self.proj_deep = torch.nn.ModuleList([copy.deepcopy(single) for _ in range(self.depth - 1)])
        names = [c.replace("_", " ") for c in classnames]
        self.prompt_texts = [f"{prefix_text} {n}." if prefix_text else f"{n}." for n in names]
        tokens = backbone.tokenize(self.prompt_texts)
        if int(backbone.eot_positions(tokens).max()) >= backbone.context_length - 1:  # may have been truncated
            raise AlbenchError(
                f"maple: prompts with n_ctx={n_ctx} do not fit the text encoder's {backbone.context_length} positions."
            )
        with torch.no_grad():
            emb = backbone.token_embeddings(tokens)
        self.register_buffer("prefix", emb[:, :1].clone(), persistent=False)
        self.register_buffer("suffix", emb[:, 1 + n_ctx :].clone(), persistent=False)
        self.register_buffer("eot", backbone.eot_positions(tokens), persistent=False)

    def text_features(self) -> torch.Tensor:
        c = self.prefix.shape[0]
        x = torch.cat([self.prefix, self.ctx.unsqueeze(0).expand(c, -1, -1).to(self.prefix.dtype), self.suffix], dim=1)
        return self.backbone.encode_text_embeddings(x, self.eot, deep_prompts=list(self.text_deep), deep_start=1)

    def vision_prompts(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.proj(self.ctx), [p(t) for p, t in zip(self.proj_deep, self.text_deep)]

    def image_features(self, pixels: torch.Tensor, prompts: tuple | None = None) -> torch.Tensor:
        shallow, deep = prompts if prompts is not None else self.vision_prompts()
        return self.backbone.encode_image_prompted(pixels, shallow, deep, prompts_before_ln_pre=True)


class MaPLe(PromptedImageAdapter):
    """Multi-modal prompt learning: coupled text and vision prompts, depth 9, 2 context tokens."""

    name = "maple"
    defaults = {
        "n_ctx": 2,
        "depth": 9,
        "ctx_init": "a photo of a",
        "epochs": 10,
        "lr": 0.01,
        "batch_size": 16,
        "min_steps": 0,
        "augment": "auto",
        "aug_min_scale": 0.08,
    }
    schema = {
        "n_ctx": Opt(int, 0, 72),
        "depth": Opt(int, 1, 48),
        "augment": Opt(object, choices=(True, False, "auto")),
        "aug_min_scale": Opt(float, 0, 1, low_open=True),
        "epochs": Opt(int, 1, 1000),
        "lr": Opt(float, 0, None, low_open=True),
        "batch_size": Opt(int, 1, 65536),
        "min_steps": Opt(int, 0, 1_000_000),
    }

    def __init__(self, env: AdapterEnv, **options):
        super().__init__(env, **options)
        o = self.options
        check_training_options("maple", o)
        self.augmenting()
        if not 0 < o["aug_min_scale"] <= 1:
            raise AlbenchError(f"maple: aug_min_scale={o['aug_min_scale']!r}; valid: a number in (0, 1] (CoOp: 0.08).")
        if not isinstance(o["ctx_init"], str):
            raise AlbenchError(f"maple: ctx_init={o['ctx_init']!r}; valid: a phrase such as 'a photo of a', or ''.")
        seed_everything(env.seed, "maple-init", env.round)
        self.prompt = MultiModalPromptLearner(
            env.backbone, env.dataset.classnames, o["n_ctx"], o["depth"], o["ctx_init"]
        )

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.prompt.parameters())

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.prompt.image_features(pixels)

    def text_weights(self) -> torch.Tensor:
        return self.prompt.text_features()

    def fit(self, labeled: Labeled, pseudo: Labeled | None = None) -> dict:
        device, bb = self.env.device, self.env.backbone
        feed = self.train_feed("maple")
        cfg = TrainConfig(
            epochs=self.options["epochs"],
            lr=self.options["lr"],
            batch_size=self.options["batch_size"],
            min_steps=self.options["min_steps"],
        )

        def step(lb: Labeled | None, pb: Labeled | None) -> torch.Tensor:
            with bb.autocast():
                text = self.prompt.text_features()
                img = self.prompt.image_features(feed(lb.indices))
            logits = cosine_logits(img, text, bb.logit_scale)
            return F.cross_entropy(logits, torch.as_tensor(lb.labels, device=device))

        g = torch_generator(self.env.seed, "maple-batches", self.env.round)
        report = train(self.trainable_parameters(), step, labeled, None, cfg, g, where=f"maple round {self.env.round}")
        self.invalidate()
        return report
