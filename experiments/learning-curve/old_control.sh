#!/usr/bin/env bash
# The old control, for comparison: re-evaluate a trained run against the untrained twin with BatchNorm's
# initial statistics (eval.control_bn_sequences=0), in a copy of the run. Usage: old_control.sh RUN OUT_DIR
set -euo pipefail
run=$1 out=$2/$(basename "$1")
rm -rf "$out" && mkdir -p "$2" && cp -r "$run" "$out" && rm -f "$out/results.json"
python -c "import sys, yaml; p = sys.argv[1]; c = yaml.safe_load(open(p)); c['eval']['control_bn_sequences'] = 0; \
c['logging']['runs_dir'] = sys.argv[2]; yaml.safe_dump(c, open(p, 'w'))" "$out/config.yaml" "$2"
OMP_NUM_THREADS=1 lab eval "$out"
