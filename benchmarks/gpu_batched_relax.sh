#!/usr/bin/env bash
# Batched relaxations and MD replicas on a GPU: the CPU benchmarks' 32 relaxations (batched vs one at
# a time) and 8 Langevin replicas (run_md_batch vs run_md), on CUDA. Under 5 minutes on one GPU. Writes
# ${OUT:-benchmarks/results}/batch_relax_cuda.md and md_batch_cuda.md with the device's name in the header.
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
  timeout 200 python benchmarks/bench_batch_relax.py --device cuda --threads 4 --repeats 2 --per-system
} | tee "$out/batch_relax_cuda.md"
{
  echo "<!-- bash benchmarks/gpu_batched_relax.sh ($(date -u +%Y-%m-%d)) -->"
  python -c "import torch; print('# device:', torch.cuda.get_device_name(0))"
  timeout 60 python benchmarks/bench_md_batch.py --device cuda --threads 4 --replicas 8 --steps 100
} | tee "$out/md_batch_cuda.md"
