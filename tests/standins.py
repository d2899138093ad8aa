"""Stand-in weights files in the exact formats, names and folder layouts of the real ones (random init).

Used by tests/test_weights.py and tests/test_real_clip_docs.py.
"""

import hashlib
import os
from pathlib import Path

import torch

REV = "5a1b2c3d4e5f60718293a4b5c6d7e8f901234567"  # a commit hash, as in a real hub cache


def write_safetensors(sd: dict, path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


def write_torch(sd: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path


def write_openai_archive(sd: dict, path: Path) -> Path:
    """A TorchScript archive holding the tensors under OpenAI's names, in fp16 as OpenAI ships them."""

    class Node(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    root = Node()
    for key, value in sd.items():
        *parents, leaf = key.split(".")
        mod = root
        for name in parents:
            if not isinstance(getattr(mod, name, None), torch.nn.Module):
                mod.add_module(name, Node())
            mod = getattr(mod, name)
        mod.register_parameter(leaf, torch.nn.Parameter(value.half().clone(), requires_grad=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(root), str(path))
    return path


def hub_tree(cache: Path, repo: str, files: dict[str, Path]) -> Path:
    """A Hugging Face hub cache entry as huggingface_hub writes it; returns the snapshot folder."""
    base = cache / f"models--{repo.replace('/', '--')}"
    snap = base / "snapshots" / REV
    (base / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    (base / "refs").mkdir(exist_ok=True)
    (base / "refs" / "main").write_text(REV)
    for name, src in files.items():
        blob = base / "blobs" / hashlib.sha256(src.read_bytes()).hexdigest()
        os.replace(src, blob)
        (snap / name).symlink_to(os.path.relpath(blob, snap))
    return snap
