#!/bin/sh
# Second, focused proxy search for SDTP and AO-SDTP on mnist_fc (20 epochs, as the first
# search): the first search showed these rules diverge with inverse learning rates above
# ~1e-3 (inverse losses exploding in alternating mode), so this one searches lower
# learning rates and a cosine schedule for the inverse optimiser. Run from benchmarks/.
set -eu
BASE="data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=20 trainer.batch_size=128 seed=0"
for rule in sdtp aosdtp; do
  for schedule in alternating parallel; do
    python sweep.py "recipes/${rule}-${schedule}/proxy2_mnist_fc_${rule}_${schedule}" --base "$BASE rule=$rule rules.$rule.schedule=$schedule" \
      --random 4 --seed 2 --jobs 2 \
      --loguniform rules.$rule.optimizer.lr=5e-5:5e-4 --loguniform rules.$rule.inverse_optimizer.lr=5e-5:1e-3 \
      --uniform rules.$rule.sigma=0.05:0.3 --choice rules.$rule.inverse_optimizer.schedule=constant,cosine
  done
done
