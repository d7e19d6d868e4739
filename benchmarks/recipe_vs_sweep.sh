#!/bin/sh
# Each TP recipe at the recipe sweeps' budget (20 epochs, 6,000 held-out training examples as the
# validation split, one thread), two runs at a time, so that a sweep's best can be compared with
# the recipe it would replace. Skips a recipe whose run has finished. Run from the repository root.
set -eu
run() {  # run FOLDER RULE [extra tokens]
  folder=results/recipes/$1/recipe_vs_sweep; shift
  if ls $folder/*/summary.json >/dev/null 2>&1; then echo "done: $folder"; return; fi
  bioscale train "$@" data=mnist data.root=../shared/data model=mnist_fc trainer.epochs=20 \
    trainer.checkpoint=false observers.console.enabled=false observers.tensorboard.enabled=false \
    trainer.threads=1 trainer.progress=false data.validation=6000 output_dir=$folder name=recipe
}
for rule in dtp sdtp aosdtp; do
  run $rule-parallel rule=$rule rules.$rule.schedule=parallel &
  run $rule-alternating rule=$rule rules.$rule.schedule=alternating &
  wait
done
