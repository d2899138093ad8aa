"""Where a backbone's weights come from, which activation they need, and loading them.

Sources (``--backbone ARCH --pretrained SOURCE``):

* ``toy-clip`` (default) or ``toy-clip-v1`` with ``albench-toy`` (their default): the tiny CLIPs
  shipped in the package, open_clip configs registered from ``albench/data/toy/configs``;
* an open_clip pretrained tag (``ViT-B-16`` + ``openai``): the file must already be in
  the Hugging Face hub cache (``models--<org>--<repo>/snapshots/<rev>/open_clip_model.safetensors``
  or ``open_clip_pytorch_model.bin``) or, for OpenAI's own archives, in ``~/.cache/clip``;
  nothing is ever downloaded;
* a local file: ``.safetensors``, a ``torch.save``d state dict (read with
  ``weights_only=True``), or an OpenAI TorchScript archive (only with
  ``allow_torchscript``: loading it executes code stored in the file);
  ``TAG=/path/file`` names the pretrained tag the file holds;
* ``random``: random init (seed 0), only when asked for by name, and recorded as such.

QuickGELU. OpenAI's CLIP (and some later checkpoints) were trained with
QuickGELU, ``x * sigmoid(1.702 x)``; open_clip builds ``ViT-B-16`` with exact GELU
unless told otherwise, and the wrong activation silently changes every feature.
The decision comes from the model, never from a file name: for a tag, open_clip's
pretrained configuration (``quick_gelu``); for an OpenAI TorchScript archive,
QuickGELU (that is how OpenAI's code builds it); for a plain file, the user's
``--quick-gelu``/``--no-quick-gelu`` or the tag given with it. A plain file for an
architecture that has QuickGELU checkpoints and no decision is an error.
(Radford et al., ICML 2021, github.com/openai/CLIP; open_clip, github.com/mlfoundations/open_clip.)
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from albench.api.errors import AlbenchError, UnknownNameError, WeightsError

TOY = "toy-clip"
TOY_TAG = "albench-toy"
RANDOM = "random"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


@dataclass
class BackboneSpec:
    """What the user asked for; ``Backbone.load`` turns it into a model."""

    arch: str = TOY
    pretrained: str | None = None  # tag, file path, TAG=path, "random"; None = the arch's default
    quick_gelu: bool | None = None  # None = decide from the tag / the file's format
    allow_torchscript: bool = False
    cache_dir: str | None = None  # searched before the Hugging Face and open_clip caches


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights source, found and understood, before any tensor is read."""

    arch: str
    path: Path | None  # None: random init
    format: str  # toy | safetensors | torch-state-dict | openai-torchscript | random
    tag: str | None  # the open_clip pretrained tag these weights are (given or looked up)
    quick_gelu: bool
    quick_gelu_reason: str  # why, in words (recorded)
    found_in: str  # how it was found: "shipped", "file", "hub cache", "openai cache", "random"

    def describe(self) -> dict:
        return {
            "arch": self.arch,
            "path": str(self.path) if self.path else None,
            "format": self.format,
            "tag": self.tag,
            "quick_gelu": self.quick_gelu,
            "quick_gelu_reason": self.quick_gelu_reason,
            "found_in": self.found_in,
        }


# --- files ------------------------------------------------------------------------


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


def file_format(path: Path) -> str:
    if path.suffix == ".safetensors":
        return "safetensors"
    return "openai-torchscript" if is_torchscript(path) else "torch-state-dict"


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors or torch file, never executing pickled code."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"Could not read weights file {path}: {type(exc).__name__}: {exc}. "
            f"Is it truncated or not a CLIP checkpoint?"
        ) from exc
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise WeightsError(f"Weights file {path} does not hold a state dict of tensors.")
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in sd.items()}


