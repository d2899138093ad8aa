"""Backbone profiles: plugin defaults that depend on the backbone, in one place.

The paper's hyper-parameters were chosen for ViT-B/16 (196 patches, 12 blocks
per tower): 20 visual prompt tokens (VPT, Jia et al., ECCV 2022; the dual
prompts of the seed paper) and MaPLe prompts in the first 9 blocks (Khattak et
al., CVPR 2023). On a backbone with a much smaller patch grid, 20 prompt tokens
would outnumber the image, and a depth beyond the towers' depth is meaningless.

A profile rescales those values from ViT-B/16 by a fixed rule: visual prompt
tokens keep the paper's prompt-to-patch ratio (20 / 196), MaPLe's depth is
capped by the shallower tower. The paper's own backbones (ViT-B/16, ViT-L/14)
keep the paper's values exactly; so does every open_clip architecture not
listed in ``PROFILED``. Profile values are defaults: options given on the
command line, in a preset or through the Python API still win. They are merged
into the run's options before its configuration is hashed, so a plain
``albench run`` and a preset on the same backbone run the same configuration.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

PAPER_PATCHES = 196  # ViT-B/16 at 224 px
PAPER_VISUAL_TOKENS = 20
PAPER_MAPLE_DEPTH = 9
# (kind, plugin, option) that hold a number of visual prompt tokens
VISUAL_TOKEN_OPTIONS = (
    ("adapter", "vpt", "n_tokens"),
    ("adapter", "dualprompt", "vpt_tokens"),
    ("strategy", "dualprompt", "vpt_tokens"),
)
DEPTH_OPTIONS = (("adapter", "maple", "depth"),)
# architectures whose defaults follow the rule; everything else keeps the paper's values
PROFILED = ("toy-clip", "toy-clip-v1")


@dataclass(frozen=True)
class BackboneProfile:
    arch: str
    patches: int | None = None
    tower_depth: int | None = None
    overrides: dict = field(default_factory=dict)  # {(kind, plugin): {option: value}}

    def defaults(self, kind: str, plugin: str) -> dict:
        return dict(self.overrides.get((kind, plugin), {}))

    def describe(self) -> dict:
        """What the run configuration stores (absent when the profile changes nothing)."""
        return {
            "arch": self.arch,
            "patches": self.patches,
            "tower_depth": self.tower_depth,
            "overrides": {f"{k}:{p}": dict(sorted(o.items())) for (k, p), o in sorted(self.overrides.items())},
        }

    def caption(self) -> str:
        """What differs from the paper's values, for table captions ("" when nothing does)."""
        parts = []
        tokens = next(
            (o[opt] for (k, p, opt) in VISUAL_TOKEN_OPTIONS if (o := self.overrides.get((k, p))) and opt in o), None
        )
        if tokens is not None:
            parts.append(
                f"{tokens} visual prompt tokens for {self.patches} patches "
                f"(paper: {PAPER_VISUAL_TOKENS} for {PAPER_PATCHES})"
            )
        depth = self.overrides.get(("adapter", "maple"), {}).get("depth")
        if depth is not None:
            parts.append(f"MaPLe depth {depth} (towers of {self.tower_depth} blocks; paper: {PAPER_MAPLE_DEPTH})")
        return f"{self.arch}: {'; '.join(parts)}" if parts else ""


def _geometry(arch: str) -> tuple[int, int]:
    """(patches, depth of the shallower tower) from the open_clip config of ``arch``."""
    import open_clip

    from albench.clip.weights import register_shipped_configs

    register_shipped_configs()
    cfg = open_clip.get_model_config(arch)
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    patches = (int(v["image_size"]) // int(v["patch_size"])) ** 2
    return patches, min(int(v["layers"]), int(t["layers"]))


def visual_tokens_for(patches: int) -> int:
    """The paper's prompt-to-patch ratio applied to ``patches`` (at least one token)."""
    return max(1, int(PAPER_VISUAL_TOKENS * patches / PAPER_PATCHES))


@functools.lru_cache(maxsize=None)
def profile_for(arch: str) -> BackboneProfile:
    if arch not in PROFILED:
        return BackboneProfile(arch)
    patches, depth = _geometry(arch)
    overrides: dict = {}
    for kind, plugin, opt in VISUAL_TOKEN_OPTIONS:
        overrides.setdefault((kind, plugin), {})[opt] = visual_tokens_for(patches)
    for kind, plugin, opt in DEPTH_OPTIONS:
        if depth < PAPER_MAPLE_DEPTH:
            overrides.setdefault((kind, plugin), {})[opt] = depth
    return BackboneProfile(arch, patches, depth, overrides)


def apply_profile(spec):
    """``spec`` (a RunSpec) with its backbone's profile defaults under the options it was given."""
    prof = profile_for(spec.backbone.arch)
    if not prof.overrides:
        return spec
    s_opts = {**prof.defaults("strategy", spec.strategy), **spec.strategy_options}
    a_opts = {**prof.defaults("adapter", spec.adapter), **spec.adapter_options}
    return dataclasses.replace(spec, strategy_options=s_opts, adapter_options=a_opts)
