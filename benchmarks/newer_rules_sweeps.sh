#!/bin/sh
# Short searches for the newer rules (issue 23), as the paper's rules got (benchmarks/recipe_sweeps.sh): per rule,
# 20 random-search trials of its declared space at a 20-epoch budget on mnist_fc, 2 workers. Resumable: rerun this
# script and each study continues where it stopped. Outputs: results/newer_rules/sweeps/<rule>/sweep_mnist_fc_20ep/.
# Run from the repository root.
set -eu
COMMON="data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=20 trainer.checkpoint=false \
observers.console.enabled=false observers.tensorboard.enabled=false sweep.trials=20 sweep.workers=2"
sweep() {  # sweep FOLDER RULE [extra tokens]
  folder=$1; shift
  bioscale sweep "$@" $COMMON sweep.dir=results/newer_rules/sweeps/$folder/sweep_mnist_fc_20ep
}
sweep wm rule=wm
sweep signsym_usf rule=signsym
sweep kp rule=kp
sweep ddtp rule=ddtp
sweep ldrl rule=ldrl
