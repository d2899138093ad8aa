"""docs/real-clip.md, run as written on stand-ins.

Every ``bash`` block of the page runs in a shell whose ``$HOME`` and the page's absolute folders
(/shared, /tmp/fake-data) point into a temporary directory, with Hugging Face offline. The weights are a
random-init ViT-B/16 written where open_clip's own download would put it; the data are fake CoOp trees.
Stand-in-only additions to the page's commands are listed in ``EXTRA`` (the fake trees are smaller than CoOp's
official splits, and a CPU cannot run all of Table 1).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "real-clip.md"
# command prefix -> flags added on stand-ins
EXTRA = {
    "albench doctor --preset table1": " --allow-custom-split --device cpu",
    "albench run --preset table1": (
        " --allow-custom-split --device cpu --dataset dtd --strategy random --seeds 1"
        " --rounds 1 --budget 1 --round-budget 2 --adapter-opt coop:epochs=1"
        " --adapter-opt coop:min_steps=0 --no-progress"
    ),
    "albench table --preset table1": " --budget 1 --seeds 1",
}


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)


def on_standins(block: str, root: Path) -> str:
    out = []
    for line in block.splitlines():
        for prefix, extra in EXTRA.items():
            if line.startswith(prefix):
                line += extra
        out.append(
            line.replace("/shared/", f"{root}/shared/")
            .replace("/shared ", f"{root}/shared ")
            .replace("/tmp/fake-data", f"{root}/fake-data")
        )
    return "\n".join(out)


def shell(block: str, root: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=root, env=env, capture_output=True, text=True, timeout=1500
    )


def test_the_page_has_the_blocks_this_test_runs():
    blocks = bash_blocks()
    assert len(blocks) == 5
    assert blocks[0].startswith(
        "python -c \"import open_clip; open_clip.create_model('ViT-B-16', pretrained='openai')\""
    )
    assert "cp -a ~/.cache/huggingface/hub/models--timm--vit_base_patch16_clip_224.openai" in blocks[1]
    assert all(
        line.startswith(("albench", "python", "cp", "mkdir", "export"))
        for b in blocks
        for line in b.splitlines()
        if line.strip()
    )


def test_rehearsal_with_a_fake_tree(tmp_path):
    """Section 4 as written (fast: no weights needed)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", OMP_NUM_THREADS="1")
    r = shell(on_standins(bash_blocks()[3], tmp_path), tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert "dtd: 47 classes, pool (train) 94" in r.stdout and "template '{} texture.'" in r.stdout


@pytest.mark.slow
@pytest.mark.timeout(1500)  # five CLI processes each loading a 150 M-parameter model on a shared CPU
def test_every_command_of_the_page_on_standins(tmp_path):
    import open_clip
    import torch

    from albench.data.datasets.fake import generate
    from albench.engine.grid import load_preset
    from standins import hub_tree, write_safetensors

    home = tmp_path / "home"
    hub = home / ".cache" / "huggingface" / "hub"
    with torch.random.fork_rng():
        torch.manual_seed(2)
        model = open_clip.create_model("ViT-B-16", force_quick_gelu=True)
    src = write_safetensors(
        {k: v for k, v in model.state_dict().items() if k != "attn_mask"}, tmp_path / "open_clip_model.safetensors"
    )
    del model
    hub_tree(hub, "timm/vit_base_patch16_clip_224.openai", {"open_clip_model.safetensors": src})
    data = tmp_path / "shared" / "coop-data"
    for name in load_preset("table1").datasets:
        generate(name, data, image_size=16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ALBENCH_DATA"))}
    env.update(
        HOME=str(home),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        ALBENCH_CACHE=str(tmp_path / "cache"),
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        PYTHONWARNINGS="ignore",
    )
    blocks = [on_standins(b, tmp_path) for b in bash_blocks()]

    r = shell(blocks[0], tmp_path, env)  # open_clip's own call finds the (stand-in) download in the cache
    assert r.returncode == 0, r.stderr
    r = shell(blocks[1], tmp_path, env)  # copy to the "cluster" cache and ask doctor
    assert r.returncode == 0, r.stdout + r.stderr
    assert (
        tmp_path / "shared" / "hf-hub" / "models--timm--vit_base_patch16_clip_224.openai" / "refs" / "main"
    ).is_file()
    assert f"ok: {tmp_path}/shared/hf-hub/models--timm--vit_base_patch16_clip_224.openai/snapshots/" in r.stdout
    assert "activation: QuickGELU (open_clip's pretrained config of ViT-B-16 / openai)" in r.stdout
    env["HF_HUB_CACHE"] = str(tmp_path / "shared" / "hf-hub")
    r = shell(blocks[2], tmp_path, env)  # a local file with its tag
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"ok: {tmp_path}/shared/vit-b-16-openai.safetensors [safetensors, found in file]" in r.stdout
    assert "activation: QuickGELU (open_clip's pretrained config of ViT-B-16 / openai)" in r.stdout
    r = shell(blocks[4], tmp_path, env)  # doctor, run and table of the preset
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ready: albench run with these options would start." in r.stdout
    assert "1 run(s) done, 0 skipped, 0 failed" in r.stdout
    assert "DTD" in r.stdout
    # and doctor says what is missing, with exit 1, when the data root is wrong
    env.pop("HF_HUB_CACHE")
    bad = shell(f"albench doctor --preset table1 --data-root {tmp_path}/nowhere --device cpu", tmp_path, env)
    assert bad.returncode == 1 and "problem(s); albench run would stop before any run" in bad.stdout
    assert f"the data root {tmp_path}/nowhere does not exist" in bad.stdout
