#!/bin/sh
# Table 1(a), MNIST mnist_fc rows, with the plain commands: every setting comes from the
# rules' recipes (the best configurations found, see results/README.md), 100 epochs,
# batch 128, seed 0. Two single-threaded runs at a time. Run from benchmarks/.
set -eu
BASE="data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=100 trainer.batch_size=128 seed=0"
python sweep.py final_mnist_fc --base "$BASE" --jobs 2 \
  --trial "rule=dtp rules.dtp.schedule=alternating" --trial "rule=dtp rules.dtp.schedule=parallel" \
  --trial "rule=sdtp rules.sdtp.schedule=alternating" --trial "rule=sdtp rules.sdtp.schedule=parallel" \
  --trial "rule=aosdtp rules.aosdtp.schedule=alternating" --trial "rule=aosdtp rules.aosdtp.schedule=parallel" \
  --trial "rule=bp" --trial "rule=fa" --trial "rule=dfa" \
  --trial "rule=sdtp rules.sdtp.schedule=alternating rules.sdtp.optimizer.lr=5e-4 rules.sdtp.inverse_optimizer.lr=3.39e-4 rules.sdtp.inverse_optimizer.schedule=cosine rules.sdtp.sigma=0.251"
# (the last trial: a second candidate for SDTP alternating, the parallel recipe's settings)
