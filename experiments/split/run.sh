#!/usr/bin/env bash
# One run of the split experiment (README.md): S3-COMPARE's transformer baseline trained for EPOCHS epochs
# (16 steps each) with seed SEED, evaluated against its fair twin → RUNS_DIR/split-e<EPOCHS>-s<SEED>.
# Usage: run.sh EPOCHS SEED [RUNS_DIR]
set -euo pipefail
epochs=$1 seed=$2 runs=${3:-runs/split}
OMP_NUM_THREADS=1 lab train experiments/step2-teacherless/base.yaml --overwrite --set eval.at_end=false \
  --set logging.progress=false --set logging.wandb=false --set name="split-e$epochs-s$seed" \
  --set train.seed="$seed" --set train.epochs="$epochs" --set logging.runs_dir="$runs"
lab eval "$runs/split-e$epochs-s$seed"
