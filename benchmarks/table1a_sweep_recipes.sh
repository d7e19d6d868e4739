#!/bin/sh
# Table 1(a)'s SDTP and AO-SDTP parallel rows (20 epochs, as the table records them) with the recipes the
# paper-space sweeps found, seeds 0-2, two runs at a time on one thread each. Run from the repository root.
set -eu
OUT=results/table1a_mnist_fc/final_mnist_fc_20ep
run() {  # run RULE SEED
  bioscale train rule=$1 rules.$1.schedule=parallel data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=20 \
    seed=$2 trainer.checkpoint=false trainer.threads=1 trainer.progress=false observers.console.enabled=false \
    observers.tensorboard.enabled=false output_dir=$OUT name=$1-parallel-s$2 > $OUT/$1-parallel-s$2.log 2>&1
}
for seed in 0 1 2; do
  run sdtp $seed & run aosdtp $seed & wait
done
