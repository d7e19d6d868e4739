#!/bin/sh
# L-DRL on mnist_fc, 100 epochs, seed 0, forward Adam lr 3e-4, one thread. Outputs: results/newer_rules/mnist_fc_100ep/.
set -eu
OUT=results/newer_rules/mnist_fc_100ep
bioscale train rule=ldrl rules.ldrl.optimizer.lr=3e-4 data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=100 \
  seed=0 trainer.checkpoint=false trainer.threads=1 trainer.progress=false observers.console.enabled=false \
  observers.tensorboard.enabled=false output_dir=$OUT name=ldrl > $OUT/ldrl.log 2>&1