def load_strict(model: torch.nn.Module, sd: dict[str, torch.Tensor], arch: str, path: Path) -> None:
    """Load a state dict, failing with a readable list of what does not fit."""
    own = {k: v for k, v in model.state_dict().items() if k != "attn_mask"}
    sd = {k: v for k, v in sd.items() if k != "attn_mask"}
    if "logit_scale" in sd and "logit_scale" in own and sd["logit_scale"].ndim != own["logit_scale"].ndim:
        sd["logit_scale"] = sd["logit_scale"].reshape(own["logit_scale"].shape)
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = [
        f"{k}: file {tuple(sd[k].shape)} vs {arch} {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(sd))
        if sd[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:3])})")
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        raise WeightsError(
            f"Weights file {path} does not match architecture '{arch}': {'; '.join(parts)}. "
            f"Pass the architecture these weights were saved from with --backbone."
        )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=False)


# --- finding a tag's file in the caches ------------------------------------------------


def hub_cache_dirs(spec: BackboneSpec) -> list[Path]:
    """Hugging Face hub caches searched for a tag, in order (``--cache-dir`` of the spec first)."""
    dirs = []
    if spec.cache_dir:
        dirs.append(Path(spec.cache_dir))
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    dirs.append(Path(os.environ.get("HF_HUB_CACHE") or hf_home / "hub"))
    return dirs


def openai_cache_dirs(spec: BackboneSpec) -> list[Path]:
    return ([Path(spec.cache_dir)] if spec.cache_dir else []) + [Path.home() / ".cache" / "clip"]


def hub_repo(arch: str, tag: str) -> tuple[str | None, list[str]]:
    """The Hugging Face repository of a tag and the file names open_clip would fetch from it."""
    from open_clip.pretrained import get_pretrained_cfg

    hub = (get_pretrained_cfg(arch, tag).get("hf_hub") or "").strip()
    if not hub:
        return None, []
    repo, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
    if not filename:
        return repo, list(HUB_FILES)
    return repo, [filename]


def find_tag_file(arch: str, tag: str, spec: BackboneSpec) -> tuple[Path | None, str, list[str]]:
    """Local file of an open_clip pretrained tag, from caches only: (path, where, places looked)."""
    from open_clip.pretrained import get_pretrained_cfg

    looked: list[str] = []
    repo, names = hub_repo(arch, tag)
    if repo:
        from huggingface_hub import try_to_load_from_cache

        for d in hub_cache_dirs(spec):
            for name in names:
                looked.append(f"{d}/models--{repo.replace('/', '--')}/snapshots/*/{name}")
                hit = try_to_load_from_cache(repo, name, cache_dir=str(d))
                if isinstance(hit, str) and Path(hit).is_file():
                    return Path(hit), "hub cache", looked
    url = get_pretrained_cfg(arch, tag).get("url") or ""
    if url:
        for d in openai_cache_dirs(spec):
            cand = d / os.path.basename(url)
            looked.append(str(cand))
            if cand.is_file():
                return cand, "openai cache", looked
    return None, "", looked


def fill_cache_command(arch: str, tag: str) -> str:
    """The one command that fills the caches for a tag on a machine with internet."""
    return f"python -c \"import open_clip; open_clip.create_model('{arch}', pretrained='{tag}')\""


# --- resolution -----------------------------------------------------------------------


def _tags(arch: str) -> list[str]:
    from open_clip.pretrained import list_pretrained_tags_by_model

    return list_pretrained_tags_by_model(arch)


def _tag_quick_gelu(arch: str, tag: str) -> bool:
    from open_clip.pretrained import get_pretrained_cfg

    return bool(get_pretrained_cfg(arch, tag).get("quick_gelu")) or arch.endswith("-quickgelu")


def _looks_like_path(src: str) -> bool:
    return Path(src).suffix in WEIGHT_SUFFIXES or os.sep in src or Path(src).exists()


def _flag(value: bool) -> str:
    return "--quick-gelu" if value else "--no-quick-gelu"


def register_shipped_configs() -> None:
    """Make the architectures whose configs ship with albench (the toy CLIPs) known to open_clip."""
    from albench.data.toy.model import register_configs

    register_configs()


