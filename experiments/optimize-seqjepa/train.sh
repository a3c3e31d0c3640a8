#!/bin/bash
# Train the search's recipe for one seed at the fixed CPU budget (fixed during the search: the agent
# cannot change this file). Every --set below overrides recipe.yaml, so the budget and the evaluation
# are the same for every trial: 384 optimiser steps (24 epochs x 16 steps of batch 64 on the 1024
# training shapes), one CPU thread, and quick.yaml's evaluation against the fair untrained twin
# (BatchNorm statistics re-estimated on 1024 training sequences). `lab eval runs/opt-seqjepa-s$1` follows.
set -euo pipefail
seed="${1:?usage: train.sh SEED}"
exec lab train experiments/optimize-seqjepa/recipe.yaml --overwrite \
  --set name=opt-seqjepa-s"$seed" --set train.seed="$seed" \
  --set train.epochs=24 --set train.batch_size=64 --set train.steps_per_epoch=null \
  --set train.threads=1 --set train.device=cpu --set train.freeze_encoder=false \
  --set data.name=shapes --set data.seq_len=3 --set data.image_size=32 \
  --set data.num_train=1024 --set data.num_test=512 --set data.seed=0 \
  --set data.views.kind=affine --set 'data.views.factors=[scale, colour]' \
  --set 'data.views.scale=[0.75, 1.25]' --set data.views.colour=0.4 \
  --set 'eval.m_val=[1, 3]' --set eval.num_train=512 --set eval.num_test=512 --set eval.batch_size=256 \
  --set eval.probe_max_iter=200 --set eval.equi_head=mlp --set eval.equi_hidden=128 --set eval.equi_epochs=10 \
  --set eval.enc_probe_input=view1 --set eval.r2_heads=joint --set eval.control_bn_sequences=1024 \
  --set eval.seed=1234 --set eval.stages=false --set eval.fresh_view_probe=false \
  --set eval.at_end=false --set eval.copy_to=null --set logging.wandb=false
