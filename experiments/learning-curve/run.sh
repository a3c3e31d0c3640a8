#!/usr/bin/env bash
# One point of the learning curve: experiments/step1-baseline/quick.yaml (the phase-1 budget: 16 steps of
# batch 64 per epoch) trained for EPOCHS epochs with seed SEED, then evaluated against the fair twin
# (BatchNorm statistics re-estimated, lab eval's default). Further arguments are passed to lab train
# (e.g. --set train.freeze_encoder=true for the frozen-random-encoder arm).
# Usage: run.sh EPOCHS SEED [RUNS_DIR [LAB TRAIN ARGS…]]
set -euo pipefail
epochs=$1 seed=$2 runs=${3:-runs/learning-curve}
shift $(( $# < 3 ? $# : 3 ))
OMP_NUM_THREADS=1 lab train experiments/step1-baseline/quick.yaml --overwrite \
  --set name="lc-e$epochs-s$seed" --set train.seed="$seed" --set train.epochs="$epochs" --set train.threads=1 \
  --set logging.runs_dir="$runs" --set logging.wandb=false --set logging.progress=false "$@"
