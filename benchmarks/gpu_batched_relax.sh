#!/usr/bin/env bash
# Batched relaxations on a GPU: the CPU benchmark's 32 systems, batched vs one at a time, on CUDA.
# Under 5 minutes on one GPU (one install, a warm-up, two timed runs per route). Writes the tables to
# ${OUT:-benchmarks/results}/batch_relax_cuda.md with the device's name in the header.
#
#   OUT=/some/dir bash benchmarks/gpu_batched_relax.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
python -c "import escn_ase" 2>/dev/null || pip install -q -e . >/dev/null
python - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_batched_relax.sh: no CUDA device visible to torch " + torch.__version__)
print("#", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
PY
{
  echo "<!-- bash benchmarks/gpu_batched_relax.sh ($(date -u +%Y-%m-%d)) -->"
  python -c "import torch; print('# device:', torch.cuda.get_device_name(0))"
  timeout 270 python benchmarks/bench_batch_relax.py --device cuda --threads 4 --repeats 2 --per-system
} | tee "$out/batch_relax_cuda.md"
