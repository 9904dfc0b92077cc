#!/usr/bin/env bash
# Runs every benchmark once, sequentially (they must not share the 2 cores), writing each table to
# benchmarks/results/<name>.md. About 45 minutes on 2 cores; the reference rows need
# benchmarks/make_reference_env.sh first (they are skipped with a message otherwise).
set -uo pipefail
cd "$(dirname "$0")"
mkdir -p results
run() { name=$1; shift; echo "== $name: $*"; { echo "<!-- python $* ($(date -u +%F)) -->"; python "$@"; } > "results/$name.md" 2> "results/$name.log"; tail -n 25 "results/$name.md"; }
run calculator bench_calculator.py --configs L4-M2-Lay12 L6-M3-Lay20 --structures cu111_co_66 --repeats 3 --rounds 5
run calculator_198 bench_calculator.py --configs L4-M2-Lay12 L6-M3-Lay20 --structures cu111_co_198 --repeats 2
run flops bench_flops.py
run kernel bench_kernel.py
run batch bench_batch.py
run md bench_md.py
run nve_drift bench_nve_drift.py --ps 10
run frame_rule bench_frame_rule.py
run adsorption bench_adsorption.py --metals Cu Pt Ni --adsorbates O H N --sites ontop bridge fcc
run scaling bench_scaling.py
