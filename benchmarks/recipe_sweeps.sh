#!/bin/sh
# The recipe searches of issue 22, redone as sweeps: per rule and schedule, 20 random-search
# trials of the paper's space at a 20-epoch budget on mnist_fc, 2 workers. Resumable: rerun this
# script (or one of its lines) and each study continues where it stopped. Run from the
# repository root; studies and tables go to results/recipes/<rule>-<schedule>/sweep_mnist_fc_20ep/.
set -eu
COMMON="data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=20 trainer.checkpoint=false \
observers.console.enabled=false observers.tensorboard.enabled=false sweep.trials=20 sweep.workers=2"
sweep() {  # sweep FOLDER RULE [extra tokens]
  folder=$1; shift
  bioscale sweep "$@" $COMMON sweep.dir=results/recipes/$folder/sweep_mnist_fc_20ep
}
sweep dfa rule=dfa
sweep bp rule=bp
sweep fa rule=fa
for rule in dtp sdtp aosdtp; do
  for schedule in parallel alternating; do
    sweep $rule-$schedule rule=$rule rules.$rule.schedule=$schedule
  done
done
