#!/usr/bin/env bash
# One prepared GPU check (<= 8 minutes on one GPU): bf16 GPU vs fp32 CPU features of the same random-init
# ViT-B/16, 2 rounds of each adapter on a fake DTD tree at 224 px, the GPU benchmark; output in reports/.
# GPU_CHECK_DRY=1 runs the same plumbing on the CPU with the toy CLIP (to test the script itself).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
exec timeout 480 python scripts/gpu_check.py "$@"