def resolve_weights(spec: BackboneSpec) -> ResolvedWeights:
    """Find the weights and decide the activation; reads no tensors. Raises a clear ``AlbenchError``."""
    from albench.data.toy.model import SHIPPED_WEIGHTS, register_configs

    register_configs()  # the toy CLIPs are open_clip configs shipped in albench/data/toy/configs
    if spec.arch in SHIPPED_WEIGHTS:
        return _resolve_toy(spec)
    import open_clip

    arch = spec.arch
    if arch not in open_clip.list_models():
        raise UnknownNameError("backbone architecture", arch, open_clip.list_models())
    src = spec.pretrained
    tags = _tags(arch)
    if src is None:
        raise AlbenchError(
            f"--pretrained is required for backbone '{arch}': an open_clip tag "
            f"({', '.join(tags) or 'none known'}), a local weights file, TAG=/path/to/file, "
            f"or 'random' for random init."
        )
    tag: str | None = None
    path: Path | None = None
    found_in = "random"
    if src == RANDOM:
        pass
    elif "=" in src and not Path(src).exists() and not _looks_like_path(src.split("=", 1)[0]):
        tag, file_part = src.split("=", 1)
        if tag not in tags:
            raise UnknownNameError(f"pretrained tag for '{arch}' (in --pretrained TAG=FILE)", tag, tags)
        path, found_in = Path(file_part).expanduser(), "file"
    elif _looks_like_path(src):
        path, found_in = Path(src).expanduser(), "file"
    else:
        if src not in tags:
            raise UnknownNameError(f"pretrained tag for '{arch}'", src, tags + [RANDOM])
        tag = src
        _decide_quick_gelu(spec, arch, tag, "tag", tags)  # a contradicting flag is wrong wherever the file is
        path, found_in, looked = find_tag_file(arch, tag, spec)
        if path is None:
            repo, names = hub_repo(arch, tag)
            where = (
                f"the Hugging Face cache (models--{repo.replace('/', '--')}/snapshots/<rev>/{names[0]})"
                if repo
                else "~/.cache/clip"
            )
            raise WeightsError(
                f"Pretrained weights '{arch}' / '{tag}' are not on this machine and albench never downloads. "
                f"Looked in: {'; '.join(looked)}. Fill {where} on a machine with internet with "
                f"{fill_cache_command(arch, tag)} and copy it here (set HF_HOME or HF_HUB_CACHE to where it lies), "
                f"or pass the file itself: --backbone {arch} --pretrained {tag}=/path/to/"
                f"{names[0] if names else 'weights.safetensors'}."
            )
    if path is not None and not path.is_file():
        raise WeightsError(
            f"Weights file {path} does not exist." if not path.exists() else f"Weights path {path} is not a file."
        )
    fmt = "random" if path is None else file_format(path)
    if fmt == "openai-torchscript" and not spec.allow_torchscript:
        raise WeightsError(
            f"{path} is an OpenAI TorchScript archive; loading it executes code stored in the file. "
            f"Pass --allow-torchscript if you trust it, or convert it to a safetensors state dict."
        )
    qg, reason = _decide_quick_gelu(spec, arch, tag, fmt, tags)
    return ResolvedWeights(arch, path, fmt, tag, qg, reason, found_in)


