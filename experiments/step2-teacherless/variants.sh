#!/usr/bin/env bash
# The --set switches of every step-2/3 variant on experiments/step2-teacherless/base.yaml.
# Usage: variants.sh VARIANT SEED [RUNS_DIR [--set KEY=VALUE ...]]  → trains and evaluates runs/<VARIANT>-s<SEED>.
# Switches after RUNS_DIR go to `lab train` after the variant's own, e.g. `--set train.epochs=24` (384 steps,
# the budget of issue 22's learning gates: experiments/learning-curve).
set -euo pipefail
variant=$1 seed=$2 runs=${3:-runs}
extra=("${@:4}")
TL="--set objective.target=stopgrad"
RATE="--set objective.rate.weight=0.3"
# No batch statistics anywhere (LayerNorm predictor and action embedding, GroupNorm encoder): the switch under
# which the teacherless run collapses without the rate term (README, "collapse control").
NOBN="--set model.predictor.norm=layer --set model.action_embed.kind=linear_ln --set model.encoder.norm=group"
case $variant in
  baseline)    sets="" ;;                                   # EMA target, cosine loss (the paper)
  expA)        sets="$RATE" ;;                              # EMA target + coding rate
  expB)        sets="$TL $RATE" ;;                          # teacherless (stop-grad) + coding rate
  expB-norate) sets="$TL" ;;                                # teacherless without the rate: the collapse control
  expC)        sets="$TL $RATE --set objective.symmetric=true" ;;
  expD)        sets="$TL $RATE --set objective.loss=sharpened" ;;
  rate1)       sets="$TL --set objective.rate.weight=1.0" ;;
  nobn-norate) sets="$TL $NOBN" ;;                         # teacherless, no BN, no rate: collapses
  nobn)        sets="$TL $NOBN $RATE" ;;                    # the same with the rate term
  nobn-both)   sets="$TL $NOBN $RATE --set objective.rate.features=both" ;;  # rate on z and z_AGG
  crate)       sets="--set model.aggregator.kind=crate --set model.aggregator.layers=12" ;;
  crate_alpha) sets="--set model.aggregator.kind=crate_alpha --set model.aggregator.layers=4" ;;
  *) echo "unknown variant $variant" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
lab train experiments/step2-teacherless/base.yaml --overwrite --set eval.at_end=false --set logging.progress=false \
  --set name="$variant-s$seed" --set train.seed="$seed" --set logging.runs_dir="$runs" $sets "${extra[@]}"
lab eval "$runs/$variant-s$seed"
