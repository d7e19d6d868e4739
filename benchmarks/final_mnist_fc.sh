#!/bin/sh
# Table 1(a), MNIST mnist_fc rows, with the plain commands: every setting comes from the
# rules' recipes (the best configurations found, see results/README.md), 100 epochs,
# batch 128, seed 0. Two single-threaded runs at a time. Run from benchmarks/.
# BP and FA rows: results/recipes/bp/mnist_fc_bp_lr and results/recipes/fa/mnist_fc_fa_reg (same recipes, 100 epochs).
# The two DTP runs were started first (2026-11-27 18:50 UTC) and cut off by a machine restart
# at epochs 47 and 56; they are continued from their checkpoints with `bioscale resume`
# (exact resume), as the --resume lines below do.
# Parallel rows and DFA: results/recipes/*/proxy*_mnist_fc_* hold the recipes' own trials (20 epochs,
# already under their targets); this machine's time went to the rows still above them.
set -eu
BASE="data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=100 trainer.batch_size=128 seed=0"
RUNS=../runs/sweeps/final_mnist_fc
python sweep.py table1a_mnist_fc/final_mnist_fc --base "$BASE" --jobs 2 \
  --resume "$(ls -d $RUNS/*-dtp-* | sed -n 1p)" --resume "$(ls -d $RUNS/*-dtp-* | sed -n 2p)" \
  --trial "rule=sdtp rules.sdtp.schedule=alternating" \
  --trial "rule=aosdtp rules.aosdtp.schedule=alternating"