def _decide_quick_gelu(spec: BackboneSpec, arch: str, tag: str | None, fmt: str, tags: list[str]) -> tuple[bool, str]:
    given = spec.quick_gelu
    native: bool | None = None
    if fmt == "openai-torchscript":
        native, reason = True, "OpenAI TorchScript archive (OpenAI's CLIP uses QuickGELU)"
    elif tag is not None:
        native = _tag_quick_gelu(arch, tag)
        reason = f"open_clip's pretrained config of {arch} / {tag}"
    elif arch.endswith("-quickgelu"):
        native, reason = True, f"open_clip architecture {arch} is defined with QuickGELU"
    if native is not None:
        if given is not None and given != native:
            raise AlbenchError(
                f"{_flag(given)} contradicts the weights: {reason} says "
                f"{'QuickGELU' if native else 'GELU'}. Drop {_flag(given)}."
            )
        return native, reason
    if given is not None:
        return given, f"{_flag(given)} given"
    if fmt == "random":
        return False, f"random init: open_clip's activation for {arch} (GELU)"
    qg_tags = [t for t in tags if _tag_quick_gelu(arch, t)]
    if qg_tags:
        raise AlbenchError(
            f"Cannot tell which activation the weights file {spec.pretrained} needs: {arch} has checkpoints "
            f"trained with QuickGELU ({', '.join(qg_tags)}) and with GELU. Say which: --quick-gelu or "
            f"--no-quick-gelu, or name the tag with the file (--pretrained {qg_tags[0]}=/path/to/file)."
        )
    return False, f"no pretrained tag of {arch} uses QuickGELU (open_clip's configs)"


def _resolve_toy(spec: BackboneSpec) -> ResolvedWeights:
    """Weights for an architecture whose weights ship with albench (``--pretrained albench-toy``, the default)."""
    from albench.data.toy.model import SHIPPED_WEIGHTS

    arch = spec.arch
    if spec.quick_gelu:
        raise AlbenchError("The toy CLIP was trained with GELU; --quick-gelu does not apply to it.")
    src = spec.pretrained or TOY_TAG
    reason = f"{arch} is trained with GELU"
    if src == RANDOM:
        return ResolvedWeights(arch, None, "random", None, False, reason, "random")
    path = SHIPPED_WEIGHTS[arch] if src == TOY_TAG else Path(src).expanduser()
    if src != TOY_TAG and not path.exists():
        raise WeightsError(
            f"Weights file {path} does not exist. For the toy CLIP use --pretrained {TOY_TAG} "
            f"(shipped), a file saved from it, or --pretrained random."
        )
    if not path.exists():
        raise WeightsError(
            f"The shipped toy CLIP weights ({arch}) are missing ({path}). Reinstall albench or run "
            f"'albench toy pretrain' to recreate them."
        )
    return ResolvedWeights(
        arch,
        path,
        "toy" if src == TOY_TAG else file_format(path),
        TOY_TAG if src == TOY_TAG else None,
        False,
        reason,
        "shipped" if src == TOY_TAG else "file",
    )


# --- loading ----------------------------------------------------------------------------


def identity(res: ResolvedWeights) -> str:
    """Stable name of the weights + activation (the cache key's and run hash's backbone part)."""
    qg = ":qg" if res.quick_gelu else ""
    if res.path is None:
        return f"{res.arch}:{RANDOM}:seed0{qg}"
    return f"{res.arch}:{file_sha256(res.path)[:16]}{qg}"


class _NoRandomInitNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


@contextlib.contextmanager
def _quiet_random_init_notice():
    """open_clip logs "initialized randomly" for every model built before its weights are loaded; not true here."""
    filt = _NoRandomInitNotice()
    logging.getLogger().addFilter(filt)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(filt)


def load_model(spec: BackboneSpec) -> tuple[Any, ResolvedWeights, str]:  # Any: an open_clip CLIP
    """Build the model on the CPU in fp32 with its weights: (model, resolution, identity)."""
    res = resolve_weights(spec)
    import open_clip

    if res.format == "openai-torchscript":
        try:
            model = open_clip.load_openai_model(str(res.path), precision="fp32", device="cpu")
        except Exception as exc:
            raise WeightsError(f"Could not read OpenAI archive {res.path}: {type(exc).__name__}: {exc}.") from exc
        return model.float(), res, identity(res)
    with torch.random.fork_rng(), _quiet_random_init_notice():
        torch.manual_seed(0)
        model = open_clip.create_model(
            res.arch, pretrained=None, force_quick_gelu=res.quick_gelu and not res.arch.endswith("-quickgelu")
        )
    if res.path is not None:
        load_strict(model, read_state_dict(res.path), res.arch, res.path)
    return model, res, identity(res)
