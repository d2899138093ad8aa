"""The GPU check behind scripts/gpu_check.sh; writes reports/gpu_check.md and reports/gpu_check.json.

1. Features: the same random-init ViT-B/16 (seed 0) encodes the same images and prompts in fp32 on the CPU
   and in bf16 autocast on the GPU; every image's and prompt's cosine similarity must be >= 0.999.
2. Adapters: `albench run` with every registered adapter, 2 rounds, on a fake DTD tree at 224 px,
   `--device cuda --precision bf16 --deterministic`; each run must finish.
3. The GPU benchmark (`albench bench --gpu`), with whatever time is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRY = os.environ.get("GPU_CHECK_DRY") == "1"
BUDGET_S = 470
T0 = time.perf_counter()


def left() -> float:
    return BUDGET_S - (time.perf_counter() - T0)


def albench(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """Run the CLI; a step that outlives its share of the 8 minutes comes back as exit 124 with its output."""
    cmd = [sys.executable, "-m", "albench.cli", *args]
    print("$ albench", " ".join(args), flush=True)
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=max(10.0, timeout), cwd=ROOT)
    except subprocess.TimeoutExpired as exc:

        def text(b) -> str:
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")

        return subprocess.CompletedProcess(
            cmd, 124, text(exc.stdout), text(exc.stderr) + f"\ntimed out after {timeout:.0f} s"
        )


def feature_check(arch: str, gpu: str) -> dict:
    import torch
    import torch.nn.functional as F

    from albench.clip.backbone import Backbone, BackboneSpec

    spec = BackboneSpec(arch, "random")
    cpu = Backbone.load(spec, device="cpu", precision="fp32")
    dev = Backbone.load(spec, device=gpu, precision="bf16")
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, cpu.image_size, cpu.image_size, 3), generator=g, dtype=torch.uint8)
    prompts = [
        f"a photo of a {c}, a type of texture."
        for c in ("banded", "blotchy", "braided", "bubbly", "bumpy", "chequered", "cobwebbed", "cracked")
    ]
    t = time.perf_counter()
    with torch.no_grad():
        f_cpu = cpu.encode_images(cpu.normalize_pixels(x)).float()
        t_cpu = cpu.text_classifier(prompts)
        with dev.autocast():
            f_dev = dev.encode_images(dev.normalize_pixels(x)).float().cpu()
        t_dev = dev.text_classifier(prompts).cpu()
    img = F.cosine_similarity(f_cpu, f_dev)
    txt = F.cosine_similarity(t_cpu, t_dev)
    return {
        "arch": arch,
        "images": len(x),
        "prompts": len(prompts),
        "device": str(dev.device),
        "precision": dev.precision,
        "image_cosine_min": float(img.min()),
        "text_cosine_min": float(txt.min()),
        "pass": bool(img.min() >= 0.999 and txt.min() >= 0.999),
        "seconds": round(time.perf_counter() - t, 2),
    }


def main() -> int:
    import torch

    out = ROOT / "reports"
    out.mkdir(exist_ok=True)
    stem = "gpu_check_dryrun" if DRY else "gpu_check"
    gpu = "cpu" if DRY else "cuda"
    arch = "toy-clip" if DRY else "ViT-B-16"
    if not DRY and not torch.cuda.is_available():
        print("no CUDA GPU visible; run with GPU_CHECK_DRY=1 to test the script on the CPU", file=sys.stderr)
        return 2
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    res: dict = {
        "commit": commit,
        "dry_run": DRY,
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    res["features"] = feature_check(arch, gpu)
    print(json.dumps(res["features"]), flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    r = albench("data", "fake", "dtd", "--root", str(tmp / "data"), "--image-size", "224", timeout=left())
    assert r.returncode == 0, r.stderr
    t = time.perf_counter()
    r = albench(
        "run",
        "--dataset",
        "dtd",
        "--data-root",
        str(tmp / "data"),
        "--allow-custom-split",
        "--backbone",
        arch,
        "--pretrained",
        "random",
        "--adapter",
        "all",
        "--strategy",
        "random",
        "--seeds",
        "1",
        "--rounds",
        "2",
        "--device",
        gpu,
        "--precision",
        "bf16",
        "--deterministic",
        "--results-dir",
        str(tmp / "results"),
        "--cache-dir",
        str(tmp / "cache"),
        "--no-progress",
        timeout=left() - 60,
    )
    res["adapters"] = {
        "returncode": r.returncode,
        "seconds": round(time.perf_counter() - t, 1),
        "lines": [ln for ln in r.stdout.splitlines() if ln.startswith(("done", "FAILED"))],
        "stderr_tail": r.stderr[-2000:],
    }
    print(r.stdout[-3000:], r.stderr[-2000:], flush=True)
    if left() > 90:
        r = albench("bench", "--gpu", *(["--dry-run"] if DRY else []), "--out", str(out), timeout=left() - 15)
        res["bench"] = {"returncode": r.returncode, "output": r.stdout[-1500:] + r.stderr[-1500:]}
    else:
        res["bench"] = {"skipped": f"{left():.0f} s left"}
    res["wall_s"] = round(time.perf_counter() - T0, 1)
    ok = res["features"]["pass"] and res["adapters"]["returncode"] == 0
    res["pass"] = ok
    (out / f"{stem}.json").write_text(json.dumps(res, indent=1) + "\n")
    f = res["features"]
    md = [
        f"# GPU check{' (dry run on the CPU: toy CLIP, meaningless figures)' if DRY else ''}",
        "",
        f"commit {commit}; torch {res['torch']}; GPU {res['gpu']}; {res['wall_s']} s",
        "",
        f"- features, {f['arch']} random init, {f['device']} {f['precision']} vs cpu fp32: image cosine min "
        f"{f['image_cosine_min']:.5f}, text cosine min {f['text_cosine_min']:.5f} (need >= 0.999): "
        f"{'pass' if f['pass'] else 'FAIL'}",
        f"- adapters, 2 rounds on fake DTD at 224 px: exit {res['adapters']['returncode']} in "
        f"{res['adapters']['seconds']} s",
        *[f"  - `{ln}`" for ln in res["adapters"]["lines"]],
        f"- benchmark: {res['bench'].get('skipped') or 'exit ' + str(res['bench']['returncode'])}",
        "",
    ]
    (out / f"{stem}.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
