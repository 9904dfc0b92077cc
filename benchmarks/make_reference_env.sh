#!/usr/bin/env bash
# Builds the reference eSCN (fairchem-core 1.10.0, the last release with eSCN) in a venv for the
# side-by-side benchmarks. Not a dependency of escn_ase.
#   usage: benchmarks/make_reference_env.sh [TARGET_DIR]   (default benchmarks/.fairchem-venv)
# fairchem-core 1.10 pins torch~=2.4 and numpy<2 but its eSCN runs on torch 2.13: installed --no-deps.
# torch-scatter has no wheel for this torch and is compiled (~30 min on 2 cores; WHEEL_CACHE=DIR reuses it).
# torch_sparse is only imported (by other fairchem models): an import-only placeholder is written.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
target=${1:-$here/.fairchem-venv}
python3 -m venv "$target"
pip=("$target/bin/pip" install -q)
"${pip[@]}" torch==2.13.0
"${pip[@]}" --no-deps fairchem-core==1.10.0
"${pip[@]}" ase "e3nn>=0.5" "huggingface-hub>=0.27.1" hydra-core lmdb numba "numpy>=1.26,<2" orjson \
  "pydantic>=2.10" "pymatgen>=2023.10.3" pyyaml requests submitit tensorboard torch-geometric torchtnt tqdm \
  wandb "scipy<1.17"
cache=${WHEEL_CACHE:-$target/wheels}
mkdir -p "$cache"
if ! ls "$cache"/torch_scatter-2.1.2-*.whl >/dev/null 2>&1; then
  "${pip[@]}" wheel setuptools
  MAX_JOBS=2 "$target/bin/pip" wheel -q --no-build-isolation --no-deps torch-scatter==2.1.2 -w "$cache"
fi
"${pip[@]}" --no-deps "$cache"/torch_scatter-2.1.2-*.whl
site=$("$target/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
mkdir -p "$site/torch_sparse"
printf '"""Import-only placeholder: fairchem imports torch_sparse for models other than eSCN."""\n' >"$site/torch_sparse/__init__.py"
printf 'class SparseTensor:\n    def __init__(self, *args, **kwargs):\n        raise RuntimeError("torch_sparse placeholder")\n' >>"$site/torch_sparse/__init__.py"
"$target/bin/python" -c "from fairchem.core.common.relaxation.ase_utils import OCPCalculator; print('reference environment ready:', '$target')"
